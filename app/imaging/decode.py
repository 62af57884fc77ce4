"""Uploaded bytes to a Pillow image, refusing everything that is not a sound, reasonably sized
image before it costs memory or time.

The order of checks is what keeps hostile uploads cheap:

1. Empty bytes are refused.
2. The first bytes decide the format. Only PNG, JPEG, GIF, BMP, WebP and TIFF are opened, and
   only with their own Pillow plugin; text, markup, PDF and other known non-image content is
   refused as an unsupported media type.
3. A PNG's chunk structure and checksums are verified (Pillow does not check the pixel chunks).
4. The header is parsed and the declared width x height compared with ``max_pixels`` before any
   pixel data is decoded, so a tiny file declaring 50,000 x 50,000 pixels is refused at once.
5. Only then are the pixels decoded (the first frame of an animation); a large JPEG is decoded
   directly at a reduced scale and in grey (see :mod:`app.imaging.working_size`).

Pillow's own decompression-bomb guard (``PIL.Image.MAX_IMAGE_PIXELS``) is left as it is, a
process-wide safety net; the service's rule is ``max_pixels``, which should be below it. Nothing
here changes Pillow's global settings or the warning filters, so concurrent requests are safe.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from PIL import Image, ImageOps

from app.errors import (
    EmptyUploadError,
    ImageTooComplexError,
    ImageTooLargeError,
    InvalidImageError,
    UnsupportedMediaTypeError,
)
from app.imaging.structure import DecodeLimits, PngLayout, check_png_structure, check_structure
from app.imaging.working_size import WORKING_MIN_SIDE, reduction_factor

SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
"""Pillow format names of the images the service accepts."""

_SNIFF_BYTES = 1024
"""How much of the upload's start is examined to recognise its type."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (_PNG_SIGNATURE, "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)
"""Leading bytes of the supported formats (WebP and BMP are recognised separately)."""

_NON_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript document"),
    (b"PK\x03\x04", "a ZIP archive or office document"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
    (b"MZ", "an executable"),
    (b"\xd0\xcf\x11\xe0", "an office document"),
    (b"OggS", "audio or video"),
    (b"ID3", "audio"),
    (b"fLaC", "audio"),
    (b"\x1a\x45\xdf\xa3", "video"),
    (b"\x00\x00\x01\x00", "an ICO icon, which is not supported"),
    (b"8BPS", "a Photoshop document, which is not supported"),
    (b"qoif", "a QOI image, which is not supported"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image, which is not supported"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image, which is not supported"),
)
"""Leading bytes of common content that is recognisably not a supported image."""

_ALLOWED_TEXT_CONTROLS = frozenset("\t\n\r\f\v")

CHEAP_UPLOAD_MAX_BYTES: Final = 64 * 1024
"""Largest upload :func:`is_cheap_upload` may accept."""

_CHEAP_PNG_CHUNKS: Final = frozenset(
    {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD",
     b"pHYs", b"tEXt", b"tIME", b"eXIf"}
)  # fmt: skip
"""Chunks whose reading costs nothing beyond the pixels' own: no compressed text (``zTXt``,
``iTXt``) or colour profile (``iCCP``), no animation."""

_CHEAP_PNG_LIMITS: Final = DecodeLimits(max_pixels=0, max_segments=32, max_metadata_bytes=0)
"""A cheap PNG has a handful of chunks (Pillow reads each one in Python) and no compressed
metadata."""

_PNG_EXIF_CHUNKS: Final = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt"})
"""The only PNG chunks that can hold EXIF or XMP metadata, where an orientation could be."""

_TOO_MANY_PIXELS = "the image declares far more pixels than allowed (a decompression bomb?)"


