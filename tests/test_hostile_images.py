"""The hostile image generators (``tests/hostile_images.py``): each small case comes out the same
every time, has the structure its attack relies on (counted here from the bytes, not from what
Pillow reports), and Pillow opens and decodes it. Full-strength files are only generated and
measured where that is cheap; none is decoded here."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from tests.hostile_images import (
    HOSTILE_CASES,
    MAX_UPLOAD_BYTES,
    SMALL_CASES,
    bmp_rle8,
    digit_array,
    float_tiff_with_nan,
    gif_comment_many_subblocks,
    jpeg_many_app_segments,
    png_16bit,
    png_many_text_chunks,
    png_ztxt_bombs,
    progressive_jpeg_many_scans,
    progressive_jpeg_photo,
    tiff_one_strip_per_row,
)

MAX_PIXELS = 40_000_000
"""The service's default ``MAX_IMAGE_PIXELS``."""

SOF0, SOF2, SOS, APP1, APP14 = 0xC0, 0xC2, 0xDA, 0xE1, 0xEE

JpegSegment = tuple[int, bytes, bytes]
"""A JPEG marker, its segment's payload, and for a scan its entropy-coded data."""

Chunk = tuple[bytes, bytes]


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def decoded(data: bytes) -> Image.Image:
    image = opened(data)
    image.load()
    return image


# Reading the structures back from the bytes.


def jpeg_segments(data: bytes) -> list[JpegSegment]:
    """Every segment between SOI and EOI, each scan with its entropy-coded data."""
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    segments: list[JpegSegment] = []
    position = 2
    while True:
        assert data[position] == 0xFF, f"no marker at {position}"
        marker = data[position + 1]
        if marker == 0xD9:
            assert position + 2 == len(data)
            return segments
        (length,) = struct.unpack_from(">H", data, position + 2)
        payload = data[position + 4 : position + 2 + length]
        position += 2 + length
        scan = b""
        if marker == SOS:
            end = position
            while True:  # up to the next marker: 0xFF not followed by 0x00 or a restart
                end = data.index(b"\xff", end)
                if data[end + 1] != 0x00 and not 0xD0 <= data[end + 1] <= 0xD7:
                    break
                end += 2
            scan, position = data[position:end], end
        segments.append((marker, payload, scan))


def markers(segments: list[JpegSegment]) -> list[int]:
    return [marker for marker, _, _ in segments]


def scan_headers(segments: list[JpegSegment]) -> list[tuple[list[int], int, int, int, int]]:
    """(component ids, Ss, Se, Ah, Al) of each scan."""
    headers = []
    for marker, payload, _ in segments:
        if marker == SOS:
            count = payload[0]
            ids = [payload[1 + 2 * index] for index in range(count)]
            ss, se, approximation = payload[1 + 2 * count : 4 + 2 * count]
            headers.append((ids, ss, se, approximation >> 4, approximation & 0x0F))
    return headers


def png_chunks(data: bytes) -> list[Chunk]:
    """Every chunk up to IEND, each checked against its CRC."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    chunks: list[Chunk] = []
    position = 8
    while True:
        length, kind = struct.unpack_from(">I4s", data, position)
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack_from(">I", data, position + 8 + length)
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        position += 12 + length
        if kind == b"IEND":
            assert position == len(data)
            return chunks


def tiff_entries(data: bytes) -> dict[int, tuple[int, int, tuple[int, ...]]]:
    """Tag -> (type, count, values) of a little-endian TIFF's first IFD (SHORT and LONG only)."""
    assert data.startswith(b"II*\x00")
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    entries = {}
    for index in range(count):
        tag, kind, number, field = struct.unpack_from("<HHI4s", data, ifd + 2 + 12 * index)
        size = {3: 2, 4: 4}[kind] * number
        if size <= 4:
            raw = field[:size]
        else:
            (offset,) = struct.unpack("<I", field)
            raw = data[offset : offset + size]
        values = tuple(np.frombuffer(raw, dtype="<u2" if kind == 3 else "<u4").tolist())
        entries[tag] = (kind, number, values)
    return entries


def gif_comment_subblocks(data: bytes) -> list[bytes]:
    """The data sub-blocks of a GIF's comment extensions, read from the bytes."""
    assert data[:6] in (b"GIF87a", b"GIF89a")
    flags = data[10]
    position = 13 + (3 << ((flags & 0x07) + 1) if flags & 0x80 else 0)
    blocks: list[bytes] = []
    while data[position] == 0x21:  # extensions before the image descriptor
        label = data[position + 1]
        position += 2
        while size := data[position]:
            if label == 0xFE:
                blocks.append(data[position + 1 : position + 1 + size])
            position += 1 + size
        position += 1
    assert data[position] == 0x2C  # the image descriptor follows
    return blocks


