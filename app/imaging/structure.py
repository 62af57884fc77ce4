"""Cheap structure checks of an upload, before any pixel is decoded: refuse what no real digit
photo needs.

A small file can still cost a decoder seconds of CPU or hundreds of megabytes: a progressive
JPEG with thousands of scans, a JPEG with a million empty segments, a TIFF with one strip per
row, a GIF comment of millions of one-byte sub-blocks, a PNG with hundreds of thousands of text
chunks or compressed text that inflates a thousandfold. Their declared pixel counts are small,
so the pixel limit does not catch them. :func:`check_structure` walks the file's own framing
(markers, chunks, blocks, directory entries), stopping as soon as a limit is passed, so the
walk itself is bounded, and raises :class:`~app.errors.ImageTooComplexError` (413) naming the
limit. The limits are settings (:class:`DecodeLimits`); what passes still decodes inside the
decoder sandbox (:mod:`app.imaging.sandbox`), under hard CPU and memory limits.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import Final

from app.errors import ImageTooComplexError, InvalidImageError, UnsupportedMediaTypeError

_RLE_BMP_MAX_PIXELS: Final = 1_000_000
"""Pillow decodes run-length-encoded BMPs in Python, about a microsecond a pixel."""

_JPEG_MARKER: Final = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
"""A marker in a JPEG's entropy-coded data: 0xFF followed by anything but stuffing (0x00), a
restart marker (0xD0-0xD7) or fill (0xFF)."""
_JPEG_PROGRESSIVE_FRAMES: Final = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_IHDR_LENGTH: Final = 13
_PNG_IHDR_END: Final = 24
"""Bytes of the signature and the ``IHDR`` chunk's length, type, width and height."""
_PNG_COMPRESSED_METADATA: Final = frozenset({b"zTXt", b"iTXt", b"iCCP"})
_TIFF_STRIP_OFFSETS: Final = 273
_TIFF_TILE_OFFSETS: Final = 324
_TIFF_MAX_DIRECTORIES: Final = 16


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """What one upload may declare and contain before it is decoded."""

    max_pixels: int
    """Width x height (413 above)."""
    max_segments: int = 50_000
    """Markers, chunks, blocks, strips or tiles in one file."""
    max_jpeg_scans: int = 32
    """Scans of one JPEG (a progressive photo has about ten)."""
    max_metadata_bytes: int = 1 << 20
    """Compressed metadata (PNG text and colour profiles) once inflated."""
    max_decoded_bytes: int = 256 << 20
    """Memory a JPEG decoder may need for its coefficients (progressive JPEGs keep them all)."""


def check_structure(data: bytes, image_format: str, limits: DecodeLimits) -> None:
    """Walk the structure of an upload of ``image_format`` (a Pillow format name) and raise
    :class:`~app.errors.ImageTooComplexError` when it passes a limit; a framing that is broken
    is left to the decoder, which refuses it as invalid."""
    checker = _CHECKERS.get(image_format)
    if checker is not None:
        checker(data, limits)


def _too_complex(what: str, limit: int, setting: str) -> ImageTooComplexError:
    return ImageTooComplexError(
        f"the image has more {what} than the {limit:,} allowed ({setting}); "
        "send a simpler image, such as a plain PNG or JPEG"
    )


def _check_jpeg(data: bytes, limits: DecodeLimits) -> None:
    """Count a JPEG's segments and scans; bound a progressive frame's coefficient memory."""
    position, segments, scans = 2, 0, 0
    end = len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        segments += 1
        if segments > limits.max_segments:
            raise _too_complex("segments", limits.max_segments, "MAX_IMAGE_SEGMENTS")
        if marker == 0xD9:
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker in _JPEG_PROGRESSIVE_FRAMES:
            _check_progressive_frame(data, position + 4, limits)
        position += 2 + length
        if marker == 0xDA:
            scans += 1
            if scans > limits.max_jpeg_scans:
                raise _too_complex("scans", limits.max_jpeg_scans, "MAX_JPEG_SCANS")
            following = _JPEG_MARKER.search(data, position)
            if following is None:
                return
            position = following.start()


