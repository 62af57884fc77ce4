"""Every digit of an image of a number: :func:`segment_number`.

The ink is found exactly as for one digit (:func:`~app.imaging.preprocess.find_raw_ink`:
transparency, background and uneven lighting, ink polarity), then, instead of keeping the main
stroke and its neighbours, every stroke is kept:

1. Strokes are ink above :data:`~app.imaging.preprocess.RELATIVE_INK_LEVEL` of the solid ink
   (faint grid lines and shadows fall away); horizontal runs spanning most of the width are
   ruled lines and are removed; lines along the image's edge and boxes around the writing
   (:func:`~app.imaging.preprocess.drawn_boxes`) are not strokes.
2. Connected components (:mod:`app.imaging.components`, pieces one pixel apart joined, for
   dotted pens), at most :data:`MAX_COMPONENTS` of them, the largest.
3. Components are grouped into digits (:func:`~app.imaging.digit_groups.group_parts`):
   parts whose horizontal extents overlap and that lie one above the other (the flag of a 5,
   the bar of a 7, a 4 whose stem was drawn apart from its bar), specks left out.
4. Groups far smaller than the writing are specks, dashes or fragments of lines, and filled
   blocks are not digits; the rest are sorted into lines by their vertical overlap
   (:func:`~app.imaging.digit_groups.into_lines`), top to bottom, each left to right. A group
   far taller than its line's others is a frame's edge, and lines of much smaller writing
   than the largest are labels or menus (:func:`~app.imaging.digit_groups.main_writing`).
5. Each group becomes candidate digits (:mod:`app.imaging.digit_cuts`): itself, and, when it is
   wide enough to hold touching digits, the stretches between candidate cuts and the parts
   left when its strokes are thinned until they fall apart (:mod:`app.imaging.touch_points`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.errors import NoDigitFoundError, TooManyDigitsError
from app.imaging.components import (
    RegionTable,
    describe_regions,
    find_runs,
    horizontal_runs,
    label_regions,
)
from app.imaging.digit_cuts import group_pieces
from app.imaging.digit_groups import (
    boxes_of_groups,
    digit_sized,
    group_parts,
    into_lines,
    main_writing,
)
from app.imaging.number_layout import Box, InkGroup, NumberLayout
from app.imaging.preprocess import (
    EDGE_LINE_SPAN,
    FloatImage,
    _dilate,
    drawn_boxes,
    find_raw_ink,
    normalise_contrast,
    standardise_mode,
    stroke_level,
)
from app.imaging.working_size import working_size

NUMBER_WORKING_SIDE = 512
"""The longest side of the image a number is segmented on: a 10-digit number across a photo
keeps about 30 pixels a digit, more than the 20 it is drawn with (640 read a few more touching
pairs right and cost a third more time)."""

RULED_LINE_SPAN = 0.6
RULED_LINE_HEIGHTS = 2.0
"""A horizontal run of stroke pixels spanning :data:`RULED_LINE_SPAN` of the width and
:data:`RULED_LINE_HEIGHTS` times the height of the writing (the rows that hold strokes) is a
ruled line: the bar of a lone 7 or the base of a 2 is no longer than the digit is tall."""

BRIDGE_RADIUS = 1
"""Stroke pixels this far apart (and twice this) belong to one component: a dotted pen."""

MAX_COMPONENTS = 256
"""At most this many components, the largest, are considered; however noisy the image, the
grouping then costs a bounded time."""

MIN_COMPONENT_MASS_FRACTION = 0.002
"""Components lighter than this fraction of the largest are specks, dropped before grouping."""


@dataclass(frozen=True, slots=True)
class DigitGroups:
    """The groups of ink of an image that may be digits, on its working image."""

    working_size: tuple[int, int]
    """Width and height of the working image the groups were found on."""
    ink: FloatImage
    """The working image's ink, normalised to [0, 1]."""
    labels: NDArray[np.intp]
    """Each working pixel's component (-1: none)."""
    component_groups: NDArray[np.intp]
    """Each component's group, with -1 appended (so that ``component_groups[labels]`` works)."""
    boxes: NDArray[np.intp]
    """Each group's box (top, left, bottom, right)."""
    digits: NDArray[np.intp]
    """The groups of digit size (indices into ``boxes``)."""


def find_digit_groups(image: Image.Image) -> DigitGroups:
    """Steps 1 to 4 of the module's docstring: the digit-sized groups of ink of a decoded image.

    Raises :class:`~app.errors.NoDigitFoundError` when there is no ink.
    """
    working = _reduce(standardise_mode(image))
    raw, background, threshold = find_raw_ink(working)
    ink = normalise_contrast(raw, noise=background.noise, threshold=threshold)
    strokes = stroke_mask(raw, threshold)
    labels, boxes, masses = _components(strokes)
    groups = group_parts(boxes, masses)
    group_boxes, group_masses = boxes_of_groups(boxes, masses, groups)
    return DigitGroups(
        working_size=working.size,
        ink=ink,
        labels=labels,
        component_groups=np.append(groups, -1),
        boxes=group_boxes,
        digits=digit_sized(group_boxes, group_masses, max(strokes.shape)),
    )


