"""Property-based tests of the image pipeline: whatever the bytes or pixels, decoding and
preprocessing either produce what they promise or raise the service's own InputError; no other
exception (which the API would turn into a 500) ever escapes.

Inputs are arbitrary bytes, arbitrary bytes behind a real format's signature, real PNG, JPEG,
GIF (animated too), APNG, BMP, WebP and TIFF files damaged in the ways transfers and attackers
damage them, and arbitrary pixel arrays in every image mode Pillow decodes to. Hypothesis runs
deterministically (``derandomize``) and without its example database, so CI repeats the same
examples and writes nothing.
"""

from __future__ import annotations

import io
from typing import Final

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from app.errors import InputError, NoDigitFoundError
from app.imaging.decode import decode_upload
from app.imaging.pipeline import prepare_upload
from app.imaging.preprocess import to_mnist_digit
from app.imaging.structure import DecodeLimits

MAX_PIXELS: Final = 40_000_000

PROPERTY_SETTINGS: Final = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=400,
    suppress_health_check=[HealthCheck.too_slow],
)

SIGNATURES: Final = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"GIF87a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"<svg",
    b"%PDF-1.7",
)

LIMITS = DecodeLimits(max_pixels=MAX_PIXELS)


def _drawn_seven(size: tuple[int, int]) -> Image.Image:
    """A dark 7 on light paper, as a photo or scan would show it."""
    image = Image.new("L", size, 235)
    width, height = size
    draw = ImageDraw.Draw(image)
    stroke = max(2, min(size) // 12)
    draw.line([(width * 0.25, height * 0.2), (width * 0.75, height * 0.2)], fill=20, width=stroke)
    draw.line([(width * 0.75, height * 0.2), (width * 0.4, height * 0.85)], fill=20, width=stroke)
    return image


def _encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _seed_files() -> dict[str, bytes]:
    """Real files of a drawn digit, one per format and the tricky variants of each."""
    digit = _drawn_seven((48, 40))
    other = _drawn_seven((48, 40)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rgba = digit.convert("RGBA")
    rgba.putalpha(digit.point(lambda value: 255 - value))
    return {
        "png-grey": _encoded(digit, "PNG"),
        "png-rgba": _encoded(rgba, "PNG"),
        "png-16bit": _encoded(Image.fromarray(np.asarray(digit, np.uint16) * 257), "PNG"),
        "png-palette": _encoded(digit.convert("P"), "PNG"),
        "png-interlaced": _encoded(digit, "PNG", interlace=1),
        "apng": _encoded(digit.convert("RGB"), "PNG", save_all=True, append_images=[other]),
        "jpeg": _encoded(digit.convert("RGB"), "JPEG", quality=90),
        "jpeg-progressive": _encoded(digit.convert("RGB"), "JPEG", progressive=True),
        "jpeg-cmyk": _encoded(digit.convert("CMYK"), "JPEG"),
        "gif": _encoded(digit.convert("P"), "GIF"),
        "gif-animated": _encoded(
            digit.convert("P"), "GIF", save_all=True, append_images=[other.convert("P")]
        ),
        "bmp": _encoded(digit.convert("RGB"), "BMP"),
        "webp": _encoded(digit.convert("RGB"), "WEBP"),
        "tiff": _encoded(digit, "TIFF", compression="tiff_lzw"),
    }


SEED_FILES: Final = _seed_files()


def _assert_digit(digit: NDArray[np.uint8]) -> None:
    """What a successful pipeline run promises: a 28 x 28 uint8 image holding some ink."""
    assert digit.shape == (28, 28)
    assert digit.dtype == np.uint8
    assert int(digit.max()) > 0


@st.composite
def damaged_files(draw: st.DrawFn) -> bytes:
    """A real image file, damaged: bytes flipped, cut short, inserted, repeated or overwritten
    (header fields included, where widths, heights and lengths live)."""
    data = bytearray(SEED_FILES[draw(st.sampled_from(sorted(SEED_FILES)))])
    for _ in range(draw(st.integers(1, 4))):
        damage = draw(st.sampled_from(["flip", "truncate", "insert", "repeat", "overwrite"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if damage == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif damage == "truncate":
            del data[position:]
        elif damage == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=64))
        elif damage == "repeat":
            data[position:position] = data[position : position + draw(st.integers(1, 256))]
        else:
            # Header-sized fields: 2- or 4-byte big/little-endian values, often extreme.
            value = draw(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
            width = draw(st.sampled_from([2, 4]))
            order = draw(st.sampled_from(["big", "little"]))
            data[position : position + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(
                width, order
            )
        if not data:
            break
    return bytes(data)


@PROPERTY_SETTINGS
@given(
    data=st.one_of(
        st.binary(max_size=4096),
        st.builds(
            lambda signature, rest: signature + rest,
            st.sampled_from(SIGNATURES),
            st.binary(max_size=4096),
        ),
    )
)
def test_decode_upload_raises_only_input_errors_for_arbitrary_bytes(data: bytes) -> None:
    try:
        image = decode_upload(data, LIMITS)
    except InputError as error:
        event(f"refused: {error.code}")
        return
    event("decoded")
    assert image.width * image.height <= MAX_PIXELS


@PROPERTY_SETTINGS
@given(data=damaged_files())
def test_prepare_upload_raises_only_input_errors_for_damaged_files(data: bytes) -> None:
    try:
        digit = prepare_upload(data, LIMITS)
    except InputError as error:
        event(f"refused: {error.code}")
        return
    event("read as a digit")
    _assert_digit(digit)


@PROPERTY_SETTINGS
@given(data=damaged_files(), max_pixels=st.integers(28 * 28, 5_000))
def test_decode_upload_respects_any_pixel_limit(data: bytes, max_pixels: int) -> None:
    try:
        image = decode_upload(data, DecodeLimits(max_pixels=max_pixels))
    except InputError:
        return
    assert image.width * image.height <= max_pixels


_MODES_FROM_ARRAYS: Final = {
    # mode: (dtype, channels) of the array Pillow builds that mode from.
    "1": (np.bool_, 0),
    "L": (np.uint8, 0),
    "LA": (np.uint8, 2),
    "RGB": (np.uint8, 3),
    "RGBA": (np.uint8, 4),
    "CMYK": (np.uint8, 4),
    "I;16": (np.uint16, 0),
    "I": (np.int32, 0),
    "F": (np.float32, 0),
}


@st.composite
def images_in_any_mode(draw: st.DrawFn) -> Image.Image:
    """An image of any decoded mode (palette too) and size, with arbitrary pixel values
    (NaN and infinities included for floating point)."""
    mode = draw(st.sampled_from([*_MODES_FROM_ARRAYS, "P"]))
    height, width = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    if mode == "P":
        indices = draw(arrays(np.uint8, (height, width)))
        image = Image.fromarray(indices, mode="L").convert("P")
        image.putpalette(draw(st.binary(min_size=768, max_size=768)))
        return image
    dtype, channels = _MODES_FROM_ARRAYS[mode]
    shape = (height, width, channels) if channels else (height, width)
    pixels = draw(arrays(dtype, shape))
    if mode == "1":
        return Image.fromarray(pixels.astype(np.uint8) * 255, mode="L").convert("1")
    if mode == "CMYK":
        return Image.frombytes("CMYK", (width, height), pixels.tobytes())
    if mode == "I;16":
        return Image.frombytes("I;16", (width, height), pixels.astype("<u2").tobytes())
    return Image.fromarray(pixels, mode=mode) if mode in ("I", "F") else Image.fromarray(pixels)


@PROPERTY_SETTINGS
@given(image=images_in_any_mode())
def test_to_mnist_digit_raises_only_no_digit_found_for_any_pixels(image: Image.Image) -> None:
    try:
        digit = to_mnist_digit(image)
    except NoDigitFoundError:
        event(f"{image.mode}: no digit found")
        return
    event(f"{image.mode}: digit")
    _assert_digit(digit)


@pytest.mark.parametrize("name", sorted(SEED_FILES))
def test_prepare_upload_reads_every_undamaged_seed_file(name: str) -> None:
    # The damaged files above start from files the pipeline reads: a property over damage to
    # unreadable seeds would test nothing.
    _assert_digit(prepare_upload(SEED_FILES[name], LIMITS))
