"""Decoding uploads: every supported format and mode opens; everything else is refused with the
right error, quickly and with bounded memory, before any pixel is decoded."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.errors import (
    EmptyUploadError,
    ImageTooLargeError,
    InputError,
    InvalidImageError,
    UnsupportedMediaTypeError,
)
from app.imaging.decode import cheap_png_layout, decode_upload
from app.imaging.structure import DecodeLimits
from app.imaging.working_size import WORKING_MIN_SIDE

MAX_PIXELS = 40_000_000
LIMITS = DecodeLimits(max_pixels=MAX_PIXELS)


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    """``image`` saved as ``image_format``."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def gradient_image(mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A small image with varying content in ``mode``."""
    width, height = size
    values = (np.arange(width * height, dtype=np.uint32) % 251).astype(np.uint8)
    grey = Image.fromarray(values.reshape(height, width))
    return grey.convert(mode)


def png_chunk(chunk_type: bytes, body: bytes) -> bytes:
    """One PNG chunk with a correct CRC."""
    checksum = zlib.crc32(chunk_type + body)
    return struct.pack(">I", len(body)) + chunk_type + body + struct.pack(">I", checksum)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header declares ``width`` x ``height`` grey pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("image_format", "mode"),
    [
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "L"),
        ("PNG", "LA"),
        ("PNG", "P"),
        ("PNG", "1"),
        ("JPEG", "RGB"),
        ("JPEG", "L"),
        ("JPEG", "CMYK"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("WEBP", "RGB"),
        ("WEBP", "RGBA"),
        ("TIFF", "RGB"),
        ("TIFF", "CMYK"),
        ("TIFF", "F"),
    ],
)
def test_decode_opens_supported_format_and_mode(image_format: str, mode: str) -> None:
    image = decode_upload(encoded(gradient_image(mode), image_format), LIMITS)
    assert image.size == (40, 30)
    assert image.format == image_format


@pytest.mark.parametrize(
    ("size", "options"),
    [
        ((28, 28), {}),
        ((1, 1), {}),
        ((257, 129), {"optimize": True}),
        ((600, 600), {"compress_level": 0}),
    ],
    ids=["mnist-size", "one-pixel", "filtered", "several-data-chunks"],
)
def test_decode_reads_grey_png_pixels_as_stored(
    size: tuple[int, int], options: dict[str, object]
) -> None:
    width, height = size
    pixels = np.random.default_rng(7).integers(0, 256, (height, width), dtype=np.uint8)
    pixels[:, : width // 2] = 0  # Runs of zeros make the encoder pick several row filters.
    data = encoded(Image.fromarray(pixels), "PNG", **options)
    image = decode_upload(data, LIMITS)
    assert (image.mode, image.format) == ("L", "PNG")
    np.testing.assert_array_equal(np.asarray(image), pixels)
    np.testing.assert_array_equal(np.asarray(image), np.asarray(Image.open(io.BytesIO(data))))


def test_decode_keeps_transparency_of_grey_png() -> None:
    data = encoded(gradient_image("L"), "PNG", transparency=0)
    assert decode_upload(data, LIMITS).info["transparency"] == 0


def test_decode_opens_sixteen_bit_png() -> None:
    values = (np.arange(40 * 30, dtype=np.uint16) * 50).reshape(30, 40)
    image = decode_upload(encoded(Image.fromarray(values), "PNG"), LIMITS)
    assert image.mode.startswith("I")
    assert int(np.asarray(image).max()) == int(values.max())


def test_decode_returns_first_frame_of_animated_gif() -> None:
    first = Image.new("L", (20, 20), 0)
    second = Image.new("L", (20, 20), 255)
    data = encoded(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    image = decode_upload(data, LIMITS)
    assert np.asarray(image.convert("L")).max() == 0


def test_decode_applies_exif_orientation() -> None:
    upright = Image.new("L", (60, 20), 255)
    upright.paste(0, (0, 0, 10, 20))  # A dark band on the left of a wide image.
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # Stored turned, 20 wide x 60 tall.
    exif = Image.Exif()
    exif[0x0112] = 6  # "Rotate 90 clockwise to display."
    image = decode_upload(encoded(stored, "JPEG", exif=exif, quality=95), LIMITS)
    assert image.size == (60, 20)
    pixels = np.asarray(image.convert("L"))
    assert pixels[:, :8].mean() < 60 < 200 < pixels[:, 20:].mean()


@pytest.mark.parametrize("where", ["eXIf", "text"])
def test_decode_applies_png_exif_orientation(where: str) -> None:
    """A PNG's orientation, in an ``eXIf`` chunk or a raw-profile text chunk, is applied; a
    PNG without such chunks is taken as it is stored, without looking for one."""
    from PIL import PngImagePlugin

    upright = Image.new("L", (60, 20), 255)
    upright.paste(0, (0, 0, 10, 20))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    if where == "eXIf":
        data = encoded(stored, "PNG", exif=exif)
    else:
        raw = exif.tobytes()
        metadata = PngImagePlugin.PngInfo()
        metadata.add_text("Raw profile type exif", f"\nexif\n{len(raw)}\n{raw.hex()}")
        data = encoded(stored, "PNG", pnginfo=metadata)
    assert decode_upload(data, LIMITS).size == (60, 20)
    assert decode_upload(encoded(stored, "PNG"), LIMITS).size == (20, 60)


def test_cheap_png_layout_walks_no_looser_than_the_limits() -> None:
    """The layout handed to decode_upload comes from a walk at least as strict as the one the
    limits ask for: a PNG with more chunks than ``max_segments`` is not cheap."""
    data = encoded(Image.new("L", (28, 28)), "PNG")
    assert cheap_png_layout(data, max_pixels=1024, limits=LIMITS) is not None
    assert cheap_png_layout(data, max_pixels=1024, limits=DecodeLimits(MAX_PIXELS, 2)) is None


def test_decode_reads_large_jpeg_reduced_in_grey() -> None:
    photo = gradient_image("RGB", (2000, 1200))
    image = decode_upload(encoded(photo, "JPEG"), LIMITS)
    assert image.mode == "L"
    assert WORKING_MIN_SIDE <= max(image.size) < 2000


def test_decode_refuses_empty_upload() -> None:
    with pytest.raises(EmptyUploadError):
        decode_upload(b"", LIMITS)


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is not an image\n",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
        b'<svg width="28" height="28"><path d="M0 0L28 28"/></svg>',
        b"<!DOCTYPE html><html><body><img src=x></body></html>",
        b'{"digit": 7}',
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        "text in UTF-16".encode("utf-16"),
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
        b"BM but really a text file named digit.bmp",
    ],
    ids=["text", "svg-xml", "svg", "html", "json", "pdf", "utf16", "zip", "text-bm"],
)
def test_decode_refuses_non_image_as_unsupported(content: bytes) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        decode_upload(content, LIMITS)


