"""Images of handwritten numbers composed from real MNIST test digits, with their true text.

Each number has 2 to 10 digits, in one line or two. The digits are scaled to varying sizes,
set on varying baselines and spaced from wide gaps to touching ink (the next digit slid
against the previous one until their strokes meet). Two styles:

* ``canvas``: dark strokes on a white canvas, as the page or a drawing app exports it (PNG);
* ``photo``: a pen on unevenly lit, slightly warm paper, softened by the lens, with sensor
  noise, saved as a JPEG.

The digits come from the MNIST test split (never trained on); see
:func:`bench.images.load_test_digits`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

Gap = str
"""How far apart neighbouring digits are: ``wide``, ``normal``, ``close`` or ``touching``."""

GAP_WEIGHTS: dict[Gap, float] = {"wide": 0.2, "normal": 0.4, "close": 0.2, "touching": 0.2}
GAP_RANGES: dict[Gap, tuple[float, float]] = {
    "wide": (0.35, 0.8),
    "normal": (0.12, 0.35),
    "close": (0.03, 0.12),
}
"""Gaps between the ink of neighbouring digits, as fractions of the digit height."""

SIZE_RANGE = (0.8, 1.15)
BASELINE_JITTER = 0.1
"""Each digit's height varies by this factor and its baseline by this fraction of the height."""

LINE_GAP_RANGE = (0.4, 0.9)
"""The space between two lines, as a fraction of the digit height."""

INK_LEVEL = 128
"""MNIST pixels at or above this are stroke pixels (for sliding digits together)."""


@dataclass(frozen=True)
class NumberImage:
    """One composed image: its bytes, type, the true text (lines joined by a newline) and how
    it was made."""

    text: str
    data: bytes
    content_type: str
    style: str
    gaps: tuple[Gap, ...]
    sources: tuple[int, ...] = ()
    """Where its digits come from in the set they were drawn from (left to right, line by
    line), when the caller records it."""

    @property
    def touching(self) -> bool:
        """Whether any two neighbouring digits touch."""
        return "touching" in self.gaps


def compose_number(
    digits: list[NDArray[np.uint8]],
    labels: list[int],
    generator: np.random.Generator,
    *,
    style: str,
    lines: int = 1,
    gaps: list[Gap] | None = None,
    digit_height: int = 64,
    canvas_size: tuple[int, int] | None = None,
) -> NumberImage:
    """Compose one number from MNIST ``digits`` (28 x 28, white on black) showing ``labels``.

    ``gaps`` (one per neighbouring pair in a line) are drawn at random unless given;
    ``digit_height`` is the typical digit height in pixels; ``canvas_size`` (width, height), if
    given, is the image's size, the writing centred in it (else a margin around the writing).
    """
    split = (len(digits) + 1) // 2 if lines == 2 else len(digits)
    rows = (
        [list(range(split)), list(range(split, len(digits)))]
        if lines == 2
        else [list(range(len(digits)))]
    )
    all_gaps: list[Gap] = []
    line_images: list[NDArray[np.float32]] = []
    for row in rows:
        if not row:
            continue
        row_gaps = (
            gaps[: len(row) - 1]
            if gaps is not None
            else [_random_gap(generator) for _ in range(len(row) - 1)]
        )
        if gaps is not None:
            gaps = gaps[len(row) - 1 :]
        all_gaps.extend(row_gaps)
        line_images.append(
            _compose_line([digits[index] for index in row], row_gaps, generator, digit_height)
        )
    ink = _stack_lines(line_images, generator, digit_height)
    ink = _place(ink, canvas_size, digit_height)
    text = "\n".join("".join(str(labels[index]) for index in row) for row in rows if row)
    if style == "canvas":
        data, content_type = _canvas(ink), "image/png"
    elif style == "photo":
        data, content_type = _photo(ink, generator), "image/jpeg"
    else:
        raise ValueError(f"unknown style {style!r}: canvas or photo")
    return NumberImage(text, data, content_type, style, tuple(all_gaps))