def _check_progressive_frame(data: bytes, frame: int, limits: DecodeLimits) -> None:
    """A progressive JPEG is decoded from all its coefficients at once, whatever the output
    scale: two bytes per pixel and component."""
    if frame + 6 > len(data):
        return
    height, width, components = struct.unpack_from(">HHB", data, frame + 1)
    needed = width * height * components * 2
    if needed > limits.max_decoded_bytes:
        raise ImageTooComplexError(
            f"this progressive JPEG needs {needed >> 20:,} MB to decode, more than the "
            f"{limits.max_decoded_bytes >> 20:,} MB allowed (DECODE_MEMORY_MB); send a "
            "smaller or baseline JPEG"
        )


@dataclass(frozen=True, slots=True)
class PngLayout:
    """What :func:`check_png_structure` learnt about a PNG: its size and its chunk types."""

    width: int
    height: int
    chunk_types: frozenset[bytes]


def png_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's ``IHDR`` chunk (not verified), or None if ``data`` does
    not start with a PNG signature and header. The one reader of the PNG header.

    >>> png_dimensions(b"GIF89a")
    """
    if len(data) < _PNG_IHDR_END or not data.startswith(_PNG_SIGNATURE):
        return None
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def check_png_structure(data: bytes, limits: DecodeLimits) -> PngLayout:
    """Walk a PNG's chunks up to ``IEND``, verifying each one's length and checksum, counting
    them, and inflating its compressed metadata (``zTXt``, ``iTXt``, ``iCCP``) within
    ``limits``; return its size and chunk types.

    Raises :class:`~app.errors.InvalidImageError` for a truncated file, a chunk whose checksum
    does not match (a corrupted transfer), a file without ``IEND`` or one that does not start
    with a well-formed ``IHDR`` chunk, and :class:`~app.errors.ImageTooComplexError` past
    ``limits.max_segments`` chunks or ``limits.max_metadata_bytes`` of inflated metadata.
    """
    dimensions = png_dimensions(data)
    if dimensions is None or data[8:12] != struct.pack(">I", _IHDR_LENGTH):
        raise InvalidImageError("the PNG image does not start with its header chunk")
    position, chunks, inflated = len(_PNG_SIGNATURE), 0, 0
    chunk_types: set[bytes] = set()
    end = len(data)
    while True:
        if position + 8 > end:
            raise InvalidImageError("the PNG image is truncated")
        length, chunk_type = struct.unpack_from(">I4s", data, position)
        body_end = position + 8 + length
        if body_end + 4 > end:
            raise InvalidImageError("the PNG image is truncated")
        (expected_crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(data[position + 4 : body_end]) != expected_crc:
            raise InvalidImageError("the PNG image is corrupt: a chunk's checksum does not match")
        chunks += 1
        if chunks > limits.max_segments:
            raise _too_complex("chunks", limits.max_segments, "MAX_IMAGE_SEGMENTS")
        chunk_types.add(chunk_type)
        if chunk_type in _PNG_COMPRESSED_METADATA:
            budget = limits.max_metadata_bytes - inflated + 1
            inflated += _inflated_size(chunk_type, data[position + 8 : body_end], budget)
            if inflated > limits.max_metadata_bytes:
                raise _too_complex(
                    "metadata bytes", limits.max_metadata_bytes, "MAX_METADATA_BYTES"
                )
        if chunk_type == b"IEND":
            width, height = dimensions
            return PngLayout(width=width, height=height, chunk_types=frozenset(chunk_types))
        position = body_end + 4


def _inflated_size(chunk_type: bytes, body: bytes, budget: int) -> int:
    """How many bytes a compressed metadata chunk's text or profile inflates to, counting no
    further than ``budget``; 0 when it holds nothing compressed (or nothing readable: the
    decoder judges that)."""
    keyword_end = body.find(b"\x00")
    if keyword_end < 0:
        return 0
    start = keyword_end + 2  # zTXt and iCCP: the keyword, its NUL, the method byte.
    if chunk_type == b"iTXt":
        if body[keyword_end + 1 : keyword_end + 2] != b"\x01":
            return 0  # Uncompressed international text.
        language_end = body.find(b"\x00", keyword_end + 3)
        translated_end = body.find(b"\x00", language_end + 1) if language_end >= 0 else -1
        if translated_end < 0:
            return 0
        start = translated_end + 1
    try:
        return len(zlib.decompressobj().decompress(body[start:], budget))
    except zlib.error:
        return 0


def _check_gif(data: bytes, limits: DecodeLimits) -> None:
    """Count a GIF's blocks and data sub-blocks."""
    if len(data) < 13:
        return
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    segments = 0
    end = len(data)
    while position < end:
        introducer = data[position]
        if introducer == 0x3B:
            return
        if introducer == 0x21:
            position += 2
        elif introducer == 0x2C:
            if position + 10 > end:
                return
            local = data[position + 9]
            position += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
        else:
            return
        while position < end:
            size = data[position]
            position += 1 + size
            segments += 1
            if segments > limits.max_segments:
                raise _too_complex("blocks", limits.max_segments, "MAX_IMAGE_SEGMENTS")
            if size == 0:
                break