def decode_upload(
    data: bytes, limits: DecodeLimits, *, png_layout: PngLayout | None = None
) -> Image.Image:
    """Decode an uploaded image, first frame only, with its EXIF orientation applied.

    A large JPEG is decoded at a reduced scale (a power of two that keeps the longest side at or
    above :data:`~app.imaging.working_size.WORKING_MIN_SIDE`) and, when in colour, directly in
    grey; other formats are decoded at full size. The returned image is loaded and may have any
    Pillow mode (``1``, ``L``, ``P``, ``LA``, ``RGB``, ``RGBA``, ``I;16``, ``I``, ``F``,
    ``CMYK``, ...).

    Raises :class:`~app.errors.EmptyUploadError` for no bytes,
    :class:`~app.errors.UnsupportedMediaTypeError` for content that is not a supported image,
    :class:`~app.errors.ImageTooLargeError` when the header declares more than
    ``limits.max_pixels`` pixels, :class:`~app.errors.ImageTooComplexError` for a structure past
    ``limits`` (:mod:`app.imaging.structure`), and :class:`~app.errors.InvalidImageError` for
    anything that cannot be decoded. No other exception escapes, whatever the bytes, except
    ``MemoryError`` when the process may not have the memory the image needs.

    ``png_layout`` is what :func:`cheap_png_layout` returned for these same bytes and
    ``limits``: its walk of the chunks was at least as strict as this one's, so it is not
    repeated.

    >>> png = bytes.fromhex(
    ...     "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
    ...     "0000000a49444154789c636000000002000148afa4710000000049454e44ae426082"
    ... )
    >>> decode_upload(png, DecodeLimits(max_pixels=100)).size
    (1, 1)
    """
    return decode_upload_sized(data, limits, png_layout=png_layout)[0]


def decode_upload_sized(
    data: bytes,
    limits: DecodeLimits,
    *,
    min_side: int = WORKING_MIN_SIDE,
    png_layout: PngLayout | None = None,
) -> tuple[Image.Image, tuple[int, int]]:
    """:func:`decode_upload`, a large JPEG reduced no further than ``min_side`` on its longest
    side, and the upload's own size (width, height, after its EXIF orientation) that the
    decoded image stands for: positions found in the image are scaled by the ratio of the two
    to be given in the upload's pixels. Raises what :func:`decode_upload` raises."""
    if not data:
        raise EmptyUploadError("the upload is empty: send the image's bytes")
    image_format = sniff_image_format(data[:_SNIFF_BYTES])
    if image_format == "PNG":
        layout = png_layout if png_layout is not None else check_png_structure(data, limits)
        # A PNG without the chunks that hold EXIF or XMP has no orientation to apply.
        may_be_rotated = not layout.chunk_types.isdisjoint(_PNG_EXIF_CHUNKS)
    else:
        check_structure(data, image_format, limits)
        may_be_rotated = True
    image = _open_header(data, image_format)
    width, height = image.size
    _check_pixel_count(width, height, limits.max_pixels)
    decoded = _load_pixels(image, min_side)
    if may_be_rotated:
        decoded = _apply_exif_orientation(decoded)
    if (decoded.width > decoded.height) != (width > height):
        width, height = height, width
    return decoded, (width, height)


def is_cheap_upload(data: bytes, *, max_pixels: int) -> bool:
    """Whether ``data`` is a PNG whose whole classification is small and bounded, judged from
    what has been checked rather than what the file claims: at most
    :data:`CHEAP_UPLOAD_MAX_BYTES` bytes, a verified chunk structure (lengths and checksums),
    at most ``max_pixels`` pixels, a handful of chunks, and none of the chunks whose decoding
    costs more than the pixels do (compressed text or colour profiles, animation).

    >>> is_cheap_upload(b"not a png", max_pixels=40_000)
    False
    """
    return cheap_png_layout(data, max_pixels=max_pixels) is not None


def cheap_png_layout(
    data: bytes, *, max_pixels: int, limits: DecodeLimits | None = None
) -> PngLayout | None:
    """The verified layout of ``data`` when it is a cheap upload (see :func:`is_cheap_upload`),
    else None.

    Its chunk walk is at least as strict as the one ``limits`` ask of every PNG (no more chunks
    than ``limits.max_segments``, no compressed metadata), so the layout can be handed to
    :func:`decode_upload` with the same ``limits``, which then does not walk the chunks again.
    """
    if len(data) > CHEAP_UPLOAD_MAX_BYTES or not data.startswith(_PNG_SIGNATURE):
        return None
    walk_limits = _CHEAP_PNG_LIMITS
    if limits is not None and limits.max_segments < walk_limits.max_segments:
        walk_limits = dataclasses.replace(walk_limits, max_segments=limits.max_segments)
    try:
        layout = check_png_structure(data, walk_limits)
    except (InvalidImageError, ImageTooComplexError):
        return None
    if 0 < layout.width * layout.height <= max_pixels and layout.chunk_types <= _CHEAP_PNG_CHUNKS:
        return layout
    return None