def segment_number(
    image: Image.Image, max_digits: int, *, upload_size: tuple[int, int] | None = None
) -> NumberLayout:
    """Find the digits of a decoded image, line by line, as candidate 28 x 28 digits, their
    boxes in the pixels of an upload of ``upload_size`` (width, height; by default the image's
    own) that was decoded at a reduced scale into ``image``.

    Raises :class:`~app.errors.NoDigitFoundError` when no digit-sized ink is found and
    :class:`~app.errors.TooManyDigitsError` when more than ``max_digits`` groups of ink are.
    """
    found = find_digit_groups(image)
    digits = found.digits
    if not digits.size:
        raise NoDigitFoundError("no digit found: the image holds no digit-sized strokes")
    if digits.size > max_digits:
        raise TooManyDigitsError(
            f"the image holds more than {max_digits} separate marks of digit size "
            "(MAX_DIGITS_PER_IMAGE); send one number"
        )
    working_width, working_height = found.working_size
    upload_width, upload_height = upload_size or image.size
    scale = (upload_width / working_width, upload_height / working_height)
    lines: list[tuple[InkGroup, ...]] = []
    digit_boxes = found.boxes[digits]
    for line in main_writing(digit_boxes, into_lines(digit_boxes)):
        line_boxes = digit_boxes[line]
        line_height = float(np.median(line_boxes[:, 2] - line_boxes[:, 0]))
        line_groups = []
        for index in digits[line].tolist():
            top, left, bottom, right = (int(value) for value in found.boxes[index])
            own = found.component_groups[found.labels[top:bottom, left:right]] == index
            crop = np.where(own, found.ink[top:bottom, left:right], np.float32(0.0))
            group = group_pieces(crop, line_height, partial(_upload_box, (top, left), scale))
            if group is not None:
                line_groups.append(group)
        if line_groups:
            lines.append(tuple(line_groups))
    if not lines:
        raise NoDigitFoundError("no digit found: the image holds no digit-sized strokes")
    return NumberLayout(lines=tuple(lines))


def stroke_mask(raw: FloatImage, threshold: float) -> NDArray[np.bool_]:
    """Where ``raw`` ink (before normalisation, detected above ``threshold``) is a stroke: above
    the relative ink level, ruled lines removed."""
    strokes = raw > np.float32(stroke_level(raw, threshold))
    _remove_ruled_lines(strokes)
    return strokes


def _remove_ruled_lines(strokes: NDArray[np.bool_]) -> None:
    """Clear, in place, the horizontal runs that are ruled lines (:data:`RULED_LINE_SPAN`)."""
    width = strokes.shape[1]
    rows, starts, ends = horizontal_runs(strokes)
    writing_height = int(np.count_nonzero(strokes.any(axis=1)))
    long_runs = (ends - starts) >= max(RULED_LINE_SPAN * width, RULED_LINE_HEIGHTS * writing_height)
    for row, start, end in zip(
        rows[long_runs].tolist(), starts[long_runs].tolist(), ends[long_runs].tolist(), strict=True
    ):
        strokes[row, start:end] = False


def _components(
    strokes: NDArray[np.bool_],
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """The stroke components kept for grouping: a label image (-1 outside them; pixels of
    the bridged mask, so a stroke's faint halo belongs to it), and each one's box (top, left,
    bottom, right) and mass."""
    bridged = _dilate(strokes, BRIDGE_RADIUS)
    runs = find_runs(bridged)
    table = describe_regions(runs, strokes.astype(np.float32))
    masses = table.masses.copy()
    if len(table) == 0:
        raise NoDigitFoundError("no digit found: the image holds no strokes")
    not_strokes = drawn_boxes(runs, table, strokes.shape) | _edge_lines(table, strokes.shape)
    if not_strokes.any() and not not_strokes.all():
        masses[not_strokes] = 0.0
    heaviest = float(masses.max())
    candidates = np.flatnonzero(masses >= max(MIN_COMPONENT_MASS_FRACTION * heaviest, 1.0))
    kept = candidates[np.argsort(-masses[candidates], kind="stable")[:MAX_COMPONENTS]]
    numbering = np.full(len(table), -1, dtype=np.intp)
    numbering[kept] = np.arange(kept.size)
    labels = label_regions(runs, numbering, strokes.shape)
    boxes = np.stack(
        [table.tops[kept], table.lefts[kept], table.bottoms[kept], table.rights[kept]], axis=1
    )
    return labels, boxes, masses[kept]


def _edge_lines(table: RegionTable, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Which regions are lines along the image's edge (a paper edge, a page border): touching
    the edge and spanning :data:`EDGE_LINE_SPAN` of the image along it. Unlike the one-digit
    rule, a stroke near the edge without touching it is kept: a 1 opens many a number."""
    height, width = shape
    spans_width = table.rights - table.lefts >= EDGE_LINE_SPAN * width
    spans_height = table.bottoms - table.tops >= EDGE_LINE_SPAN * height
    horizontal = spans_width & ((table.tops == 0) | (table.bottoms == height))
    vertical = spans_height & ((table.lefts == 0) | (table.rights == width))
    lines: NDArray[np.bool_] = horizontal | vertical
    return lines


def _reduce(standard: Image.Image) -> Image.Image:
    """The image box-averaged down to :data:`NUMBER_WORKING_SIDE` on its longest side."""
    size = working_size(standard.size, NUMBER_WORKING_SIDE)
    if size == standard.size:
        return standard
    return standard.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def _upload_box(
    offset: tuple[int, int],
    scale: tuple[float, float],
    top: int,
    left: int,
    bottom: int,
    right: int,
) -> Box:
    """A box (top, left, bottom, right) of a group's crop, whose corner is at ``offset`` (row,
    column) in the working image, in the uploaded image's pixels (``scale``: x, y)."""
    scale_x, scale_y = scale
    top, left = top + offset[0], left + offset[1]
    bottom, right = bottom + offset[0], right + offset[1]
    x, y = int(left * scale_x), int(top * scale_y)
    return Box(
        x=x,
        y=y,
        width=max(1, int(np.ceil(right * scale_x)) - x),
        height=max(1, int(np.ceil(bottom * scale_y)) - y),
    )
