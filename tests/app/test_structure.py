"""Structure checks before any decode (app/imaging/structure.py): each hostile file of
tests/hostile_images.py whose cost lies in its structure is refused at full strength, quickly
and without decoding; ordinary images of every format pass."""

from __future__ import annotations

import io
import time
from typing import Final

import numpy as np
import pytest
from PIL import Image, ImageDraw, PngImagePlugin

from app.errors import ImageTooComplexError, UnsupportedMediaTypeError
from app.imaging.decode import sniff_image_format
from app.imaging.structure import DecodeLimits, check_png_structure, check_structure
from tests.hostile_images import HOSTILE_CASES

LIMITS: Final = DecodeLimits(max_pixels=40_000_000)

REFUSED_BY_STRUCTURE: Final = {
    "progressive_jpeg_many_scans": "scans",
    "jpeg_many_app_segments": "segments",
    "tiff_one_strip_per_row": "strips or tiles",
    "gif_comment_many_subblocks": "blocks",
    "png_many_text_chunks": "chunks",
    "png_ztxt_bombs": "metadata bytes",
    "bmp_rle8": "run-length-encoded",
}
"""Attacks whose cost lies in their structure, and the words of the refusal."""


def _photo(image_format: str, mode: str = "RGB", **options: object) -> bytes:
    image = Image.new("RGB", (640, 480), (236, 234, 228))
    ImageDraw.Draw(image).line([(300, 80), (330, 400)], fill=(25, 25, 70), width=18)
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(REFUSED_BY_STRUCTURE))
def test_hostile_structure_is_refused_quickly_without_decoding(name: str) -> None:
    data = HOSTILE_CASES[name]()
    image_format = sniff_image_format(data[:1024])

    started = time.perf_counter()
    with pytest.raises(ImageTooComplexError) as refused:
        check_structure(data, image_format, LIMITS)
    seconds = time.perf_counter() - started

    assert REFUSED_BY_STRUCTURE[name] in str(refused.value)
    assert refused.value.status_code == 413
    assert seconds < 0.5


@pytest.mark.parametrize(
    ("image_format", "options"),
    [
        ("JPEG", {"quality": 90}),
        ("JPEG", {"quality": 90, "progressive": True}),
        ("PNG", {}),
        ("PNG", {"optimize": True}),
        ("GIF", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
        ("TIFF", {}),
        ("BMP", {}),
        ("WEBP", {"quality": 80}),
    ],
)
def test_ordinary_images_pass(image_format: str, options: dict[str, object]) -> None:
    check_structure(_photo(image_format, **options), image_format, LIMITS)


def test_a_progressive_jpeg_too_large_for_the_memory_budget_is_refused() -> None:
    data = HOSTILE_CASES["progressive_jpeg_many_scans_cmyk"]()

    with pytest.raises(ImageTooComplexError, match="DECODE_MEMORY_MB"):
        check_structure(data, "JPEG", DecodeLimits(max_pixels=40_000_000, max_jpeg_scans=10**6))


def test_png_metadata_within_the_budget_passes_and_counts_inflated_bytes() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 200_000, zip=True)
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(buffer, format="PNG", pnginfo=info)
    data = buffer.getvalue()

    layout = check_png_structure(data, LIMITS)
    assert layout.width == layout.height == 28
    with pytest.raises(ImageTooComplexError, match="MAX_METADATA_BYTES"):
        check_png_structure(data, DecodeLimits(max_pixels=40_000_000, max_metadata_bytes=100_000))


def test_bigtiff_is_not_supported() -> None:
    header = b"II+\x00\x08\x00\x00\x00" + bytes(16)

    with pytest.raises(UnsupportedMediaTypeError, match="BigTIFF"):
        check_structure(header, "TIFF", LIMITS)
