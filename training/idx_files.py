"""Reader for the IDX files MNIST is published in, with checks that name the faulty file.

An IDX file is a big-endian header followed by raw values: two zero bytes, a type byte
(``0x08`` for unsigned bytes), the number of dimensions, one 4-byte size per dimension, then
the values. MNIST uses ``0x00000803`` (images: count x rows x columns) and ``0x00000801``
(labels: count). Files may be gzip-compressed; compression is recognised from the content, not
from the file name.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.model_contract import IMAGE_SIDE, NUM_CLASSES

IDX_UNSIGNED_BYTE = 0x08
"""Type code of unsigned-byte values, the only type MNIST uses."""

IMAGES_MAGIC = 0x00000803
"""Magic number of an IDX file of unsigned-byte images (three dimensions)."""

LABELS_MAGIC = 0x00000801
"""Magic number of an IDX file of unsigned-byte labels (one dimension)."""

GZIP_SIGNATURE = b"\x1f\x8b"
"""First two bytes of every gzip stream."""


class DatasetError(ValueError):
    """Digit data that cannot be read or does not look like MNIST; the message names the source."""


def read_file_bytes(path: Path) -> bytes:
    """Return the content of ``path``, decompressed when it is a gzip stream."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the file ({error.strerror or error})") from error
    if not raw.startswith(GZIP_SIGNATURE):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DatasetError(
            f"{path}: the gzip stream is damaged or truncated ({error}); "
            "download or copy the file again"
        ) from error


def _parse_idx(path: Path, expected_magic: int) -> tuple[tuple[int, ...], bytes]:
    """Check the header of an IDX file and return its dimensions and value bytes."""
    content = read_file_bytes(path)
    if len(content) < 4:
        raise DatasetError(f"{path}: truncated IDX file ({len(content)} bytes, no header)")
    (magic,) = struct.unpack(">I", content[:4])
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DatasetError(
            f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(IDX unsigned-byte {kind}); is this the right file?"
        )
    dimension_count = expected_magic & 0xFF
    header_size = 4 + 4 * dimension_count
    if len(content) < header_size:
        raise DatasetError(f"{path}: truncated IDX header ({len(content)} of {header_size} bytes)")
    dimensions = struct.unpack(f">{dimension_count}I", content[4:header_size])
    values = content[header_size:]
    expected_size = int(np.prod(dimensions, dtype=np.int64))
    if len(values) < expected_size:
        raise DatasetError(
            f"{path}: truncated IDX file: the header announces {expected_size} values "
            f"{tuple(dimensions)} but only {len(values)} follow"
        )
    if len(values) > expected_size:
        raise DatasetError(
            f"{path}: {len(values) - expected_size} unexpected bytes after the "
            f"{expected_size} values announced by the header {tuple(dimensions)}"
        )
    return tuple(dimensions), values


def read_idx_images(path: Path) -> NDArray[np.uint8]:
    """Read an IDX image file (gzip or not) as a ``uint8`` array of shape (n, 28, 28).

    Raises :class:`DatasetError` naming ``path`` when the file is unreadable, truncated, has the
    wrong magic number or holds images that are not 28 x 28.
    """
    dimensions, values = _parse_idx(path, IMAGES_MAGIC)
    count, rows, columns = dimensions
    if (rows, columns) != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(
            f"{path}: images are {rows}x{columns} pixels, MNIST digits are "
            f"{IMAGE_SIDE}x{IMAGE_SIDE}"
        )
    return np.frombuffer(values, dtype=np.uint8).reshape(count, rows, columns).copy()


def read_idx_labels(path: Path) -> NDArray[np.uint8]:
    """Read an IDX label file (gzip or not) as a ``uint8`` array of digits 0 to 9.

    Raises :class:`DatasetError` naming ``path`` when the file is unreadable, truncated, has the
    wrong magic number or holds a label outside 0 to 9.
    """
    _, values = _parse_idx(path, LABELS_MAGIC)
    labels = np.frombuffer(values, dtype=np.uint8).copy()
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DatasetError(f"{path}: label {int(labels.max())} is not a digit 0-{NUM_CLASSES - 1}")
    return labels


def write_idx(path: Path, values: NDArray[np.uint8], *, compress: bool) -> None:
    """Write ``values`` (labels of shape (n,) or images of shape (n, rows, cols)) as IDX.

    The inverse of the readers above; used to build test fixtures and small local data sets.
    """
    if values.dtype != np.uint8 or values.ndim not in (1, 3):
        raise ValueError(f"expected uint8 labels (n,) or images (n, h, w), got {values.shape}")
    header = struct.pack(">I", (IDX_UNSIGNED_BYTE << 8) | values.ndim)
    header += struct.pack(f">{values.ndim}I", *values.shape)
    content = header + np.ascontiguousarray(values).tobytes()
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