def rle8_escapes(pixels: bytes) -> list[int]:
    """The escape codes (0 end of line, 1 end of bitmap, 2 delta) of RLE8 data, in order."""
    escapes = []
    position = 0
    while position < len(pixels):
        count, value = pixels[position], pixels[position + 1]
        position += 2
        if count == 0:
            escapes.append(value)
            if value == 1:
                break
            assert value == 0, "only end-of-line and end-of-bitmap escapes are expected"
    assert position == len(pixels)
    return escapes


# All cases.


def test_full_and_small_cases_name_the_same_attacks() -> None:
    assert list(SMALL_CASES) == list(HOSTILE_CASES)
    assert len(SMALL_CASES) == 11


@pytest.mark.parametrize("name", list(SMALL_CASES))
def test_small_case_is_deterministic_and_decodes(name: str) -> None:
    make = SMALL_CASES[name]
    data = make()
    assert isinstance(data, bytes)
    assert make() == data
    image = decoded(data)
    assert 0 < image.width * image.height <= 64 * 64 * 2


CHEAP_FULL_CASES = [
    "progressive_jpeg_many_scans",
    "progressive_jpeg_many_scans_cmyk",
    "jpeg_many_app_segments",
    "tiff_one_strip_per_row",
    "gif_comment_many_subblocks",
    "png_many_text_chunks",
    "bmp_rle8",
    "png_ztxt_bombs",
]
"""The full-strength cases that take milliseconds to generate."""


@pytest.mark.parametrize("name", CHEAP_FULL_CASES)
def test_full_strength_case_fits_the_upload_limit(name: str) -> None:
    make: Callable[[], bytes] = HOSTILE_CASES[name]
    data = make()
    assert len(data) <= MAX_UPLOAD_BYTES
    assert make() == data


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "size", "mode", "most_bytes"),
    [
        ("float_tiff_with_nan", (6324, 6324), "F", 400_000),
        ("png_16bit", (6324, 6324), "I;16", 150_000),
        ("progressive_jpeg_photo", (6000, 6000), "RGB", MAX_UPLOAD_BYTES),
    ],
)
def test_full_strength_large_image_is_small_on_the_wire_and_within_the_pixel_limit(
    name: str, size: tuple[int, int], mode: str, most_bytes: int
) -> None:
    data = HOSTILE_CASES[name]()
    assert len(data) <= most_bytes
    image = opened(data)  # the header only
    assert (image.size, image.mode) == (size, mode)
    assert image.width * image.height <= MAX_PIXELS


# JPEG.


def test_progressive_jpeg_many_scans_repeats_one_ac_scan() -> None:
    data = progressive_jpeg_many_scans(64, 48, scans=12)
    segments = jpeg_segments(data)
    assert markers(segments).count(SOS) == 1 + 12
    (frame,) = [payload for marker, payload, _ in segments if marker == SOF2]
    assert struct.unpack_from(">BHHB", frame) == (8, 48, 64, 1)
    headers = scan_headers(segments)
    assert headers[0] == ([1], 0, 0, 0, 0)  # DC first scan
    assert headers[1] == ([1], 1, 63, 0, 1)  # AC first scan
    assert headers[2:] == [([1], 1, 63, 1, 0)] * 11  # the same refinement scan again and again
    ac_data = {scan for marker, payload, scan in segments if marker == SOS and payload[-3] == 1}
    assert len(ac_data) == 1
    image = decoded(data)
    assert (image.format, image.mode, image.size) == ("JPEG", "L", (64, 48))
    assert image.info.get("progressive")
    assert np.unique(np.asarray(image)).tolist() == [128]  # all coefficients zero


def test_progressive_jpeg_many_scans_at_full_size_has_48_byte_scans() -> None:
    data = progressive_jpeg_many_scans(scans=3)
    segments = jpeg_segments(data)
    scan_sizes = [
        4 + len(payload) + len(scan) for marker, payload, scan in segments if marker == SOS
    ]
    assert scan_sizes[0] == 10 + 624_100 // 8 + 1  # the DC scan: one bit a block
    assert scan_sizes[1:] == [48, 48, 48]
    image = opened(data)
    assert (image.mode, image.size) == ("L", (6320, 6320))
    assert image.width * image.height <= MAX_PIXELS


def test_progressive_jpeg_many_scans_cmyk_is_an_adobe_ycck_file_scanning_each_component() -> None:
    data = progressive_jpeg_many_scans(64, 48, scans=12, components=4)
    segments = jpeg_segments(data)
    (adobe,) = [payload for marker, payload, _ in segments if marker == APP14]
    assert adobe.startswith(b"Adobe") and adobe[-1] == 2  # transform: YCCK
    (frame,) = [payload for marker, payload, _ in segments if marker == SOF2]
    assert frame[5] == 4
    headers = scan_headers(segments)
    assert headers[0] == ([1, 2, 3, 4], 0, 0, 0, 0)
    assert [ids for ids, *_ in headers[1:]] == [[1], [2], [3], [4]] * 3
    assert decoded(data).mode == "CMYK"


