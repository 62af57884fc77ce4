"""The preprocessing's evidence of several digits: pieces side by side, and digit-sized
neighbours left out by the speck filter; one digit, however drawn, is one."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from app.imaging.layout import side_by_side_parts
from app.imaging.preprocess import read_digit

Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]


def _row_of_digits(
    digits: list[NDArray[np.uint8]], gap: int, margin: int = 20
) -> NDArray[np.uint8]:
    """MNIST digits (white on black) side by side, ``gap`` pixels between their 28-pixel tiles,
    dark ink on a white page."""
    width = 2 * margin + 28 * len(digits) + gap * (len(digits) - 1)
    page = np.zeros((28 + 2 * margin, width), dtype=np.uint8)
    for index, digit in enumerate(digits):
        left = margin + index * (28 + gap)
        page[margin : margin + 28, left : left + 28] = digit
    return 255 - page


def test_one_mnist_digit_on_a_page_is_one(mnist_sample: Sample) -> None:
    images, _ = mnist_sample
    counts = [read_digit(_row_of_digits([image], gap=0)).separate_digits for image in images[:300]]
    assert counts.count(1) >= 297, counts


def test_digits_with_a_gap_are_several(mnist_sample: Sample) -> None:
    images, labels = mnist_sample
    wide = [index for index in range(200) if labels[index] not in (1,)][:40]
    found = [
        read_digit(_row_of_digits([images[a], images[b]], gap=6)).separate_digits
        for a, b in zip(wide[::2], wide[1::2], strict=True)
    ]
    assert sum(count >= 2 for count in found) >= 19, found


def test_digits_far_apart_are_several(mnist_sample: Sample) -> None:
    images, _ = mnist_sample
    reading = read_digit(_row_of_digits([images[0], images[1], images[2]], gap=60))
    assert reading.separate_digits >= 2


def test_a_five_with_its_bar_apart_is_one() -> None:
    page = Image.new("L", (120, 160), 255)
    draw = ImageDraw.Draw(page)
    draw.line([(45, 30), (95, 30)], fill=0, width=7)  # the bar, not touching the body
    draw.line([(40, 42), (38, 80)], fill=0, width=7)
    draw.arc([(30, 70), (95, 135)], start=200, end=150, fill=0, width=7)
    assert read_digit(page).separate_digits == 1


def test_side_by_side_parts_ignores_small_marks_and_counts_tall_pieces() -> None:
    ink = np.zeros((40, 80), dtype=np.float32)
    ink[5:35, 10:14] = 1.0  # a tall stroke
    ink[30:33, 30:33] = 1.0  # a speck
    assert side_by_side_parts(ink) == 1
    ink[5:35, 50:54] = 1.0  # another tall stroke
    assert side_by_side_parts(ink) == 2
    assert side_by_side_parts(np.zeros((10, 10), dtype=np.float32)) == 0
