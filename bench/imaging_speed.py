"""Time the upload pipeline (decode, then preprocess) per image, in-process, without HTTP.

    python -m bench.imaging_speed            # median of repeated runs, per kind of upload

Uploads timed: a 28 x 28 MNIST test digit as stored (PNG), the same digit inverted (black on
white, which takes the full preprocessing path), the benchmark's 900 x 900 phone-photo JPEG
(:func:`bench.images.render_photo`), that photo as a 1280 x 960 phone photo JPEG (target:
decode and preprocess at p50 <= 15 ms), a 900 x 900 canvas PNG (RGB, digit off-centre) and the
photo enlarged to a 4000 x 3000 JPEG.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from PIL import Image

from app.imaging.decode import decode_upload
from app.imaging.pipeline import prepare_upload
from app.imaging.structure import DecodeLimits
from bench.images import load_test_digits, render_photo

LIMITS = DecodeLimits(max_pixels=40_000_000)
PHONE_PHOTO = "1280x960 JPEG phone photo"
PHONE_PHOTO_TARGET_MS = 15.0
"""Decoding and preprocessing a 1280 x 960 phone photo must take at most this (median)."""
REPO_ROOT = Path(__file__).resolve().parent.parent


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    """``image`` saved as ``image_format``."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def uploads() -> dict[str, bytes]:
    """The uploads to time, by name."""
    digits, _, _ = load_test_digits(1, REPO_ROOT)
    digit = digits[0]
    photo = render_photo(digit)
    canvas = Image.new("RGB", (900, 900), (255, 255, 255))
    strokes = Image.fromarray(255 - digit).resize((300, 300), Image.Resampling.BICUBIC)
    canvas.paste(strokes.convert("RGB"), (500, 80))
    large = photo.resize((4000, 3000), Image.Resampling.BICUBIC)
    phone = photo.resize((1280, 960), Image.Resampling.BICUBIC)
    return {
        "28x28 PNG, MNIST digit": encoded(Image.fromarray(digit), "PNG"),
        "28x28 PNG, inverted": encoded(Image.fromarray(255 - digit), "PNG"),
        "900x900 JPEG photo": encoded(photo, "JPEG", quality=90),
        PHONE_PHOTO: encoded(phone, "JPEG", quality=90),
        "900x900 PNG canvas": encoded(canvas, "PNG"),
        "4000x3000 JPEG photo": encoded(large, "JPEG", quality=90),
    }


def median_seconds(work: Callable[[], object], budget_s: float) -> float:
    """Median duration of ``work`` over repeated runs lasting about ``budget_s`` in total."""
    work()
    durations: list[float] = []
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline or len(durations) < 5:
        started = time.perf_counter()
        work()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the median decode and decode+preprocess time of each upload."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement")
    arguments = parser.parse_args(argv)
    print(f"{'upload':<26} {'bytes':>9} {'decode':>10} {'decode+preprocess':>18}")
    met = True
    for name, data in uploads().items():
        decode = median_seconds(partial(decode_upload, data, LIMITS), arguments.seconds)
        prepare = median_seconds(partial(prepare_upload, data, LIMITS), arguments.seconds)
        print(f"{name:<26} {len(data):>9,} {decode * 1e3:>8.3f} ms {prepare * 1e3:>15.3f} ms")
        if name == PHONE_PHOTO:
            met = prepare * 1e3 <= PHONE_PHOTO_TARGET_MS
    print(f"{PHONE_PHOTO}: target p50 <= {PHONE_PHOTO_TARGET_MS:g} ms {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
