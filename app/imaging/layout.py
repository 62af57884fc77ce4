"""How many digits an image of "one digit" really shows: the preprocessing's own evidence for
the ``several_digits`` verdict.

Two kinds of evidence, both about digit-sized pieces of ink lying side by side:

* :func:`side_by_side_parts`: in the digit's ink, groups of columns separated by empty columns
  that each hold a digit-sized piece (tall and heavy enough): "12" written with a gap. The
  pieces of one digit overlap in their columns (the bar of a 5 or a 7 lies over its body, the
  two strokes of an open 4 cross), so they stay one group.
* :func:`digit_sized_neighbours`: regions the speck filter would leave out because they lie too
  far from the digit, but which are as tall and heavy as a digit and level with it: "1     7".
  The preprocessing keeps them, so that the network, too, sees that the image is not one digit.

A blank column inside one digit or a stray mark next to it is not enough: a piece counts only
when it is at least :data:`MIN_PART_HEIGHT` of the digit's height and :data:`MIN_PART_MASS` of
its ink.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from app.imaging.components import RegionTable

MIN_PART_HEIGHT: Final = 0.5
"""A piece must span at least this share of the height of the digit's ink."""

MIN_PART_MASS: Final = 0.15
"""... and hold at least this share of the ink (of the main region, for a neighbour)."""

MIN_GAP_FRACTION: Final = 0.04
"""Columns separate two pieces only if at least this share of the ink's height is empty
between them (and at least 2 pixels): anti-aliasing leaves single empty columns in strokes."""

LEVEL_OVERLAP: Final = 0.5
"""A neighbour is level with the digit when their rows overlap by this share of the lower."""

INK_LEVEL: Final = 0.25
"""Columns hold ink where some pixel exceeds this share of the ink's maximum."""


def side_by_side_parts(ink: NDArray[np.float32] | NDArray[np.uint8]) -> int:
    """How many digit-sized pieces lie side by side in ``ink`` (a 2-D image, ink bright, cut
    to the digit or not); 1 for a single digit, 0 for no ink.

    It runs on every upload, so the usual case, ink without an empty gap between columns,
    returns after a handful of array operations.
    """
    peak = float(ink.max()) if ink.size else 0.0
    if peak <= 0.0:
        return 0
    strong = ink > INK_LEVEL * peak
    columns = np.flatnonzero(strong.any(axis=0))
    rows = np.flatnonzero(strong.any(axis=1))
    height = int(rows[-1] - rows[0] + 1)
    min_gap = max(2, round(MIN_GAP_FRACTION * height))
    breaks = np.flatnonzero(np.diff(columns) > min_gap)
    if breaks.size == 0:
        return 1
    starts = np.r_[columns[0], columns[breaks + 1]]
    ends = np.r_[columns[breaks], columns[-1]] + 1
    weights = np.where(strong, ink, 0).astype(np.float64)
    total = float(weights.sum())
    parts = 0
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        piece_rows = np.flatnonzero(strong[:, start:end].any(axis=1))
        piece_height = int(piece_rows[-1] - piece_rows[0] + 1)
        mass = float(weights[:, start:end].sum())
        if piece_height >= MIN_PART_HEIGHT * height and mass >= MIN_PART_MASS * total:
            parts += 1
    return max(parts, 1)


def digit_sized_neighbours(
    table: RegionTable, kept: NDArray[np.bool_], ignored: NDArray[np.bool_], main_index: int
) -> NDArray[np.bool_]:
    """Which regions of ``table``, neither ``kept`` (the digit's) nor ``ignored`` (paper
    edges, boxes), are as tall and heavy as a digit and level with the main region."""
    heights = table.bottoms - table.tops
    main_height = int(heights[main_index])
    overlap = np.minimum(table.bottoms, table.bottoms[main_index]) - np.maximum(
        table.tops, table.tops[main_index]
    )
    level = overlap >= LEVEL_OVERLAP * np.minimum(heights, main_height)
    digit_sized = (heights >= MIN_PART_HEIGHT * main_height) & (
        table.masses >= MIN_PART_MASS * table.masses[main_index]
    )
    neighbours: NDArray[np.bool_] = digit_sized & level & ~kept & ~ignored
    return neighbours
