"""Cut paths between touching digits: the cheapest way through a group of ink from top to
bottom, crossing its middle row at a given column.

A straight vertical cut through two touching digits slices through whichever one leans or
overhangs the other (a 7's bar over the next digit, a 4 tucked under a 6). Instead, a cut here is
a path of one pixel per row that may step one column left or right from row to row: its cost
is the ink it crosses plus :data:`STEP_COST` per step aside, so it threads the gap between two
digits and crosses ink only where they really touch. Two dynamic programmes (from the top row
down to the middle row and from the bottom row up to it) give, for every column of the middle
row, the cost of the cheapest path through it (:attr:`CutPaths.costs`, the path-following
counterpart of a column profile) and, on demand, the path itself (:func:`trace`).

Each pass is one small array operation per row, so a group costs a few hundred microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.imaging.preprocess import FloatImage

STEP_COST = 0.5
"""What a step of one column aside costs, in units of one row's crossing of solid ink: a path
follows the gap beside a slanted digit (a step every few rows) more cheaply than it crosses a
stroke, whose slant makes it many rows thick, but does not wander across the background for
nothing. Chosen on generated touching pairs of MNIST training digits (0.15 to 1.0 tried)."""


@dataclass(frozen=True, slots=True)
class CutPaths:
    """The cheapest top-to-bottom paths through one group's ink, indexed by the column where
    they cross :attr:`row`."""

    row: int
    """The middle row, where every path is indexed."""
    costs: NDArray[np.float64]
    """For each column, the cost of the cheapest path crossing :attr:`row` there."""
    up: NDArray[np.intp]
    """For rows 1 to :attr:`row`: the column step (-1, 0, +1) to the path's pixel one row up."""
    down: NDArray[np.intp]
    """For rows :attr:`row` to the last but one: the step to its pixel one row down."""


def find_paths(ink: FloatImage) -> CutPaths:
    """The cheapest paths through ``ink`` (one group, cropped to its box; bright on black)."""
    height, width = ink.shape
    row = height // 2
    cost = ink.astype(np.float64)
    up = np.zeros((height, width), dtype=np.intp)
    down = np.zeros((height, width), dtype=np.intp)
    forward = cost[0].copy()
    for current in range(1, row + 1):
        step, best = _cheapest_neighbour(forward)
        up[current] = step
        forward = cost[current] + best
    backward = cost[height - 1].copy()
    for current in range(height - 2, row - 1, -1):
        step, best = _cheapest_neighbour(backward)
        down[current] = step
        backward = cost[current] + best
    return CutPaths(row=row, costs=forward + backward - cost[row], up=up, down=down)


def _cheapest_neighbour(
    previous: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """For each column, the step (-1, 0, +1) to the cheapest of its three neighbours in the
    previous row's costs (a step aside costing :data:`STEP_COST`; straight on wins ties), and
    that cost."""
    best = previous.copy()
    steps = np.zeros(previous.size, dtype=np.intp)
    from_left = previous[:-1] + STEP_COST
    take = from_left < best[1:]
    best[1:] = np.where(take, from_left, best[1:])
    steps[1:] = np.where(take, -1, 0)
    from_right = previous[1:] + STEP_COST
    take = from_right < best[:-1]
    best[:-1] = np.where(take, from_right, best[:-1])
    steps[:-1] = np.where(take, 1, steps[:-1])
    return steps, best


def trace(paths: CutPaths, columns: Sequence[int]) -> NDArray[np.intp]:
    """The paths crossing the middle row at ``columns``: an array (len(columns), height) of
    each path's column in every row."""
    height = paths.up.shape[0]
    traced = np.zeros((len(columns), height), dtype=np.intp)
    start = np.asarray(columns, dtype=np.intp)
    traced[:, paths.row] = start
    position = start
    for current in range(paths.row, 0, -1):
        position = position + paths.up[current, position]
        traced[:, current - 1] = position
    position = start
    for current in range(paths.row, height - 1):
        position = position + paths.down[current, position]
        traced[:, current + 1] = position
    return traced
