"""Which connected components of ink make one digit, which groups are digit-sized, and how
they fall into lines of writing: the geometry of :mod:`app.imaging.segmentation` (steps 3 and
4 there), on boxes alone.

Boxes are (top, left, bottom, right) in pixels, ends exclusive; masses are ink pixel counts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

OVERLAP_TO_MERGE = 0.5
"""Two parts one above the other merge when their horizontal extents overlap by this fraction
of the narrower one's width ..."""

FULL_OVERLAP = 0.85
TALL_PART = 0.6
"""... or by :data:`FULL_OVERLAP` of it when both are at least :data:`TALL_PART` of the taller
one's height (a 1 beside a digit whose box overhangs it stays apart; the stem of a 4 drawn in
two strokes lies within the other stroke's extent)."""

MERGE_VERTICAL_GAP = 0.3
MAX_MERGED_HEIGHT = 1.3
"""... and the vertical gap between them is at most :data:`MERGE_VERTICAL_GAP` of the
writing's height, and together they are at most :data:`MAX_MERGED_HEIGHT` of it (digits of two
lines, or a column of marks, stay apart)."""

MIN_PART = 0.15
"""Only parts at least this fraction of the writing's height (their longer side) merge: a speck
above or below a digit stays out of it."""

MERGE_ROUNDS = 6
"""Grouping is repeated until nothing merges, at most this many times."""

MIN_DIGIT_HEIGHT = 0.3
MIN_DIGIT_MASS = 0.03
"""A group at most :data:`MIN_DIGIT_HEIGHT` of the substantial groups' median height, or
lighter than :data:`MIN_DIGIT_MASS` of the heaviest, is a speck, a dash or a line's fragment."""

MIN_DIGIT_EXTENT_PIXELS = 4
"""Nothing smaller than this (in the working image) is a digit."""

LINE_OVERLAP = 0.5
"""A group belongs to a line when its vertical extent overlaps the line's by this fraction of
the smaller of the two heights."""

FILLED_FRACTION = 0.8
"""A group whose strokes cover more than this fraction of its box, and whose box is not a thin
bar (at least half as wide as tall), is a filled block (a button, a blot), not a digit: a
digit's strokes leave most of its box empty, and only a 1 drawn as a bar fills it."""

TALL_OUTLIER = 2.0
"""A group in a line of at least three that is more than this many times as tall as the line's
median group is a line (a frame's edge, a margin), not a digit."""

SMALL_LINE = 0.6
"""A line of writing whose median group height is less than this fraction of the tallest line's
is other writing (printed labels, captions, a screenshot's menus), not the number: the number
is the largest writing in the image, and the lines of one handwritten number differ in size by
far less (the generated numbers' lines by at most a third)."""

REFERENCE_MASS_FRACTION = 0.2
"""Groups at least this fraction of the heaviest's mass set the writing's height."""


def group_parts(boxes: NDArray[np.intp], masses: NDArray[np.float64]) -> NDArray[np.intp]:
    """Which group each component (box: top, left, bottom, right) belongs to, groups numbered
    from 0: parts of one digit are merged by :data:`OVERLAP_TO_MERGE` and the rules after it,
    repeatedly, since a merged group overlaps more."""
    count = len(boxes)
    groups = np.arange(count)
    if count == 0:
        return groups
    reference = _writing_height(boxes, masses)
    for _ in range(MERGE_ROUNDS):
        group_boxes, _ = boxes_of_groups(boxes, masses, groups)
        pairs = _mergeable_pairs(group_boxes, reference)
        if not pairs:
            break
        groups = _join(groups, pairs)
    return groups


def _mergeable_pairs(boxes: NDArray[np.intp], reference: float) -> list[tuple[int, int]]:
    """Pairs of groups (by index into ``boxes``) that are parts of one digit."""
    tops, lefts, bottoms, rights = (boxes[:, column].astype(np.float64) for column in range(4))
    heights, widths = bottoms - tops, rights - lefts
    overlap = np.minimum.outer(rights, rights) - np.maximum.outer(lefts, lefts)
    narrower = np.minimum.outer(widths, widths)
    taller = np.maximum.outer(heights, heights)
    vertical_gap = np.maximum(
        0.0, np.maximum(np.subtract.outer(tops, bottoms), np.subtract.outer(tops, bottoms).T)
    )
    tall = heights >= TALL_PART * taller
    both_tall = tall & tall.T
    needed = np.where(both_tall, FULL_OVERLAP, OVERLAP_TO_MERGE) * narrower
    merged_height = np.maximum.outer(bottoms, bottoms) - np.minimum.outer(tops, tops)
    stacked = (
        (overlap >= needed)
        & (vertical_gap <= MERGE_VERTICAL_GAP * reference)
        & (merged_height <= MAX_MERGED_HEIGHT * reference)
    )
    extents = np.maximum(heights, widths)
    substantial = np.minimum.outer(extents, extents) >= MIN_PART * reference
    mergeable = np.triu(stacked & substantial, k=1)
    first, second = np.nonzero(mergeable)
    return list(zip(first.tolist(), second.tolist(), strict=True))