def test_progressive_jpeg_many_scans_without_dc_scan_still_decodes() -> None:
    data = progressive_jpeg_many_scans(64, 48, scans=5, dc_scan=False)
    headers = scan_headers(jpeg_segments(data))
    assert len(headers) == 5 and all(ss == 1 for _, ss, *_ in headers)
    assert decoded(data).size == (64, 48)


def test_progressive_jpeg_many_scans_refuses_impossible_parameters() -> None:
    with pytest.raises(ValueError):
        progressive_jpeg_many_scans(64, 48, scans=12, components=2)
    with pytest.raises(ValueError):
        progressive_jpeg_many_scans(70_000, 48)


def test_jpeg_many_app_segments_puts_empty_app1_segments_before_the_frame() -> None:
    data = jpeg_many_app_segments(1000)
    segments = jpeg_segments(data)
    kinds = markers(segments)
    assert kinds.count(APP1) == 1000
    assert all(payload == b"" for marker, payload, _ in segments if marker == APP1)
    first, last = kinds.index(APP1), len(kinds) - 1 - kinds[::-1].index(APP1)
    assert kinds[first : last + 1] == [APP1] * 1000
    assert kinds[last + 1] == SOF0
    image = decoded(data)
    assert isinstance(image, JpegImagePlugin.JpegImageFile)
    assert (image.mode, image.size) == ("L", (28, 28))
    assert [name for name, _ in image.applist].count("APP1") == 1000


def test_jpeg_many_app_segments_default_is_just_under_5_mib() -> None:
    data = jpeg_many_app_segments()
    assert data.count(b"\xff\xe1\x00\x02") == 1_300_000
    assert 5_000_000 < len(data) <= MAX_UPLOAD_BYTES


def test_progressive_jpeg_photo_is_a_normal_progressive_jpeg() -> None:
    data = progressive_jpeg_photo(96, 64)
    segments = jpeg_segments(data)
    assert SOF2 in markers(segments)
    assert markers(segments).count(SOS) > 1
    image = decoded(data)
    assert (image.mode, image.size) == ("RGB", (96, 64))
    assert image.info.get("progressive")
    grey = np.asarray(image.convert("L"), dtype=np.int16)
    stroke = digit_array(96, 64) == 255
    assert grey[stroke].mean() < grey[~stroke].mean() - 50  # a dark stroke on a lighter field


def test_progressive_jpeg_photo_lowers_its_quality_to_fit() -> None:
    best = progressive_jpeg_photo(96, 64)
    fitted = progressive_jpeg_photo(96, 64, max_bytes=len(best) - 1)
    assert len(fitted) < len(best)


# TIFF.


def test_tiff_one_strip_per_row_has_a_strip_per_row() -> None:
    data = tiff_one_strip_per_row(3, 500)
    entries = tiff_entries(data)
    assert entries[278][2] == (1,)  # RowsPerStrip
    kind, count, offsets = entries[273]  # StripOffsets
    assert (kind, count) == (3, 500)
    assert entries[279][:2] == (3, 500) and set(entries[279][2]) == {3}
    assert entries[259][2] == (1,)  # uncompressed
    image = decoded(data)
    assert isinstance(image, TiffImagePlugin.TiffImageFile)
    assert (image.mode, image.size) == ("L", (3, 500))
    assert len(image.tag_v2[273]) == 500
    rows = np.asarray(image)
    for y in (0, 1, 250, 499):
        assert rows[y].tobytes() == data[offsets[y] : offsets[y] + 3]


def test_tiff_one_strip_per_row_default_has_900000_short_strips() -> None:
    data = tiff_one_strip_per_row()
    entries = tiff_entries(data)
    assert entries[256][2] == (1,) and entries[257][2] == (900_000,)
    assert entries[273][:2] == (3, 900_000)  # StripOffsets: SHORT
    assert entries[279][:2] == (3, 900_000)  # StripByteCounts: SHORT
    assert len(data) <= MAX_UPLOAD_BYTES


def test_tiff_one_strip_per_row_counts_rows_over_64_kib_in_longs() -> None:
    data = tiff_one_strip_per_row(70_000, 3)
    entries = tiff_entries(data)
    assert entries[273] == (3, 3, (8, 8, 8))  # one 70,000-byte row shared by the three strips
    assert entries[279] == (4, 3, (70_000,) * 3)
    assert decoded(data).size == (70_000, 3)


