"""Digits typed in fonts and drawn like the outliers' glyphs: training digits, with their labels.

Why: over a third of the not-a-digit images the network learns to doubt (:mod:`training.outliers`)
are letters and symbols typed in fonts, slanted, thickened, blurred and redrawn. Its training
digits are all handwritten (MNIST and renderings of it). Without typed *digits*, a steady,
even stroke is itself evidence of "not a digit", and real people's neat canvas digits pay for
it: most of the development set's correctly read digits that the model trained without them
flagged were such digits (a 1 with a flag and a base, a 6 with a straight back, a 9 with a flat
tail, a font-like 5). Typed digits drawn the same way as the glyph outliers, from the same
fonts, leave the shape, not the look of the stroke, to decide (see :mod:`training.profiles`
for what they changed).

Each digit (``index % 10``, so the ten are balanced) is typed with a random font, size, weight,
slant and rotation, maybe blurred or inverted, passed through the service's preprocessing
(:func:`app.imaging.preprocess.to_mnist_digit`), and half of them are drawn again as photos,
canvases and scans (:func:`training.renderings.render`), as the outliers are. The set is made in
worker processes and cached (:mod:`training.cache`).
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from training.cache import (
    CHUNKS_PER_WORKER,
    MAX_WORKERS,
    cached_arrays,
    run_in_processes,
    source_digest,
)
from training.datasets import DigitSet
from training.outliers import (
    CODE_MODULES,
    as_sent,
    blank_canvas,
    font_files,
    glyph_pixels,
    load_font,
    type_on,
)

DIGITS: Final = "0123456789"

_CODE_MODULES: Final = ("training/typed_digits.py", *CODE_MODULES)
"""Source files whose change invalidates the cache."""


@cache
def digit_fonts() -> tuple[str | None, ...]:
    """The fonts (None: Pillow's own) that draw all ten digits, each unlike the "missing"
    box and unlike the others."""
    usable: list[str | None] = []
    for font_file in [*font_files(), None]:
        font = load_font(font_file, 48)
        drawings = {glyph_pixels(font, digit) for digit in DIGITS}
        if len(drawings) == len(DIGITS) and glyph_pixels(font, "\U0010fffd") not in drawings:
            usable.append(font_file)
    return tuple(usable)


def type_digit(rng: np.random.Generator, digit: int) -> Image.Image:
    """``digit`` typed on a white canvas as :mod:`training.outliers` types a glyph: a random
    font, size and weight, slanted and rotated a little, maybe blurred or inverted."""
    fonts = digit_fonts()
    font_file = fonts[int(rng.integers(len(fonts)))]
    canvas = blank_canvas(rng)
    size = max(12, int(min(canvas.size) * rng.uniform(0.35, 0.75)))
    canvas = type_on(rng, canvas, DIGITS[digit], load_font(font_file, size), size)
    if rng.random() < 0.5:
        canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5))))
    if rng.random() < 0.3:
        canvas = Image.eval(canvas, lambda value: 255 - value)
    return canvas


def render_typed_digits(count: int, seed: int) -> DigitSet:
    """``count`` typed digits through the service's preprocessing, with their labels; the few
    in which the preprocessing finds nothing are left out. Cached."""
    if count <= 0:
        return DigitSet(
            images=np.zeros((0, 28, 28), dtype=np.uint8), labels=np.zeros(0, dtype=np.uint8)
        )
    key = source_digest(f"typed:{count}:{seed}:{font_files()}", [], _CODE_MODULES)

    def build() -> dict[str, NDArray[np.generic]]:
        chunks = np.array_split(np.arange(count), MAX_WORKERS * CHUNKS_PER_WORKER)
        tasks = [(chunk.tolist(), seed) for chunk in chunks if len(chunk)]
        results = run_in_processes(_render_chunk, tasks)
        return {
            "images": np.concatenate([images for images, _ in results]),
            "labels": np.concatenate([labels for _, labels in results]),
        }

    stored = cached_arrays(f"typed-{key}", build)
    return DigitSet(
        images=stored["images"].astype(np.uint8), labels=stored["labels"].astype(np.uint8)
    )


def _render_chunk(task: tuple[list[int], int]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Type, preprocess and maybe redraw the digits numbered ``indices`` (in a worker process);
    the images and their labels."""
    from app.errors import InputError
    from app.imaging.structure import DecodeLimits

    indices, seed = task
    limits = DecodeLimits(max_pixels=40_000_000)
    images: list[NDArray[np.uint8]] = []
    labels: list[int] = []
    for index in indices:
        # Each digit depends on the seed and its own number only.
        rng = np.random.default_rng([seed, 7927, index])
        digit = index % len(DIGITS)
        try:
            image = as_sent(type_digit(rng, digit), rng, limits)
        except InputError:
            continue
        images.append(image)
        labels.append(digit)
    if not images:
        return np.zeros((0, 28, 28), dtype=np.uint8), np.zeros(0, dtype=np.uint8)
    return np.stack(images), np.array(labels, dtype=np.uint8)
