"""Segmentation of numbers (:mod:`app.imaging.segmentation`) on generated images: digits drawn
as pen strokes (spaced, broken into parts, in two lines, among specks and ruled lines) and real
MNIST digits composed into numbers, touching or not."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from app.errors import NoDigitFoundError, TooManyDigitsError
from app.imaging.components import find_runs
from app.imaging.number_layout import Box, NumberLayout
from app.imaging.preprocess import to_mnist_digit
from app.imaging.segmentation import segment_number
from bench.number_images import compose_number

Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]
Stroke = Sequence[tuple[float, float]]
"""A pen stroke as points in a digit's cell: (0, 0) top left, (1, 1) bottom right."""

ONE: list[Stroke] = [[(0.5, 0.0), (0.5, 1.0)]]
SEVEN: list[Stroke] = [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]]
ZERO: list[Stroke] = [
    [
        (0.5 + 0.5 * np.sin(2 * np.pi * step / 24), 0.5 - 0.5 * np.cos(2 * np.pi * step / 24))
        for step in range(25)
    ]
]
BROKEN_SEVEN: list[Stroke] = [[(0.0, 0.0), (0.8, 0.0)], [(1.0, 0.1), (0.35, 1.0)]]
BROKEN_FIVE: list[Stroke] = [
    [(0.3, 0.0), (1.0, 0.0)],
    [(0.12, 0.1), (0.05, 0.45), (0.6, 0.38), (0.95, 0.65), (0.6, 0.98), (0.0, 0.9)],
]
TWO_STROKE_FOUR: list[Stroke] = [
    [(0.55, 0.0), (0.0, 0.65), (1.0, 0.65)],
    # The stem, drawn apart: the pen was lifted short of the bar, above and below it.
    [(0.75, 0.05), (0.75, 0.5)],
    [(0.75, 0.8), (0.75, 1.0)],
]

DIGIT_HEIGHT = 80
CELL_WIDTH = 50
PEN = 9


def draw_number(
    rows: Sequence[Sequence[list[Stroke]]],
    *,
    gap: int = 40,
    size: tuple[int, int] | None = None,
    pen: int = PEN,
) -> Image.Image:
    """Dark pen strokes on white paper: each row of digits on its own line."""
    width = size[0] if size else 60 + max(len(row) for row in rows) * (CELL_WIDTH + gap)
    height = size[1] if size else 60 + len(rows) * (DIGIT_HEIGHT + 60)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for row_number, row in enumerate(rows):
        top = 40 + row_number * (DIGIT_HEIGHT + 60)
        for index, strokes in enumerate(row):
            left = 40 + index * (CELL_WIDTH + gap)
            for stroke in strokes:
                points = [(left + x * CELL_WIDTH, top + y * DIGIT_HEIGHT) for x, y in stroke]
                draw.line(points, fill=20, width=pen, joint="curve")
    return image


def group_count(layout: NumberLayout) -> list[int]:
    """How many groups of ink each line holds."""
    return [len(line) for line in layout.lines]


def whole_boxes(layout: NumberLayout) -> list[list[Box]]:
    """The box of each group (its whole piece), line by line."""
    return [
        [next(piece.box for piece in group.pieces if not piece.cut) for group in line]
        for line in layout.lines
    ]


def test_segment_spaced_digits_gives_one_group_each_left_to_right() -> None:
    layout = segment_number(draw_number([[ONE, SEVEN, ZERO, SEVEN]]), max_digits=32)

    assert group_count(layout) == [4]
    lefts = [box.x for box in whole_boxes(layout)[0]]
    assert lefts == sorted(lefts)


def test_segment_single_digit_gives_one_box_around_it() -> None:
    image = draw_number([[ZERO]])

    layout = segment_number(image, max_digits=32)

    assert group_count(layout) == [1]
    (box,) = whole_boxes(layout)[0]
    ink = np.asarray(image) < 128
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert abs(box.x - columns[0]) <= 3 and abs(box.y - rows[0]) <= 3
    assert abs(box.x + box.width - columns[-1] - 1) <= 3
    assert abs(box.y + box.height - rows[-1] - 1) <= 3


def test_segment_single_digit_draws_it_as_predict_does() -> None:
    image = draw_number([[SEVEN]])

    layout = segment_number(image, max_digits=32)

    (group,) = layout.lines[0]
    whole = next(piece for piece in group.pieces if not piece.cut)
    alone = to_mnist_digit(image)
    # The same tail draws both; the crops differ only by the margin around the ink.
    assert np.abs(whole.digit_image.astype(int) - alone.astype(int)).mean() < 4.0


@pytest.mark.parametrize(
    "strokes", [BROKEN_SEVEN, BROKEN_FIVE, TWO_STROKE_FOUR], ids=["seven-bar", "five-flag", "four"]
)
def test_segment_digit_in_separate_strokes_is_one_group(strokes: list[Stroke]) -> None:
    image = draw_number([[ONE, strokes, ONE]])
    ink = np.asarray(image) < 128
    assert _components_in(ink) >= 4, "the test digit must really be drawn in separate strokes"

    layout = segment_number(image, max_digits=32)

    assert group_count(layout) == [3]