def _check_pixel_count(width: int, height: int, max_pixels: int) -> None:
    """Refuse an empty size, or more than ``max_pixels`` pixels."""
    if width <= 0 or height <= 0:
        raise InvalidImageError("the image declares an empty size")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width} x {height} pixels, more than the {max_pixels:,} allowed"
        )


def sniff_image_format(head: bytes) -> str:
    """The Pillow format name of the image whose first bytes are ``head``.

    Raises :class:`~app.errors.UnsupportedMediaTypeError` for recognisable non-image content
    (text, SVG, HTML, JSON, XML, PDF, archives, ...) and for image formats the service does not
    read, and :class:`~app.errors.InvalidImageError` for bytes that are not recognisable at all.

    >>> sniff_image_format(b"GIF89a....")
    'GIF'
    """
    for signature, image_format in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return image_format
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM") and not _looks_like_text(head):
        return "BMP"
    for signature, description in _NON_IMAGE_SIGNATURES:
        if head.startswith(signature):
            raise UnsupportedMediaTypeError(f"the upload is {description}, not an image")
    if head[4:8] == b"ftyp":
        raise UnsupportedMediaTypeError(
            "the upload is an ISO media file (HEIC, AVIF or video), which is not supported"
        )
    if _looks_like_text(head):
        raise UnsupportedMediaTypeError(
            "the upload is text (for example SVG, HTML, JSON or XML), not an image; "
            f"send one of: {', '.join(SUPPORTED_FORMATS)}"
        )
    raise InvalidImageError(
        f"the upload is not a recognisable image; send one of: {', '.join(SUPPORTED_FORMATS)}"
    )


def _looks_like_text(head: bytes) -> bool:
    """Whether ``head`` reads as text: UTF-8 (or UTF-16 with a byte-order mark) without
    control characters other than white space."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return bool(text) and all(
        character >= " " or character in _ALLOWED_TEXT_CONTROLS for character in text
    )


@contextmanager
def _decoding_errors(message: str) -> Iterator[None]:
    """Turn whatever Pillow raises into the service's errors: a decompression bomb into
    :class:`~app.errors.ImageTooLargeError`, anything else into
    :class:`~app.errors.InvalidImageError` saying ``message``."""
    try:
        yield
    except MemoryError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(_TOO_MANY_PIXELS) from None
    except Exception:
        raise InvalidImageError(message) from None


def _open_header(data: bytes, image_format: str) -> Image.Image:
    """Parse the image's header with the one Pillow plugin for ``image_format``; no pixels yet."""
    with _decoding_errors(
        f"the upload starts like a {image_format} image but its header cannot be read"
    ):
        return Image.open(io.BytesIO(data), formats=[image_format])


def _load_pixels(image: Image.Image, min_side: int) -> Image.Image:
    """Decode the pixels (first frame), a large JPEG at reduced scale."""
    with _decoding_errors(
        f"the {image.format} image is corrupt or truncated and cannot be decoded"
    ):
        if image.format == "JPEG":
            _request_reduced_jpeg_decoding(image, min_side)
        image.load()
    return image


def _request_reduced_jpeg_decoding(image: Image.Image, min_side: int) -> None:
    """Ask libjpeg to decode a large JPEG at 1/2, 1/4 or 1/8 scale and a colour one in grey.

    DCT-domain scaling averages blocks of pixels, so thin strokes fade but do not vanish; the
    preprocessing restores their contrast. The scale keeps the longest side at or above
    :data:`~app.imaging.working_size.WORKING_MIN_SIDE` (or ``min_side``).
    """
    width, height = image.size
    factor = reduction_factor(image.size, min_side)
    requested_size = (max(1, width // factor), max(1, height // factor)) if factor > 1 else None
    grey_mode = "L" if image.mode == "RGB" else None
    if requested_size is not None or grey_mode is not None:
        image.draft(grey_mode, requested_size)


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Rotate or mirror the image as its EXIF orientation tag says (phone photos need this).

    Unreadable EXIF metadata is ignored: the pixels are still good.
    """
    try:
        orientation = image.getexif().get(0x0112, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(image)
    except Exception:
        return image
    return image