def test_decode_refuses_unrecognisable_bytes_as_invalid() -> None:
    with pytest.raises(InvalidImageError):
        decode_upload(bytes(range(256)) * 4, LIMITS)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_decode_refuses_truncated_image(image_format: str) -> None:
    data = encoded(gradient_image("RGB", (120, 90)), image_format)
    with pytest.raises(InvalidImageError):
        decode_upload(data[: len(data) // 2], LIMITS)


def test_decode_refuses_png_with_corrupted_pixel_chunk() -> None:
    data = bytearray(encoded(gradient_image("L", (64, 64)), "PNG"))
    pixel_chunk = data.index(b"IDAT")
    data[pixel_chunk + 20] ^= 0xFF  # Flip one compressed byte; the CRC no longer matches.
    with pytest.raises(InvalidImageError, match="checksum"):
        decode_upload(bytes(data), LIMITS)


def test_decode_refuses_png_without_end_chunk() -> None:
    data = encoded(gradient_image("L"), "PNG")
    with pytest.raises(InvalidImageError):
        decode_upload(data[: data.index(b"IEND") - 4], LIMITS)


def test_decode_refuses_image_over_pixel_limit() -> None:
    data = encoded(gradient_image("L", (100, 50)), "PNG")
    assert decode_upload(data, DecodeLimits(max_pixels=5000)).size == (100, 50)
    with pytest.raises(ImageTooLargeError):
        decode_upload(data, DecodeLimits(max_pixels=4999))


@pytest.mark.parametrize(
    ("width", "height", "max_pixels"),
    [(50_000, 50_000, MAX_PIXELS), (20_000, 20_000, 10**9), (10_000, 9_000, 10**9)],
    ids=["over-limit", "over-pillow-limit", "between-pillow-limits"],
)
def test_decode_refuses_png_bomb_fast_with_bounded_memory(
    width: int, height: int, max_pixels: int
) -> None:
    bomb = png_declaring(width, height)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageTooLargeError):
            decode_upload(bomb, DecodeLimits(max_pixels=min(max_pixels, width * height - 1)))
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 0.5
    assert peak < 5 * 1024 * 1024


def test_decode_refuses_gif_declaring_huge_screen() -> None:
    frame = encoded(Image.new("P", (4, 4)), "GIF")
    bomb = frame[:6] + struct.pack("<HH", 65_535, 65_535) + frame[10:]
    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError):
        decode_upload(bomb, LIMITS)
    assert time.perf_counter() - started < 0.5


def test_decode_refuses_gif_frame_larger_than_its_screen() -> None:
    frame = bytearray(encoded(Image.new("P", (4, 4)), "GIF"))
    descriptor = frame.index(b",", 13)  # The first image descriptor, after the screen header.
    frame[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 60_000, 60_000)
    with pytest.raises(ImageTooLargeError):
        decode_upload(bytes(frame), LIMITS)


def test_decode_leaves_pillow_global_limit_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError):
        decode_upload(png_declaring(50_000, 50_000), LIMITS)
    decode_upload(encoded(gradient_image(), "PNG"), LIMITS)
    assert Image.MAX_IMAGE_PIXELS == before


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(
        [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"RIFF"]
    ),
    body=st.binary(max_size=512),
)
def test_decode_raises_only_input_errors_for_arbitrary_bytes(prefix: bytes, body: bytes) -> None:
    try:
        decode_upload(prefix + body, LIMITS)
    except InputError:
        pass


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_decode_raises_only_input_errors_for_damaged_images(data: st.DataObject) -> None:
    image_format = data.draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]))
    original = bytearray(encoded(gradient_image("RGB", (24, 16)), image_format))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(original)))
    try:
        decode_upload(bytes(original[:cut]), LIMITS)
    except InputError:
        pass