def test_float_tiff_with_nan_has_one_nan_in_a_smooth_field_with_a_dark_stroke() -> None:
    data = float_tiff_with_nan(64)
    entries = tiff_entries(data)
    assert entries[258][2] == (32,) and entries[339][2] == (3,)  # 32-bit IEEE float
    assert entries[259][2] == (8,)  # Adobe deflate
    image = decoded(data)
    assert (image.mode, image.size) == ("F", (64, 64))
    pixels = np.asarray(image)
    assert np.argwhere(np.isnan(pixels)).tolist() == [[64 // 9, 64 // 7]]
    stroke = digit_array(64, 64) == 255
    assert np.allclose(pixels[stroke], 0.05)
    field = pixels[~stroke]
    assert 0.55 <= np.nanmin(field) and np.nanmax(field) <= 0.9


# GIF.


def test_gif_comment_many_subblocks_has_one_byte_subblocks() -> None:
    data = gif_comment_many_subblocks(1000)
    blocks = gif_comment_subblocks(data)
    assert blocks == [b"a"] * 1000
    image = decoded(data)
    assert image.size == (28, 28)
    assert image.info["comment"] == b"a" * 1000


def test_gif_comment_many_subblocks_default_fits_the_upload_limit() -> None:
    data = gif_comment_many_subblocks()
    assert data.count(b"\x01a") >= 2_600_000
    assert 5_000_000 < len(data) <= MAX_UPLOAD_BYTES


# PNG.


def test_png_many_text_chunks_has_that_many_text_chunks_before_the_pixels() -> None:
    data = png_many_text_chunks(500)
    kinds = [kind for kind, _ in png_chunks(data)]
    assert kinds == [b"IHDR"] + [b"tEXt"] * 500 + [b"IDAT", b"IEND"]
    image = decoded(data)
    assert isinstance(image, PngImagePlugin.PngImageFile)
    assert (image.mode, image.size) == ("L", (28, 28))
    assert image.text == {"a": ""}


def test_png_many_text_chunks_can_be_strictly_conformant() -> None:
    chunks = png_chunks(png_many_text_chunks(3, data=b"a\x00"))
    assert [body for kind, body in chunks if kind == b"tEXt"] == [b"a\x00"] * 3


def test_png_many_text_chunks_default_fits_the_upload_limit() -> None:
    data = png_many_text_chunks()
    assert len(data) == len(png_many_text_chunks(0)) + 400_000 * 13
    assert len(data) <= MAX_UPLOAD_BYTES


def test_png_ztxt_bombs_chunks_each_inflate_to_the_requested_size() -> None:
    data = png_ztxt_bombs(3, 4096)
    chunks = png_chunks(data)
    texts = [body for kind, body in chunks if kind == b"zTXt"]
    assert len(texts) == 3
    keywords = []
    for body in texts:
        keyword, rest = body.split(b"\x00", 1)
        assert rest[0] == 0  # deflate
        assert zlib.decompress(rest[1:]) == bytes(4096)
        keywords.append(keyword.decode())
    assert keywords == ["c0", "c1", "c2"]
    image = decoded(data)
    assert isinstance(image, PngImagePlugin.PngImageFile)
    assert {key: len(value) for key, value in image.text.items()} == dict.fromkeys(keywords, 4096)


def test_png_ztxt_bombs_default_is_60_mib_of_text_in_64_kib() -> None:
    data = png_ztxt_bombs()
    assert len(data) <= 64 * 1024
    texts = [body for kind, body in png_chunks(data) if kind == b"zTXt"]
    assert len(texts) == 60
    keyword, rest = texts[-1].split(b"\x00", 1)
    assert keyword == b"c59" and len(zlib.decompress(rest[1:])) == 1 << 20


def test_png_16bit_is_a_legal_16_bit_grey_png_with_one_stroke() -> None:
    data = png_16bit(64, 48)
    chunks = png_chunks(data)
    assert chunks[0][0] == b"IHDR"
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (64, 48, 16, 0, 0, 0, 0)
    image = decoded(data)
    assert (image.mode, image.size) == ("I;16", (64, 48))
    pixels = np.asarray(image)
    assert np.array_equal(pixels == 0x1000, digit_array(64, 48) == 255)
    assert set(np.unique(pixels).tolist()) == {0x1000, 0xE000}


# BMP.


def test_bmp_rle8_is_an_rle8_bmp_with_an_end_of_line_per_row() -> None:
    data = bmp_rle8(64, 48)
    offset, header_size, width, height, _, bits, compression, size = struct.unpack_from(
        "<IIiiHHII", data, 10
    )
    assert (header_size, width, height, bits, compression) == (40, 64, 48, 8, 1)
    pixels = data[offset:]
    assert len(pixels) == size
    assert rle8_escapes(pixels) == [0] * 48 + [1]
    image = decoded(data)
    assert (image.mode, image.size) == ("L", (64, 48))
    assert image.info["compression"] == 1
    assert np.array_equal(np.asarray(image), digit_array(64, 48))