def _random_gap(generator: np.random.Generator) -> Gap:
    names = list(GAP_WEIGHTS)
    weights = np.array([GAP_WEIGHTS[name] for name in names])
    return names[int(generator.choice(len(names), p=weights / weights.sum()))]


def _digit_ink(digit: NDArray[np.uint8], height: int) -> NDArray[np.float32]:
    """One MNIST digit cropped to its ink and scaled to ``height`` pixels, in [0, 1]."""
    rows = np.flatnonzero(digit.any(axis=1))
    columns = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    scale = height / crop.shape[0]
    width = max(1, round(crop.shape[1] * scale))
    resized = Image.fromarray(crop).resize((width, height), Image.Resampling.BICUBIC)
    ink: NDArray[np.float32] = np.clip(np.asarray(resized, dtype=np.float32) / 255.0, 0.0, 1.0)
    return ink


def _compose_line(
    digits: list[NDArray[np.uint8]],
    gaps: list[Gap],
    generator: np.random.Generator,
    digit_height: int,
) -> NDArray[np.float32]:
    """One line of digits on a black canvas (ink bright)."""
    inks = [
        _digit_ink(digit, round(digit_height * generator.uniform(*SIZE_RANGE))) for digit in digits
    ]
    jitter = round(BASELINE_JITTER * digit_height)
    tallest = max(ink.shape[0] for ink in inks)
    height = tallest + 2 * jitter + 2
    width = sum(ink.shape[1] for ink in inks) + digit_height * len(inks) + 2
    canvas = np.zeros((height, width), dtype=np.float32)
    x = 1
    for index, ink in enumerate(inks):
        bottom = height - 1 - jitter + int(generator.integers(-jitter, jitter + 1))
        top = bottom - ink.shape[0]
        if index > 0:
            gap = gaps[index - 1]
            if gap == "touching":
                x = _touching_left(canvas, ink, top, x)
            else:
                x += round(generator.uniform(*GAP_RANGES[gap]) * digit_height)
        region = canvas[top:bottom, x : x + ink.shape[1]]
        np.maximum(region, ink, out=region)
        x += ink.shape[1]
    columns = np.flatnonzero(canvas.any(axis=0))
    return canvas[:, : columns[-1] + 2]


def _touching_left(canvas: NDArray[np.float32], ink: NDArray[np.float32], top: int, x: int) -> int:
    """The left edge at which ``ink`` (placed at row ``top``) first touches the strokes on
    ``canvas``, sliding it leftwards from ``x`` (the previous digit's right edge)."""
    height, width = ink.shape
    strokes = ink >= INK_LEVEL / 255.0
    for left in range(x, max(0, x - width) - 1, -1):
        region = canvas[top : top + height, left : left + width] >= INK_LEVEL / 255.0
        if (region & strokes).any():
            return left
    return x