def _check_tiff(data: bytes, limits: DecodeLimits) -> None:
    """Count a TIFF's directories and the strips or tiles of each."""
    if data[2:4] in (b"+\x00", b"\x00+"):
        raise UnsupportedMediaTypeError("BigTIFF images are not supported; send a PNG or JPEG")
    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        for _ in range(_TIFF_MAX_DIRECTORIES):
            if offset == 0:
                return
            (entries,) = struct.unpack_from(order + "H", data, offset)
            if entries > limits.max_segments:
                raise _too_complex("directory entries", limits.max_segments, "MAX_IMAGE_SEGMENTS")
            for index in range(entries):
                tag, _, count = struct.unpack_from(order + "HHI", data, offset + 2 + 12 * index)
                if tag in (_TIFF_STRIP_OFFSETS, _TIFF_TILE_OFFSETS) and count > limits.max_segments:
                    raise _too_complex("strips or tiles", limits.max_segments, "MAX_IMAGE_SEGMENTS")
            (offset,) = struct.unpack_from(order + "I", data, offset + 2 + 12 * entries)
    except struct.error:
        return
    raise _too_complex("image directories", _TIFF_MAX_DIRECTORIES, "a fixed limit")


def _check_bmp(data: bytes, limits: DecodeLimits) -> None:
    """Bound run-length-encoded BMPs, which Pillow decodes in Python."""
    if len(data) < 34:
        return
    width, height = struct.unpack_from("<ii", data, 18)
    (compression,) = struct.unpack_from("<I", data, 30)
    if compression in (1, 2) and abs(width * height) > _RLE_BMP_MAX_PIXELS:
        raise ImageTooComplexError(
            f"run-length-encoded BMPs are accepted up to {_RLE_BMP_MAX_PIXELS:,} pixels; "
            "send a PNG or JPEG"
        )


def _check_webp(data: bytes, limits: DecodeLimits) -> None:
    """Count a WebP's chunks (an animation's frames among them)."""
    position, chunks = 12, 0
    while position + 8 <= len(data):
        chunks += 1
        if chunks > limits.max_segments:
            raise _too_complex("chunks", limits.max_segments, "MAX_IMAGE_SEGMENTS")
        (size,) = struct.unpack_from("<I", data, position + 4)
        position += 8 + size + (size & 1)


_CHECKERS: Final = {
    "JPEG": _check_jpeg,
    "PNG": check_png_structure,
    "GIF": _check_gif,
    "TIFF": _check_tiff,
    "BMP": _check_bmp,
    "WEBP": _check_webp,
}