def _join(groups: NDArray[np.intp], pairs: list[tuple[int, int]]) -> NDArray[np.intp]:
    """Renumber components after joining the given pairs of groups (union-find)."""
    parents = list(range(int(groups.max()) + 1))

    def root(node: int) -> int:
        while parents[node] != node:
            parents[node] = parents[parents[node]]
            node = parents[node]
        return node

    for first, second in pairs:
        first_root, second_root = root(first), root(second)
        if first_root != second_root:
            parents[max(first_root, second_root)] = min(first_root, second_root)
    roots = np.array([root(group) for group in groups.tolist()], dtype=np.intp)
    _, renumbered = np.unique(roots, return_inverse=True)
    return renumbered.astype(np.intp)


def boxes_of_groups(
    boxes: NDArray[np.intp], masses: NDArray[np.float64], groups: NDArray[np.intp]
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Each group's box (the union of its components') and mass."""
    count = int(groups.max()) + 1 if groups.size else 0
    group_boxes = np.zeros((count, 4), dtype=np.intp)
    group_boxes[:, :2] = np.iinfo(np.intp).max
    np.minimum.at(group_boxes[:, 0], groups, boxes[:, 0])
    np.minimum.at(group_boxes[:, 1], groups, boxes[:, 1])
    np.maximum.at(group_boxes[:, 2], groups, boxes[:, 2])
    np.maximum.at(group_boxes[:, 3], groups, boxes[:, 3])
    group_masses = np.bincount(groups, weights=masses, minlength=count).astype(np.float64)
    return group_boxes, group_masses


def _writing_height(boxes: NDArray[np.intp], masses: NDArray[np.float64]) -> float:
    """The height of the writing: the tallest of the substantial boxes (:func:`_substantial`)."""
    heavy = _substantial(masses)
    return float((boxes[heavy, 2] - boxes[heavy, 0]).max())


def _substantial(masses: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which groups are at least :data:`REFERENCE_MASS_FRACTION` of the heaviest's mass: the
    ones that set the writing's height."""
    return masses >= REFERENCE_MASS_FRACTION * float(masses.max())


def digit_sized(
    boxes: NDArray[np.intp], masses: NDArray[np.float64], longest_side: int
) -> NDArray[np.intp]:
    """Indices of the groups that may be digits (see :data:`MIN_DIGIT_HEIGHT`)."""
    if not len(boxes):
        return np.zeros(0, dtype=np.intp)
    heights = boxes[:, 2] - boxes[:, 0]
    widths = boxes[:, 3] - boxes[:, 1]
    extents = np.maximum(heights, widths)
    # The median, not the tallest: a frame's edge is heavy and far taller than the digits.
    reference = float(np.median(heights[_substantial(masses)]))
    smallest = max(MIN_DIGIT_EXTENT_PIXELS, 0.03 * longest_side)
    filled = (masses > FILLED_FRACTION * heights * widths) & (2 * widths >= heights)
    digit_sized = (
        (heights >= MIN_DIGIT_HEIGHT * reference)
        & (masses >= MIN_DIGIT_MASS * float(masses.max()))
        & (extents >= smallest)
        & ~filled
    )
    return np.flatnonzero(digit_sized)


def into_lines(boxes: NDArray[np.intp]) -> list[NDArray[np.intp]]:
    """Indices into ``boxes`` (top, left, bottom, right) grouped into lines of writing: top to
    bottom, each left to right. A box joins the line whose typical vertical extent it overlaps
    most, by at least :data:`LINE_OVERLAP` of the smaller height, else starts a line."""
    lines: list[list[int]] = []
    bands: list[tuple[float, float]] = []
    centres = (boxes[:, 0] + boxes[:, 2]) / 2.0
    for index in np.argsort(centres, kind="stable").tolist():
        top, bottom = float(boxes[index, 0]), float(boxes[index, 2])
        best, best_overlap = -1, 0.0
        for number, (band_top, band_bottom) in enumerate(bands):
            overlap = min(bottom, band_bottom) - max(top, band_top)
            needed = LINE_OVERLAP * min(bottom - top, band_bottom - band_top)
            if overlap >= needed and overlap > best_overlap:
                best, best_overlap = number, overlap
        if best < 0:
            lines.append([index])
            bands.append((top, bottom))
            continue
        lines[best].append(index)
        members = boxes[lines[best]]
        bands[best] = (float(np.median(members[:, 0])), float(np.median(members[:, 2])))
    order = sorted(range(len(lines)), key=lambda number: sum(bands[number]))
    return [
        np.array(sorted(lines[number], key=lambda index: int(boxes[index, 1])), dtype=np.intp)
        for number in order
    ]


def main_writing(boxes: NDArray[np.intp], lines: list[NDArray[np.intp]]) -> list[NDArray[np.intp]]:
    """The lines of :func:`into_lines` (indices into ``boxes``) that hold the number: without
    the groups of a line that are far taller than its others (:data:`TALL_OUTLIER`) and
    without lines of much smaller writing than the largest (:data:`SMALL_LINE`)."""
    kept: list[NDArray[np.intp]] = []
    for line in lines:
        heights = boxes[line, 2] - boxes[line, 0]
        if line.size >= 3:
            line = line[heights <= TALL_OUTLIER * float(np.median(heights))]
        if line.size:
            kept.append(line)
    if not kept:
        return kept
    typical = [float(np.median(boxes[line, 2] - boxes[line, 0])) for line in kept]
    tallest = max(typical)
    return [
        line for line, height in zip(kept, typical, strict=True) if height >= SMALL_LINE * tallest
    ]