def _stack_lines(
    lines: list[NDArray[np.float32]], generator: np.random.Generator, digit_height: int
) -> NDArray[np.float32]:
    """The lines one above the other, left-aligned with a little indent, with a gap."""
    if len(lines) == 1:
        return lines[0]
    gap = round(generator.uniform(*LINE_GAP_RANGE) * digit_height)
    indents = [int(generator.integers(0, digit_height // 2 + 1)) for _ in lines]
    width = max(line.shape[1] + indent for line, indent in zip(lines, indents, strict=True))
    height = sum(line.shape[0] for line in lines) + gap * (len(lines) - 1)
    canvas = np.zeros((height, width), dtype=np.float32)
    y = 0
    for line, indent in zip(lines, indents, strict=True):
        canvas[y : y + line.shape[0], indent : indent + line.shape[1]] = line
        y += line.shape[0] + gap
    return canvas


def _place(
    ink: NDArray[np.float32], canvas_size: tuple[int, int] | None, digit_height: int
) -> NDArray[np.float32]:
    """The writing centred on a canvas of ``canvas_size`` (shrunk to fit if needed), or with a
    margin of half a digit height."""
    if canvas_size is None:
        margin = digit_height // 2
        return np.pad(ink, margin)
    width, height = canvas_size
    scale = min(1.0, 0.9 * width / ink.shape[1], 0.9 * height / ink.shape[0])
    if scale < 1.0:
        size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
        ink = np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BOX), dtype=np.float32)
    canvas = np.zeros((height, width), dtype=np.float32)
    top, left = (height - ink.shape[0]) // 2, (width - ink.shape[1]) // 2
    canvas[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return canvas


def _canvas(ink: NDArray[np.float32]) -> bytes:
    """Dark strokes on white, as a PNG."""
    grey = (255.0 - 238.0 * ink).clip(0, 255).astype(np.uint8)
    return _encode(Image.fromarray(grey, mode="L"), "PNG")


def _photo(ink: NDArray[np.float32], generator: np.random.Generator) -> bytes:
    """A pen on unevenly lit paper, softened and noisy, as a JPEG."""
    height, width = ink.shape
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    rows /= height
    columns /= width
    slope = generator.uniform(-30.0, 30.0, size=2)
    lighting = 205.0 + slope[0] * (columns - 0.5) + slope[1] * (rows - 0.5)
    lighting -= 25.0 * ((rows - 0.5) ** 2 + (columns - 0.5) ** 2)
    paper = lighting[..., np.newaxis] * np.array([1.0, 0.98, 0.93], dtype=np.float32)
    pen = np.array(
        [[28.0, 34.0, 70.0], [20.0, 20.0, 24.0], [40.0, 60.0, 140.0]][int(generator.integers(3))],
        dtype=np.float32,
    )
    strength = ink[..., np.newaxis] * np.float32(generator.uniform(0.75, 0.95))
    scene = paper * (1.0 - strength) + pen * strength
    focused = Image.fromarray(scene.clip(0, 255).astype(np.uint8), mode="RGB")
    soft = np.asarray(
        focused.filter(ImageFilter.GaussianBlur(radius=float(generator.uniform(0.5, 1.5)))),
        dtype=np.float32,
    )
    noisy = soft + generator.normal(0.0, 3.0, size=soft.shape).astype(np.float32)
    return _encode(Image.fromarray(noisy.clip(0, 255).astype(np.uint8), mode="RGB"), "JPEG")


def _encode(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return buffer.getvalue()


def generated_numbers(
    images: NDArray[np.uint8], labels: NDArray[np.uint8], count: int, *, seed: int
) -> list[NumberImage]:
    """``count`` numbers of 2 to 10 MNIST test digits (drawn at random from ``images``), half
    canvases and half photos, a quarter of them in two lines, with random gaps and sizes."""
    generator = np.random.default_rng(seed)
    numbers = []
    for index in range(count):
        length = int(generator.integers(2, 11))
        chosen = generator.choice(len(images), size=length, replace=False)
        style = "canvas" if index % 2 == 0 else "photo"
        lines = 2 if length >= 4 and generator.random() < 0.25 else 1
        number = compose_number(
            [images[position] for position in chosen],
            [int(labels[position]) for position in chosen],
            generator,
            style=style,
            lines=lines,
            digit_height=int(generator.integers(40, 120)),
        )
        numbers.append(replace(number, sources=tuple(int(position) for position in chosen)))
    return numbers


def touching_pairs(
    images: NDArray[np.uint8], labels: NDArray[np.uint8], count: int, *, seed: int
) -> list[NumberImage]:
    """``count`` two-digit numbers whose digits touch, half canvases and half photos."""
    generator = np.random.default_rng(seed)
    pairs = []
    for index in range(count):
        chosen = generator.choice(len(images), size=2, replace=False)
        pair = compose_number(
            [images[position] for position in chosen],
            [int(labels[position]) for position in chosen],
            generator,
            style="canvas" if index % 2 == 0 else "photo",
            gaps=["touching"],
            digit_height=int(generator.integers(40, 120)),
        )
        pairs.append(replace(pair, sources=tuple(int(position) for position in chosen)))
    return pairs
