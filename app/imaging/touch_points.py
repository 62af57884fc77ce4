"""Touching digits parted where they touch: the group's strokes thinned until they fall apart.

Two digits written against each other meet at a point or along a short stretch, where their
strokes merge. A cut path from top to bottom (:mod:`app.imaging.cut_paths`) cannot part digits
that interlock (a 7's bar over the next digit, a 6 tucked under it) without slicing one of
them. Here the group's stroke pixels are thinned instead, one pixel from every side at a time
(an erosion), and the thin contact gives way before the strokes do: the first thinning that
leaves two or more substantial parts (:data:`PART_SHARE` of what is left, at most
:data:`MAX_PARTS`) gives the seeds, and every pixel of the group's ink then goes to the seed
that reaches it first, the seeds growing back through the ink a pixel at a time. The parts,
ordered by the centres of their seeds from left to right, become candidate digits, alone and
joined with their neighbours (:func:`~app.imaging.digit_cuts.group_pieces`); the classifier
decides whether any of them reads better than the group whole or cut by a path.

Only groups at least as wide as a digit is on average (:data:`MIN_TOUCH_WIDTH`) are thinned,
so that a number of well-spaced digits costs little more than before (``bench.numbers``'
latency figure).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from app.imaging.components import describe_regions, find_runs, label_regions
from app.imaging.preprocess import FloatImage, _dilate

MIN_TOUCH_WIDTH = 0.8
"""Only groups at least this wide (fraction of their line's height) are thinned: about the
median width of one digit, below which a group is seldom two (chosen with the constants below
on touching pairs of MNIST *training* digits, where thinning narrower groups read no more
pairs right)."""

STROKE_LEVEL = 0.5
"""Ink at or above this (of the normalised [0, 1] ink) is stroke, the pixels thinned."""

MAX_THINNING = 0.15
"""At most this many pixels, as a fraction of the line's height, are taken off each side of a
stroke: a contact wider than about a third of a digit is part of one."""

PART_SHARE = 0.06
"""A part left by the thinning is substantial (a seed) when it holds at least this fraction of
the stroke pixels left: crumbs of a thin stroke's end are not digits."""

MAX_PARTS = 5
"""A thinning that leaves more substantial parts than this has broken strokes, not contacts."""

HALO_LEVEL = 0.02
"""Ink above this (a stroke's soft edge included) is grown back into."""


def touching_parts(ink: FloatImage, line_height: float) -> NDArray[np.intp] | None:
    """The group's ink (cropped to it, bright on black) parted where its digits touch: for each
    pixel, the index of its part (0 to parts - 1, left to right; -1 for no ink), or None when
    thinning does not part it (or it is too narrow to hold two digits)."""
    if ink.shape[1] < MIN_TOUCH_WIDTH * line_height:
        return None
    strokes = ink >= np.float32(STROKE_LEVEL)
    for _ in range(max(1, round(MAX_THINNING * line_height))):
        strokes = ~_dilate(~strokes, 1)
        if not strokes.any():
            return None
        seeds = _substantial_parts(strokes)
        if seeds is not None:
            return _grow(seeds, ink > np.float32(HALO_LEVEL), max(ink.shape))
    return None


def _substantial_parts(strokes: NDArray[np.bool_]) -> NDArray[np.intp] | None:
    """The substantial parts of a thinned stroke mask as a label image (left to right by the
    centre of their boxes, -1 elsewhere), or None unless there are 2 to :data:`MAX_PARTS`."""
    runs = find_runs(strokes)
    if runs.region_count < 2:
        return None
    table = describe_regions(runs, strokes.astype(np.float32))
    substantial = np.flatnonzero(table.masses >= PART_SHARE * float(table.masses.sum()))
    if not 2 <= substantial.size <= MAX_PARTS:
        return None
    centres = table.lefts[substantial] + table.rights[substantial]
    numbering = np.full(runs.region_count, -1, dtype=np.intp)
    numbering[substantial[np.argsort(centres, kind="stable")]] = np.arange(substantial.size)
    return label_regions(runs, numbering, strokes.shape)


def _grow(labels: NDArray[np.intp], inside: NDArray[np.bool_], steps: int) -> NDArray[np.intp]:
    """``labels`` grown, one pixel in every direction per step, into the unlabelled pixels of
    ``inside`` (a pixel reached by two parts at once goes to the lower-numbered one)."""
    height, width = labels.shape
    unset = np.iinfo(np.intp).max
    padded = np.full((height + 2, width + 2), unset, dtype=np.intp)
    grown = padded[1:-1, 1:-1]
    grown[...] = np.where(labels >= 0, labels, unset)
    for _ in range(steps):
        free = inside & (grown == unset)
        if not free.any():
            break
        reached = grown.copy()
        for rows in range(3):
            for columns in range(3):
                np.minimum(
                    reached, padded[rows : rows + height, columns : columns + width], out=reached
                )
        newly = free & (reached != unset)
        if not newly.any():
            break
        grown[newly] = reached[newly]
    result: NDArray[np.intp] = np.where(grown == unset, -1, grown)
    return result