def test_segment_dotted_pen_digit_is_one_group() -> None:
    image = draw_number([[ONE, ZERO]])
    pixels = np.asarray(image).copy()
    # Break every stroke into dots: blank every third pair of rows and columns.
    pixels[::3, :] = 255
    pixels[:, ::3] = 255
    dotted = Image.fromarray(pixels)
    assert _components_in(pixels < 128) > 20

    layout = segment_number(dotted, max_digits=32)

    assert group_count(layout) == [2]


def test_segment_two_lines_top_to_bottom() -> None:
    layout = segment_number(draw_number([[ONE, SEVEN, ZERO], [ZERO, ONE]]), max_digits=32)

    assert group_count(layout) == [3, 2]
    first, second = whole_boxes(layout)
    assert max(box.y + box.height for box in first) < min(box.y for box in second)


def test_segment_ignores_ruled_lines_and_specks() -> None:
    image = draw_number([[ONE, ZERO, SEVEN]])
    draw = ImageDraw.Draw(image)
    for y in (20, 130, 150):
        draw.line([(0, y), (image.width, y)], fill=60, width=3)
    generator = np.random.default_rng(4)
    for _ in range(60):
        x, y = generator.integers(0, image.width), generator.integers(0, image.height)
        draw.ellipse([x, y, x + 3, y + 3], fill=30)

    layout = segment_number(image, max_digits=32)

    assert group_count(layout) == [3]


def test_segment_thousands_of_specks_is_bounded() -> None:
    generator = np.random.default_rng(5)
    pixels = np.full((900, 1200), 255, dtype=np.uint8)
    pixels[generator.random(pixels.shape) < 0.02] = 0
    image = Image.fromarray(pixels)

    started = time.perf_counter()
    try:
        layout = segment_number(image, max_digits=32)
    except (NoDigitFoundError, TooManyDigitsError):
        layout = None
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0
    if layout is not None:
        assert layout.piece_count <= 32 * 64


def test_segment_more_marks_than_allowed_is_too_many_digits() -> None:
    image = draw_number([[ONE, ZERO] * 5])

    with pytest.raises(TooManyDigitsError):
        segment_number(image, max_digits=4)


def test_segment_blank_image_finds_no_digit() -> None:
    with pytest.raises(NoDigitFoundError):
        segment_number(Image.new("L", (400, 200), 255), max_digits=32)


def test_segment_only_specks_finds_no_digit() -> None:
    image = Image.new("L", (400, 200), 255)
    draw = ImageDraw.Draw(image)
    draw.ellipse([100, 100, 102, 102], fill=0)

    with pytest.raises(NoDigitFoundError):
        segment_number(image, max_digits=32)


def test_segment_touching_mnist_digits_offers_cuts_and_the_whole(mnist_sample: Sample) -> None:
    images, labels = mnist_sample
    generator = np.random.default_rng(6)
    # A 4 and a 7, slid together until their strokes meet.
    four, seven = int(np.flatnonzero(labels == 4)[0]), int(np.flatnonzero(labels == 7)[0])
    number = compose_number(
        [images[four], images[seven]], [4, 7], generator, style="canvas", gaps=["touching"]
    )
    image = Image.open(io.BytesIO(number.data))

    layout = segment_number(image, max_digits=32)

    assert group_count(layout) == [1]
    (group,) = layout.lines[0]
    assert group.boundaries > 2
    assert any(not piece.cut for piece in group.pieces)
    assert any(piece.cut and piece.start == 0 for piece in group.pieces)


def _components_in(mask: NDArray[np.bool_]) -> int:
    """The number of 8-connected components of ``mask``."""
    return find_runs(mask).region_count


def test_segment_tight_crop_keeps_a_one_by_the_edge_but_drops_a_paper_edge() -> None:
    image = draw_number([[ONE, ZERO, SEVEN]])
    ink = np.asarray(image) < 128
    columns, rows = np.flatnonzero(ink.any(axis=0)), np.flatnonzero(ink.any(axis=1))
    tight = image.crop((columns[0] - 3, rows[0] - 3, columns[-1] + 4, rows[-1] + 4))

    assert group_count(segment_number(tight, max_digits=32)) == [3]

    # A dark band along the left edge, the table beyond the paper, is no digit.
    with_edge = image.copy()
    ImageDraw.Draw(with_edge).rectangle([0, 0, 6, with_edge.height], fill=0)
    assert group_count(segment_number(with_edge, max_digits=32)) == [3]


def test_segment_leaves_out_a_frame_edge_a_filled_block_and_small_print() -> None:
    image = draw_number([[ONE, ZERO, SEVEN, ZERO]], size=(600, 420))
    draw = ImageDraw.Draw(image)
    draw.line([(12, 10), (12, 400)], fill=20, width=4)  # the edge of a frame, far taller
    draw.rectangle([380, 300, 470, 340], fill=30)  # a filled button
    for index in range(4):  # a line of small print
        left = 60 + index * 30
        draw.line([(left, 260), (left + 12, 260), (left + 4, 280)], fill=20, width=3)

    layout = segment_number(image, max_digits=32)

    assert group_count(layout) == [4]


def test_segment_keeps_two_lines_of_like_size() -> None:
    image = draw_number([[ONE, ZERO, SEVEN], [SEVEN, ONE]])

    assert group_count(segment_number(image, max_digits=32)) == [3, 2]
