"""Touching digits: where a group of ink may be cut apart, and each candidate digit drawn.

A group of ink wider than a digit may hold several touching digits. A cut is a path from the
top of the group to its bottom that bends round strokes and crosses as little ink as it can
(:mod:`app.imaging.cut_paths`); the columns where the cheapest such paths cross the group's
middle row (minima of their cost) are candidate cuts. Every stretch of the group between two
candidate cuts that is as wide as a digit can be becomes a candidate piece; so does every run
of the parts the group falls into where its digits touch (:mod:`app.imaging.touch_points`),
for digits no path parts. Each is drawn as one 28 x 28 digit by the same function as a lone
digit (:func:`~app.imaging.preprocess.ink_to_mnist_digit`). The classifier later chooses the
chain of pieces it reads best (:mod:`app.number_reading`): the cut is chosen by its
confidence, not by the geometry alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from app.errors import NoDigitFoundError
from app.imaging.components import describe_regions, find_runs, paint_regions
from app.imaging.cut_paths import CutPaths, find_paths, trace
from app.imaging.number_layout import Box, InkGroup, InkPiece
from app.imaging.preprocess import FloatImage, _dilate, crop_box, ink_to_mnist_digit
from app.imaging.touch_points import touching_parts

MIN_SPLIT_WIDTH = 0.45
"""Groups at least this wide (as a fraction of their line's digit height) get candidate cuts;
narrower ones are read as one digit."""

MIN_PIECE_WIDTH = 0.12
"""A piece is at least this wide (fraction of the line's height): a thin 1 is about this."""

MAX_PIECE_WIDTH = 1.5
"""... and at most this wide, unless it is the whole group."""

CUTS_PER_DIGIT = 2.0
"""At most this many candidate cuts per digit the group's width could hold (one digit per
:data:`TYPICAL_DIGIT_WIDTH` of the height), plus one; bounded by :data:`MAX_CUTS`."""

TYPICAL_DIGIT_WIDTH = 0.6
MAX_CUTS = 16

SLIVER_MASS = 0.15
"""Separate bits of a cut-out piece lighter than this fraction of its largest part are
slivers of the neighbouring digit, left out of the piece."""

BoxOf = Callable[[int, int, int, int], Box]
"""Maps a box (top, left, bottom, right) in the group's crop to the uploaded image's pixels."""


def candidate_cuts(paths: CutPaths, line_height: float) -> list[int]:
    """Columns of the middle row of one group (see :func:`~app.imaging.cut_paths.find_paths`)
    where touching digits may meet: local minima of the cheapest paths' cost at least
    :data:`MIN_PIECE_WIDTH` from the edges and from each other, cheapest first, in
    left-to-right order."""
    costs = paths.costs
    width = costs.size
    if width < MIN_SPLIT_WIDTH * line_height:
        return []
    spacing = max(1, round(MIN_PIECE_WIDTH * line_height))
    inner = np.arange(spacing, width - spacing + 1)
    if inner.size == 0:
        return []
    # ``inner`` runs from column 1 at least to ``width - 1`` at most: only its right
    # neighbours can fall off the edge.
    left = costs[inner - 1]
    right = costs[np.minimum(inner + 1, width - 1)]
    values = costs[inner]
    minima = inner[(values <= left) & (values <= right)]
    limit = min(MAX_CUTS, int(CUTS_PER_DIGIT * width / (TYPICAL_DIGIT_WIDTH * line_height)) + 1)
    chosen: list[int] = []
    for column in minima[np.argsort(costs[minima], kind="stable")].tolist():
        if all(abs(column - other) >= spacing for other in chosen):
            chosen.append(int(column))
            if len(chosen) == limit:
                break
    return sorted(chosen)


def group_pieces(ink: FloatImage, line_height: float, box_of: BoxOf) -> InkGroup | None:
    """The candidate digits of one group of ink (cropped to its box, other groups' ink
    removed): the whole group and every stretch between two candidate cuts as wide as a
    digit, each drawn as a 28 x 28 digit with its box and width. None when nothing
    in it can be drawn."""
    height, width = ink.shape
    cuts: list[int] = []
    if width >= MIN_SPLIT_WIDTH * line_height:
        paths = find_paths(ink)
        cuts = candidate_cuts(paths, line_height)
    # Each boundary as the first column, row by row, on its right: the group's two edges and
    # the cut paths between them.
    boundaries = np.zeros((len(cuts) + 2, height), dtype=np.intp)
    if cuts:
        boundaries[1:-1] = trace(paths, cuts)
    boundaries[-1] = width
    last = len(boundaries) - 1
    parts = touching_parts(ink, line_height)
    part_count = 0 if parts is None else int(parts.max()) + 1
    # Positions: 0 and ``right_edge`` are the group's edges, 1 to ``last - 1`` the cut paths,
    # ``last`` to ``right_edge - 1`` the borders between the touching parts.
    right_edge = last + max(0, part_count - 1)
    pieces: list[InkPiece] = []
    if parts is not None:
        pieces.extend(_part_pieces(ink, parts, line_height, box_of, last, right_edge))
    for start in range(last):
        for end in range(start + 1, last + 1):
            whole = start == 0 and end == last
            offset = 0
            if whole:
                stretch = ink
            else:
                span = float(np.mean(boundaries[end] - boundaries[start])) / line_height
                if not MIN_PIECE_WIDTH <= span <= MAX_PIECE_WIDTH:
                    continue
                stretch, offset = _between(ink, boundaries[start], boundaries[end])
            piece = _draw_piece(stretch)
            if piece is None:
                continue
            top, piece_left, bottom, piece_right = piece[1]
            pieces.append(
                InkPiece(
                    start=start,
                    end=right_edge if end == last else end,
                    digit_image=piece[0],
                    box=box_of(top, piece_left + offset, bottom, piece_right + offset),
                    width=(piece_right - piece_left) / line_height,
                    cut=not whole,
                )
            )
    if not any(piece.start == 0 for piece in pieces):
        return None
    return InkGroup(boundaries=right_edge + 1, pieces=tuple(pieces))


def _part_pieces(
    ink: FloatImage,
    parts: NDArray[np.intp],
    line_height: float,
    box_of: BoxOf,
    first_border: int,
    right_edge: int,
) -> list[InkPiece]:
    """The candidate digits of a group parted where it touches
    (:func:`~app.imaging.touch_points.touching_parts`): each run of neighbouring parts but all
    of them, between positions 0, ``first_border`` onwards (the borders between parts) and
    ``right_edge``."""
    count = int(parts.max()) + 1
    positions = [0, *range(first_border, first_border + count - 1), right_edge]
    pieces: list[InkPiece] = []
    for start in range(count):
        for end in range(start + 1, count + 1):
            if start == 0 and end == count:
                continue
            piece = _draw_piece(np.where((parts >= start) & (parts < end), ink, np.float32(0.0)))
            if piece is None:
                continue
            top, left, bottom, right = piece[1]
            piece_width = (right - left) / line_height
            if piece_width > MAX_PIECE_WIDTH:
                continue
            pieces.append(
                InkPiece(
                    start=positions[start],
                    end=positions[end],
                    digit_image=piece[0],
                    box=box_of(top, left, bottom, right),
                    width=piece_width,
                    cut=True,
                )
            )
    return pieces


def _between(
    ink: FloatImage, left: NDArray[np.intp], right: NDArray[np.intp]
) -> tuple[FloatImage, int]:
    """The ink between two cut paths (each the first column, row by row, on its right), slivers
    of the neighbours left out, in the columns the two paths span, and the first of those."""
    first, stop = int(left.min()), int(right.max())
    columns = np.arange(first, stop)
    inside = (columns >= left[:, np.newaxis]) & (columns < right[:, np.newaxis])
    return _without_slivers(np.where(inside, ink[:, first:stop], np.float32(0.0))), first


def _without_slivers(ink: FloatImage) -> FloatImage:
    """A cut-out stretch of ink without the slivers of the neighbouring digit that the straight
    cut left in it: separate bits lighter than :data:`SLIVER_MASS` of its largest part."""
    runs = find_runs(ink >= np.float32(0.5))
    if runs.region_count <= 1:
        return ink
    table = describe_regions(runs, ink)
    keep = table.masses >= SLIVER_MASS * float(table.masses.max())
    if keep.all():
        return ink
    kept = _dilate(paint_regions(runs, keep, ink.shape), 1)
    return np.where(kept, ink, np.float32(0.0))


def _draw_piece(ink: FloatImage) -> tuple[NDArray[np.uint8], tuple[int, int, int, int]] | None:
    """One stretch of a group (ink outside the stretch cleared) drawn as a digit, and its ink's
    box (top, left, bottom, right) in the stretch; None when it holds no ink."""
    try:
        top, left, bottom, right = crop_box(ink)
        digit_image = ink_to_mnist_digit(ink[top:bottom, left:right])
    except NoDigitFoundError:
        return None
    return digit_image, (top, left, bottom, right)
