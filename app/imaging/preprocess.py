"""Any decoded image to what MNIST looks like: a 28 x 28 ``uint8`` digit, white ink on black,
its longest side 20 pixels, centred by centre of mass.

:func:`to_mnist_digit` chains small pure steps, each usable and tested on its own:

1. :func:`standardise_mode` and :func:`reduce_to_working_size`: one of a few standard modes
   (colour read through its luma, or through the colour channel that shows the strokes when
   the luma hides them), large images box-averaged down (and, for a small digit,
   :func:`detail_region` to look again).
2. :func:`grey_and_alpha` then :func:`composite_on_contrasting_background`: transparent regions
   become the colour that contrasts with the opaque strokes, so a canvas export keeps its ink.
3. :func:`estimate_background`: the paper (or board, or screen) level, fitted as a smooth surface
   to the image's border, which also absorbs uneven lighting, with the noise around it; a
   shadow or a paper edge along one side does not bend it.
4. :func:`extract_ink`: ink is whatever departs from the background in the dominant direction,
   so dark-on-light and light-on-dark both become bright-on-dark.
5. :func:`suppress_specks`: ink regions are found as strokes (at a level relative to the
   solid ink, so fainter grid lines, grey boxes and shadows do not form them); paper edges
   and page borders along the image's edge and boxes drawn around the digit are not strokes;
   keep the main ink region and the parts near it, drop stray marks. A digit inside a filled
   grey box or frame is looked for again inside it (:func:`extract_digit_ink`).
6. :func:`normalise_contrast`: robust percentiles map the noise floor to 0 and solid ink to 1.
7. :func:`crop_to_ink`, then :func:`shrink_for_stroke_matching` and :func:`match_stroke_width`
   bring hairlines and marker strokes to MNIST's stroke width, and :func:`scale_to_box` and
   :func:`centre_by_mass` redo what MNIST's makers did with NIST's scans.

A 28 x 28 MNIST digit comes out unchanged (:func:`is_mnist_format`); moved, inverted or put on
a larger canvas it comes out within a grey level or so (see the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from app.errors import NoDigitFoundError
from app.imaging.components import (
    InkRuns,
    RegionTable,
    describe_regions,
    find_runs,
    paint_regions,
)
from app.imaging.layout import digit_sized_neighbours, side_by_side_parts
from app.imaging.working_size import working_size
from app.model_contract import IMAGE_SIDE, PIXEL_MAX

FloatImage = NDArray[np.float32]
"""A 2-D image of float32 values, normally in [0, 1]."""

DIGIT_BOX_SIDE = 20
"""MNIST digits were scaled so that their longest side is 20 pixels."""

CENTRE_OF_MASS_TARGET = IMAGE_SIDE / 2
"""Where MNIST's centre of mass sits (row and column index, 14.0 on the 28-pixel canvas)."""

BORDER_FRACTION = 0.03
"""Width of the border ring, as a fraction of the shorter side, that samples the background."""

MAX_BORDER_SAMPLES = 2048
"""At most this many border pixels enter the background fit."""

NEIGHBOUR_NOISE_FACTOR = 2.0
"""The background noise is at most this many times the noise measured between neighbouring
border pixels (:func:`_neighbour_noise`)."""

MIN_INK_CONTRAST = 0.05
"""Ink must depart from the background by at least this much (of full scale) to count."""

INK_NOISE_SIGMAS = 5.0
"""... and by at least this many standard deviations of the background noise."""

FLOOR_NOISE_SIGMAS = 3.0
"""Ink values up to this many noise deviations are treated as background and cut to 0."""

SOLID_INK_PERCENTILE = 95.0
"""The percentile of ink values that is taken as solid ink (mapped to 1)."""

ANALYSIS_MAX_SIDE = 128
"""Ink regions are found on a mask max-pooled to at most this many pixels per side."""

BRIDGE_PIXELS = 1
"""Pieces of ink at most twice this many pooled pixels apart form one region (broken strokes)."""

RELATIVE_INK_LEVEL = 0.35
"""Ink regions are found at this fraction of the solid ink level (at least): grid lines, ruled
lines, a grey box, a shadow or JPEG halos are fainter than the pen that drew the digit, so they
fall apart into nothing while the strokes stay whole."""

SOLID_REGION_PERCENTILE = 90.0
"""The solid ink level for :data:`RELATIVE_INK_LEVEL`: this percentile of the visible ink."""

EDGE_LINE_SPAN = 0.8
EDGE_LINE_THICKNESS = 0.12
"""A region touching the image's edge that spans at least :data:`EDGE_LINE_SPAN` of the image
one way and at most :data:`EDGE_LINE_THICKNESS` of it the other way is a paper edge, a page
border or a shading step, not a stroke."""

OUTLINE_MIN_FRACTION = 0.3
OUTLINE_BAND = 0.12
OUTLINE_INSIDE_FRACTION = 0.05
"""A box drawn around the digit (:func:`_outline_boxes`): a region at least
:data:`OUTLINE_MIN_FRACTION` of the image's shorter side in both directions, with ink in its
four corners and at most :data:`OUTLINE_INSIDE_FRACTION` of its pixels inside the band of
:data:`OUTLINE_BAND` of its size along its edges."""

COLOUR_CHANNEL_GAIN = 1.5
"""A colour image is read through the one colour channel (red, green or blue) whose contrast
beats its luma's by this factor: yellow ink on light blue has almost no luma contrast."""

COLOUR_PROBE_SIDE = 64
"""The colour contrast is compared on a thumbnail of at most this many pixels a side."""

FRAME_INK_LEVEL = 0.1
MIN_FRAME_SIDE = 48
FRAME_COVERAGE = 0.7
FRAME_DEPARTURE = 0.25
FRAME_STRUCTURE = 0.01
FRAME_INSET = 0.04
"""A filled frame (:func:`filled_frame_interior`): ink above :data:`FRAME_INK_LEVEL` covers at
least :data:`FRAME_COVERAGE` of a box at least :data:`MIN_FRAME_SIDE` pixels a side, and at
least :data:`FRAME_STRUCTURE` of it exceeds the frame's median by more than
:data:`FRAME_DEPARTURE` (a pen stroke on a grey box); its interior is the box inset by
:data:`FRAME_INSET` of its size."""

MIN_PART_MASS_FRACTION = 0.01
"""A region smaller than this fraction of the main region's area is always a speck."""

NEAR_GAP_FRACTION = 0.1
"""A region whose gap to the digit is at most this fraction of the main region's extent joins
the digit, whatever its size."""

LARGE_PART_FRACTION = 0.25
MAX_PART_GAP_FRACTION = 0.5
"""A region at least :data:`LARGE_PART_FRACTION` of the main region's extent joins the digit
when its gap is at most :data:`MAX_PART_GAP_FRACTION` of that extent (the bar of a 5, the two
strokes of an open 4)."""

MIN_DIGIT_EXTENT_PIXELS = 4
MIN_DIGIT_EXTENT_FRACTION = 0.03
"""The digit must span at least this many pixels and this fraction of the image's longer side;
anything smaller is a speck, not a digit."""

DETAIL_MIN_EXTENT = 48
"""A digit spanning fewer pixels than this in the working image is looked at again in the
full-resolution image (when that has more pixels)."""

DETAIL_MARGIN_FRACTION = 0.5
"""Margin, as a fraction of the digit's size, around a digit looked at again in detail."""

STROKE_MATCHING_SIDE = 4 * DIGIT_BOX_SIDE
"""Stroke widths are matched on the digit shrunk to at most this longest side, so that the
morphological filters stay small and fast."""

HAIRLINE_GAIN = 2.0
"""Before a hairline is widened, its ink is multiplied by this (and capped at 1)."""

SHRINK_FILTER = Image.Resampling.BOX
ENLARGE_FILTER = Image.Resampling.BILINEAR
"""Resampling filters of :func:`scale_to_box`: area averaging to shrink (as MNIST's
anti-aliased normalisation did), linear interpolation to enlarge."""

TARGET_STROKE_WIDTH = 2.1
"""Median stroke width of MNIST digits in pixels of the 20-pixel box, as
:func:`estimate_stroke_width` measures it on the test split (5th percentile 1.35, median 2.09,
95th percentile 3.36, 99th 4.15)."""

MIN_STROKE_WIDTH = 1.35
"""Strokes that would come out thinner than this in the 20-pixel box (MNIST's 5th percentile),
such as a 2-pixel pen line on a 900-pixel canvas, are widened to :data:`TARGET_STROKE_WIDTH`."""

MAX_STROKE_WIDTH = 4.5
"""Strokes thicker than this in the 20-pixel box, beyond any but a handful of MNIST digits, are
thinned down to it. Thinning them further (to the median) was measured to cost accuracy on
thick user-like digits: erosion breaks blotted digits, and the model knows bold ones."""


_add_reduce = np.add.reduce
_CANVAS_INDICES = np.arange(IMAGE_SIDE, dtype=np.int64)
_CANVAS_INDICES.flags.writeable = False


@dataclass(frozen=True, slots=True)
class Background:
    """The background level at every pixel (``surface``, broadcastable to the image) and the
    standard deviation of the noise around it."""

    surface: FloatImage
    noise: float


@dataclass(frozen=True, slots=True, eq=False)
class DigitReading:
    """What the preprocessing made of an image: the 28 x 28 digit and how many digit-sized
    pieces of ink it found side by side (:mod:`app.imaging.layout`; 1 for one digit)."""

    pixels: NDArray[np.uint8]
    separate_digits: int


def to_mnist_digit(image: Image.Image | NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Turn a decoded image of one handwritten digit into a 28 x 28 MNIST-format array.

    ``image`` is a Pillow image of any mode, or a 2-D ``uint8`` array read as a greyscale one.
    The digit of :func:`read_digit`, which says how, and what it raises.
    """
    return read_digit(image).pixels


def read_digit(image: Image.Image | NDArray[np.uint8]) -> DigitReading:
    """Turn a decoded image of one handwritten digit into a 28 x 28 MNIST-format array, and
    count the digit-sized pieces of ink that lie side by side in it.

    A 28 x 28 greyscale image that is already in MNIST's format (see :func:`is_mnist_format`)
    is returned as it is: normalising it again could only move it away from what the model
    learnt (and the function's own results come back unchanged, but for 1 in 1,000 whose
    faintest edge row rounds away). Otherwise the digit is first found on the image
    reduced to its working size. When that reduction leaves the digit small (a digit in a
    corner of a big photo), its surroundings are cut from the full-resolution image and the
    ink is extracted again there, in detail.

    Raises :class:`~app.errors.NoDigitFoundError` when the image holds no ink: blank, uniform,
    faint noise only, or nothing bigger than a speck.
    """
    if isinstance(image, np.ndarray):
        if is_mnist_format(image):
            return DigitReading(image.copy(), side_by_side_parts(image))
        image = Image.fromarray(image)
    elif image.mode == "L" and image.size == (IMAGE_SIDE, IMAGE_SIDE):
        # The bytes straight from Pillow (np.asarray would build its array interface first).
        pixels = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE)
        if is_mnist_format(pixels):
            return DigitReading(pixels.copy(), side_by_side_parts(pixels))
    standard = standardise_mode(image)
    working = reduce_to_working_size(standard)
    ink, (offset_top, offset_left), neighbours = extract_digit_ink(working)
    top, left, bottom, right = crop_box(ink)
    box = (top + offset_top, left + offset_left, bottom + offset_top, right + offset_left)
    region = detail_region((working.height, working.width), standard.size, box)
    if region is not None:
        ink, _, _ = extract_digit_ink(reduce_to_working_size(standard.crop(region)))
    separate_digits = max(side_by_side_parts(crop_to_ink(ink)), 1 + neighbours)
    return DigitReading(ink_to_mnist_digit(ink), separate_digits)


def ink_to_mnist_digit(ink: FloatImage) -> NDArray[np.uint8]:
    """Draw one digit's ink (bright on black, in [0, 1], specks already gone) as MNIST does:
    crop it, match its stroke width, scale its longest side to 20 pixels and centre it by mass
    on 28 x 28.

    The tail of :func:`read_digit`, and what every digit of a number goes through
    (:mod:`app.imaging.segmentation`), so that a digit is drawn the same way alone or in a
    number. Raises :class:`~app.errors.NoDigitFoundError` when ``ink`` is empty.
    """
    digit = crop_to_ink(ink)
    digit = shrink_for_stroke_matching(digit)
    digit = match_stroke_width(digit)
    digit = scale_to_box(digit, DIGIT_BOX_SIDE)
    # Centre the digit as it will be stored, in whole grey levels, so that the result is
    # exactly what is_mnist_format accepts.
    digit = crop_to_ink(to_uint8(digit).astype(np.float32) * np.float32(1 / PIXEL_MAX))
    digit = centre_by_mass(digit, IMAGE_SIDE)
    return to_uint8(digit)


def is_mnist_format(pixels: NDArray[np.uint8]) -> bool:
    """Whether a 28 x 28 ``uint8`` array already is an MNIST digit as MNIST was made.

    That is: its non-zero pixels fit a box whose longest side is 19 or 20 pixels (MNIST's
    20-pixel box; anti-aliasing leaves the last row of a few digits empty), so the background
    is black and the ink bright, and the box sits where :func:`centre_by_mass` would put it.
    Every MNIST test digit passes.

    Works on the integer row and column sums alone: they give the box and, exactly as
    :func:`centre_by_mass_offset` computes it on the cropped digit, the centre of mass. It runs
    on every upload of 28 x 28 pixels, so it calls numpy's reductions directly rather than
    through the ``ndarray`` methods' Python wrappers.
    """
    if pixels.shape != (IMAGE_SIDE, IMAGE_SIDE) or pixels.dtype != np.uint8:
        return False
    row_mass = _add_reduce(pixels, axis=1, dtype=np.int64)
    rows = row_mass.nonzero()[0]
    if rows.size == 0:
        return False
    column_mass = _add_reduce(pixels, axis=0, dtype=np.int64)
    columns = column_mass.nonzero()[0]
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    left, right = int(columns[0]), int(columns[-1]) + 1
    height, width = bottom - top, right - left
    if max(height, width) not in (DIGIT_BOX_SIDE - 1, DIGIT_BOX_SIDE):
        return False
    total = float(_add_reduce(row_mass))
    centre_row = float(row_mass[top:bottom] @ _CANVAS_INDICES[:height]) / total
    centre_column = float(column_mass[left:right] @ _CANVAS_INDICES[:width]) / total
    return _offset_for_centre(centre_row, centre_column, (height, width), IMAGE_SIDE) == (
        top,
        left,
    )


def extract_digit_ink(image: Image.Image) -> tuple[FloatImage, tuple[int, int], int]:
    """The digit's ink in ``image`` (see :func:`extract_clean_ink`), looking inside a box.

    A digit written inside a grey box, on a sheet of paper lying on a dark table or in any
    other filled frame makes the whole frame stand out from the image's border: what comes
    out is a filled rectangle (:func:`filled_frame_interior`). Then the ink is extracted again
    from the frame's interior, against the frame's own background. Returns the ink, where
    its top-left corner lies in ``image`` (row, column), and how many digit-sized regions
    level with the digit were kept beside it (:func:`~app.imaging.layout.digit_sized_neighbours`).
    """
    ink, background, threshold, neighbours = _ink_without_specks(image)
    interior = filled_frame_interior(ink)
    if interior is not None:
        top, left, bottom, right = interior
        try:
            inner, inner_neighbours = extract_clean_ink(image.crop((left, top, right, bottom)))
        except NoDigitFoundError:
            pass
        else:
            return inner, (top, left), inner_neighbours
    ink = normalise_contrast(ink, noise=background.noise, threshold=threshold)
    return ink, (0, 0), neighbours


def filled_frame_interior(ink: FloatImage) -> tuple[int, int, int, int] | None:
    """The interior (top, left, bottom, right) of a filled frame that ``ink`` (in any units;
    levels are relative to its maximum) shows, or None.

    A frame is a region of at least :data:`MIN_FRAME_SIDE` pixels whose box is mostly covered
    (:data:`FRAME_COVERAGE`) by a fill that strokes stronger than it cross
    (:data:`FRAME_STRUCTURE`), unlike a digit, which leaves most of its box empty, or a bold
    digit or blot, whose ink is its strongest. The interior is the box inset by
    :data:`FRAME_INSET` of its size.
    """
    peak = float(ink.max())
    if peak <= 0.0:
        return None
    top, left, bottom, right = crop_box(ink, FRAME_INK_LEVEL * peak)
    height, width = bottom - top, right - left
    if min(height, width) < MIN_FRAME_SIDE:
        return None
    region = ink[top:bottom, left:right] * np.float32(1.0 / peak)
    covered = region[region > np.float32(FRAME_INK_LEVEL)]
    if covered.size < FRAME_COVERAGE * region.size:
        return None
    stronger = covered > np.float32(np.median(covered) + FRAME_DEPARTURE)
    if float(np.mean(stronger)) < FRAME_STRUCTURE:
        return None
    inset = max(2, round(FRAME_INSET * max(height, width)))
    if min(height, width) <= 4 * inset:
        return None
    return top + inset, left + inset, bottom - inset, right - inset


def extract_clean_ink(image: Image.Image) -> tuple[FloatImage, int]:
    """The digit's ink, bright on black in [0, 1], specks removed, at the size of ``image`` (a
    standard-mode image, see :func:`standardise_mode`), and how many digit-sized regions level
    with the digit were kept beside it."""
    ink, background, threshold, neighbours = _ink_without_specks(image)
    return normalise_contrast(ink, noise=background.noise, threshold=threshold), neighbours


def _ink_without_specks(image: Image.Image) -> tuple[FloatImage, Background, float, int]:
    """The ink of a standard-mode image before contrast normalisation, specks removed, with
    the background and the detection threshold it was measured against, and the number of
    digit-sized regions left out beside the digit."""
    ink, background, threshold = find_raw_ink(image)
    cleaned, neighbours = separate_specks(ink, threshold)
    return cleaned, background, threshold, neighbours


def find_raw_ink(image: Image.Image) -> tuple[FloatImage, Background, float]:
    """All the ink of a standard-mode image, bright on dark, before specks are told from
    strokes and before contrast normalisation: steps 2 to 4 (transparency, background,
    polarity), with the background and the detection threshold it was measured against.

    Shared by the one-digit path and the segmentation of numbers, which keeps every digit
    rather than the main one. Raises :class:`~app.errors.NoDigitFoundError` for a blank image.
    """
    grey, alpha = grey_and_alpha(image)
    grey = composite_on_contrasting_background(grey, alpha)
    background = estimate_background(grey)
    ink, threshold = extract_ink(grey, background)
    return ink, background, threshold


def detail_region(
    working_shape: tuple[int, int],
    full_size: tuple[int, int],
    box: tuple[int, int, int, int],
) -> tuple[int, int, int, int] | None:
    """Where to look again, in full resolution, at a digit that came out small.

    ``box`` (top, left, bottom, right) is the digit's box in the working image of shape
    ``working_shape``, which was reduced from an image of ``full_size`` (width, height). When
    the reduction shrank the digit below :data:`DETAIL_MIN_EXTENT` pixels and the full image
    has more detail, the result is that box in full-image coordinates (left, upper, right,
    lower) widened by :data:`DETAIL_MARGIN_FRACTION` of the digit's size on every side, so the
    region's border shows background. Otherwise it is ``None``.
    """
    working_height, working_width = working_shape
    full_width, full_height = full_size
    scale = full_width / working_width
    top, left, bottom, right = box
    extent = max(bottom - top, right - left)
    if scale <= 1.0 or extent >= DETAIL_MIN_EXTENT:
        return None
    margin = DETAIL_MARGIN_FRACTION * extent + 1
    return (
        max(0, int((left - margin) * scale)),
        max(0, int((top - margin) * scale)),
        min(full_width, int(np.ceil((right + margin) * scale))),
        min(full_height, int(np.ceil((bottom + margin) * scale))),
    )


def standardise_mode(image: Image.Image) -> Image.Image:
    """The image in mode ``L`` (grey), ``LA`` or ``RGBA`` (with transparency) or, for more than
    8 bits, ``F``.

    Colour without transparency (or with an alpha channel that is opaque everywhere) becomes
    one grey channel at once, its luma (ITU-R 601, as Pillow converts) or, when that hides the
    strokes, its most contrasting colour channel (:func:`_most_contrasting_channel`), so that
    every later step handles one channel; palette and single-colour transparency become an
    alpha channel; 16- and 32-bit integer and float images become ``F`` scaled to [0, 1].
    """
    mode = image.mode
    if mode in ("L", "RGB") and "transparency" in image.info:
        return image.convert("RGBA")
    if mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        return _most_contrasting_channel(image.convert("RGB"))
    if mode in ("L", "LA", "RGBA"):
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "L")
    if mode == "La":
        return image.convert("LA")
    if mode == "RGBa":
        return image.convert("RGBA")
    if mode.startswith("I") or mode == "F":
        return _high_depth_to_unit_range(image)
    if mode == "RGB":
        return _most_contrasting_channel(image)
    if mode == "1":
        return image.convert("L")
    return _most_contrasting_channel(image.convert("RGB"))


def _most_contrasting_channel(image: Image.Image) -> Image.Image:
    """An RGB image as one grey channel: its luma, or the colour channel (red, green or blue)
    whose contrast is :data:`COLOUR_CHANNEL_GAIN` times the luma's.

    Contrast is the spread of a thumbnail's values around their median (its 99.5th percentile
    of absolute departures), which the background dominates and the strokes stretch.
    """
    factor = max(1, max(image.size) // COLOUR_PROBE_SIDE)
    thumbnail = np.asarray(image.reduce(factor) if factor > 1 else image, dtype=np.float32)
    red, green, blue = thumbnail[..., 0], thumbnail[..., 1], thumbnail[..., 2]
    luma = red * np.float32(0.299) + green * np.float32(0.587) + blue * np.float32(0.114)
    contrasts = [_contrast(channel) for channel in (luma, red, green, blue)]
    best = int(np.argmax(contrasts[1:])) + 1
    if contrasts[best] > COLOUR_CHANNEL_GAIN * contrasts[0] + 1.0:
        return image.getchannel(best - 1)
    return image.convert("L")


def _contrast(values: NDArray[np.float32]) -> float:
    """How far the strongest values depart from the median (99.5th percentile of departures)."""
    return float(np.percentile(np.abs(values - np.median(values)), 99.5))


def reduce_to_working_size(standard: Image.Image) -> Image.Image:
    """A standard-mode image (see :func:`standardise_mode`), box-averaged down when large.

    The longest side becomes :data:`~app.imaging.working_size.WORKING_MIN_SIDE`; averaging
    keeps a thin stroke's ink (fainter, wider), which :func:`normalise_contrast` later restores.
    """
    size = working_size(standard.size)
    if size == standard.size:
        return standard
    return standard.resize(size, Image.Resampling.BOX, reducing_gap=2.0)


def grey_and_alpha(image: Image.Image) -> tuple[FloatImage, FloatImage | None]:
    """Luma and opacity in [0, 1] of an image in a standard mode (see :func:`standardise_mode`);
    opacity is ``None`` for an image without an alpha channel. Float values out of [0, 1] are
    clipped, NaN and infinities become 0."""
    mode = image.mode
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        unit: FloatImage = np.clip(values, 0.0, 1.0)
        return unit, None
    scale = np.float32(1 / PIXEL_MAX)
    alpha: FloatImage | None = None
    if mode in ("LA", "RGBA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) * scale
    luma = image if mode == "L" else image.convert("L")
    return np.asarray(luma, dtype=np.float32) * scale, alpha


def composite_on_contrasting_background(grey: FloatImage, alpha: FloatImage | None) -> FloatImage:
    """Flatten transparency onto white or black, whichever contrasts with the opaque pixels.

    A canvas export with black strokes on a transparent background becomes black on white; with
    white strokes, white on black. The colour stored under fully transparent pixels is ignored.
    """
    if alpha is None or float(alpha.min()) >= 1.0:
        return grey
    opacity = float(alpha.sum())
    if opacity <= 0.0:
        return np.zeros_like(grey)
    opaque_luma = float(np.vdot(grey, alpha)) / opacity
    fill = np.float32(1.0 if opaque_luma < 0.5 else 0.0)
    composited: FloatImage = grey * alpha + fill * (np.float32(1.0) - alpha)
    return composited


def estimate_background(grey: FloatImage) -> Background:
    """Fit the background as a smooth (quadratic) surface to the image's border ring.

    The fit is robust: it starts from the border pixels near their median level, then border
    pixels far from the surface (ink touching the edge, a shadow, the table beyond the paper's
    edge) are dropped and the fit repeated. The noise is the robust spread of the remaining
    border pixels around it, at most :data:`NEIGHBOUR_NOISE_FACTOR` times the spread between
    neighbouring border pixels. A uniform border, the common case for drawings, takes a fast
    path.
    """
    height, width = grey.shape
    ring = max(1, round(BORDER_FRACTION * min(height, width)))
    if height <= 2 * ring or width <= 2 * ring:
        level = np.float32(np.median(grey))
        return Background(np.full((1, 1), level, dtype=np.float32), _robust_spread(grey - level))
    rows, columns = _border_coordinates(height, width, ring)
    values = grey[rows, columns].astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1.0 / PIXEL_MAX:
        level = np.float32(np.median(values))
        return Background(np.full((1, 1), level, dtype=np.float32), 0.0)

    u_border = columns * (2.0 / max(width - 1, 1)) - 1.0
    v_border = rows * (2.0 / max(height - 1, 1)) - 1.0
    design = np.stack(
        [
            np.ones_like(u_border),
            u_border,
            v_border,
            u_border * u_border,
            v_border * v_border,
            u_border * v_border,
        ],
        axis=1,
    )
    # Start from the border pixels near the typical level, so that a minority at another level
    # (a shadow or the table beyond the paper's edge along one side) does not bend the first fit.
    inliers = np.abs(values - np.median(values)) <= max(
        3.0 * _robust_spread(values), 2.0 / PIXEL_MAX
    )
    if inliers.sum() < values.size // 2:
        inliers = np.ones(values.size, dtype=bool)
    coefficients = np.zeros(design.shape[1])
    noise = 0.0
    for _ in range(4):
        coefficients = _least_squares(design[inliers], values[inliers])
        residuals = values - design @ coefficients
        noise = _robust_spread(residuals[inliers])
        updated = np.abs(residuals) <= max(3.0 * noise, 1.0 / PIXEL_MAX)
        if updated.sum() < design.shape[1] or np.array_equal(updated, inliers):
            break
        inliers = updated

    # A step in the border (a paper edge, a shadow, a grid line) inflates the spread around a
    # smooth surface; the spread between neighbouring pixels is not fooled by it.
    noise = min(noise, NEIGHBOUR_NOISE_FACTOR * _neighbour_noise(grey, ring))
    u = np.linspace(-1.0, 1.0, width)
    v = np.linspace(-1.0, 1.0, height)
    c0, cu, cv, cuu, cvv, cuv = (float(value) for value in coefficients)
    row_profile = (c0 + cu * u + cuu * u * u).astype(np.float32)
    column_profile = (cv * v + cvv * v * v).astype(np.float32)
    surface: FloatImage = column_profile[:, np.newaxis] + row_profile[np.newaxis, :]
    if abs(cuv) > 1e-4:
        surface += np.float32(cuv) * np.outer(v, u).astype(np.float32)
    return Background(surface, noise)


def extract_ink(grey: FloatImage, background: Background) -> tuple[FloatImage, float]:
    """Ink as bright on dark: the departure from the background in the dominant direction.

    Both directions are measured by how much pixels exceed the detection threshold; the larger
    one is the ink (dark pen on paper, or chalk on a board). Returns the ink, zero where the
    image is lighter than the background for dark ink and vice versa, and that threshold.

    Raises :class:`~app.errors.NoDigitFoundError` when nothing departs from the background by
    more than the threshold (:data:`MIN_INK_CONTRAST`, or :data:`INK_NOISE_SIGMAS` of noise).
    """
    residual = grey - background.surface
    threshold = max(INK_NOISE_SIGMAS * background.noise, MIN_INK_CONTRAST)
    darker_excess = float(np.maximum(-residual - np.float32(threshold), 0.0).sum())
    lighter_excess = float(np.maximum(residual - np.float32(threshold), 0.0).sum())
    if darker_excess <= 0.0 and lighter_excess <= 0.0:
        raise NoDigitFoundError(
            "no digit found: the image is blank or uniform (no strokes stand out from the "
            "background)"
        )
    ink = -residual if darker_excess > lighter_excess else residual
    np.maximum(ink, np.float32(0.0), out=ink)
    return ink, threshold


def normalise_contrast(ink: FloatImage, *, noise: float, threshold: float) -> FloatImage:
    """Stretch ink so that the noise floor becomes 0 and solid ink 1.

    Solid ink is the :data:`SOLID_INK_PERCENTILE` percentile of the pixels above ``threshold``,
    so a few bright outliers do not set the scale and a grey pencil line becomes full white.
    """
    strong = ink[ink > threshold]
    if strong.size == 0:
        raise NoDigitFoundError("no digit found: the image holds no strokes")
    solid = float(np.percentile(strong, SOLID_INK_PERCENTILE))
    floor = min(FLOOR_NOISE_SIGMAS * noise, 0.5 * solid)
    scaled: FloatImage = (ink - np.float32(floor)) * np.float32(1.0 / (solid - floor))
    np.clip(scaled, 0.0, 1.0, out=scaled)
    return scaled


def suppress_specks(ink: FloatImage, threshold: float) -> FloatImage:
    """The digit's ink of :func:`separate_specks`."""
    return separate_specks(ink, threshold)[0]


def separate_specks(ink: FloatImage, threshold: float) -> tuple[FloatImage, int]:
    """Keep the main ink region and the regions that belong with it; zero everything else.

    Regions are connected areas of ink above ``threshold`` and above :data:`RELATIVE_INK_LEVEL`
    of the solid ink (so that strokes, not fainter grid lines, boxes or shadows, make regions),
    found on a mask max-pooled to at most :data:`ANALYSIS_MAX_SIDE` pixels a side, pieces at most
    :data:`BRIDGE_PIXELS` pooled pixels apart counting as one. Thin regions along the image's
    edge (:func:`_edge_lines`: paper edges, page borders) are not strokes while anything else
    is there. The largest remaining region is the digit's main stroke. Another region joins
    the digit if it is close (:data:`NEAR_GAP_FRACTION`), or if it is a large part, like the
    bar of a 5, not too far away (:data:`LARGE_PART_FRACTION`, :data:`MAX_PART_GAP_FRACTION`);
    small marks further away are specks. Faint halo pixels next to a kept region stay.

    Regions as tall and heavy as the digit and level with it are kept however far away they lie
    (:func:`~app.imaging.layout.digit_sized_neighbours`: other digits of a number); how many
    is returned as well.

    Raises :class:`~app.errors.NoDigitFoundError` when the digit would be smaller than a speck
    (:data:`MIN_DIGIT_EXTENT_PIXELS`, :data:`MIN_DIGIT_EXTENT_FRACTION`).
    """
    height, width = ink.shape
    pool = -(-max(height, width) // ANALYSIS_MAX_SIDE)
    pooled = _max_pool(ink, pool)
    visible = pooled > np.float32(stroke_level(pooled, threshold))
    bridged = _dilate(visible, BRIDGE_PIXELS)
    runs = find_runs(bridged)
    table = describe_regions(runs, visible.astype(np.float32))
    if len(table) == 0:
        raise NoDigitFoundError("no digit found: the image holds no strokes")
    masses = table.masses
    not_strokes = _edge_lines(table, visible.shape) | _outline_boxes(runs, table, visible.shape)
    if not_strokes.any() and not not_strokes.all():
        masses = np.where(not_strokes, 0.0, masses)

    # Only regions above the speck mass can join the digit; there are few, however noisy the
    # image, so they are examined one by one.
    main_index = int(np.argmax(masses))
    main = table.region(main_index)
    candidates = np.flatnonzero(masses >= max(MIN_PART_MASS_FRACTION * main.mass, 1e-9))
    order = candidates[np.argsort(-masses[candidates], kind="stable")]
    keep = np.zeros(len(table), dtype=bool)
    keep[main_index] = True
    top, left, bottom, right = main.top, main.left, main.bottom, main.right
    changed = True
    while changed:
        changed = False
        for index in order.tolist():
            if keep[index]:
                continue
            region = table.region(index)
            gap = region.gap_to(top, left, bottom, right)
            near = gap <= NEAR_GAP_FRACTION * main.extent
            large_part = (
                region.extent >= LARGE_PART_FRACTION * main.extent
                and gap <= MAX_PART_GAP_FRACTION * main.extent
            )
            if near or large_part:
                keep[index] = True
                changed = True
                top, left = min(top, region.top), min(left, region.left)
                bottom, right = max(bottom, region.bottom), max(right, region.right)

    # Other digits far away stay too: the image is then not one digit, and the network should
    # see that as well as the layout.
    neighbours = digit_sized_neighbours(table, keep, not_strokes, main_index)
    keep |= neighbours
    kept = paint_regions(runs, keep, bridged.shape)
    if pool == 1:
        kept = _dilate(kept, 1)
    else:
        kept = np.repeat(np.repeat(kept, pool, axis=0), pool, axis=1)[:height, :width]
    cleaned: FloatImage = np.where(kept, ink, np.float32(0.0))

    top, left, bottom, right = crop_box(cleaned, threshold)
    digit_extent = max(bottom - top, right - left)
    smallest_digit = max(MIN_DIGIT_EXTENT_PIXELS, MIN_DIGIT_EXTENT_FRACTION * max(height, width))
    if digit_extent < smallest_digit:
        raise NoDigitFoundError(
            "no digit found: the image holds only specks too small to be a digit"
        )
    return cleaned, int(np.count_nonzero(neighbours))


def stroke_level(ink: FloatImage, threshold: float) -> float:
    """The level above which ``ink`` (before normalisation, detected above ``threshold``) is a
    stroke: :data:`RELATIVE_INK_LEVEL` of the solid ink (:data:`SOLID_REGION_PERCENTILE` of
    the detected ink), and at least ``threshold``."""
    above = ink[ink > np.float32(threshold)]
    if above.size == 0:
        return threshold
    solid = float(np.percentile(above, SOLID_REGION_PERCENTILE))
    return max(threshold, RELATIVE_INK_LEVEL * solid)


def _edge_lines(table: RegionTable, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Which regions are thin lines along the image's edge (see :data:`EDGE_LINE_SPAN`)."""
    height, width = shape
    heights = table.bottoms - table.tops
    widths = table.rights - table.lefts
    near_top = table.bottoms <= EDGE_LINE_THICKNESS * height
    near_bottom = table.tops >= (1.0 - EDGE_LINE_THICKNESS) * height
    near_left = table.rights <= EDGE_LINE_THICKNESS * width
    near_right = table.lefts >= (1.0 - EDGE_LINE_THICKNESS) * width
    horizontal = (widths >= EDGE_LINE_SPAN * width) & (near_top | near_bottom)
    vertical = (heights >= EDGE_LINE_SPAN * height) & (near_left | near_right)
    lines: NDArray[np.bool_] = horizontal | vertical
    return lines


def _outline_boxes(runs: InkRuns, table: RegionTable, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Which regions are drawn or printed boxes around the digit: large outlines whose four
    corners hold ink and whose inside (the box inset by :data:`OUTLINE_BAND` of its size) holds
    almost none of it (a 0 has empty corners)."""
    boxes = np.zeros(len(table), dtype=bool)
    heights = table.bottoms - table.tops
    widths = table.rights - table.lefts
    large = np.minimum(heights, widths) >= OUTLINE_MIN_FRACTION * min(shape)
    for index in np.flatnonzero(large).tolist():
        keep = np.zeros(len(table), dtype=bool)
        keep[index] = True
        top, left = int(table.tops[index]), int(table.lefts[index])
        mask = paint_regions(runs, keep, shape)[
            top : table.bottoms[index], left : table.rights[index]
        ]
        height, width = mask.shape
        band = max(1, round(OUTLINE_BAND * min(height, width)))
        corners = (
            mask[:band, :band].any()
            and mask[:band, -band:].any()
            and mask[-band:, :band].any()
            and mask[-band:, -band:].any()
        )
        inside = int(mask[band:-band, band:-band].sum())
        boxes[index] = bool(corners) and inside <= OUTLINE_INSIDE_FRACTION * int(mask.sum())
    return boxes


def crop_box(ink: FloatImage, level: float = 0.0) -> tuple[int, int, int, int]:
    """The box (top, left, bottom, right; ends exclusive) around all ink above ``level``.

    Raises :class:`~app.errors.NoDigitFoundError` when there is no such ink.
    """
    above = ink > np.float32(level)
    rows = np.flatnonzero(above.any(axis=1))
    columns = np.flatnonzero(above.any(axis=0))
    if rows.size == 0:
        raise NoDigitFoundError("no digit found: the image holds no strokes")
    return int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1


def crop_to_ink(ink: FloatImage, level: float = 0.0) -> FloatImage:
    """The smallest rectangle holding all ink above ``level`` (see :func:`crop_box`)."""
    top, left, bottom, right = crop_box(ink, level)
    return ink[top:bottom, left:right]


def estimate_stroke_width(ink: FloatImage) -> float:
    """Typical stroke width in pixels, from the ink's area and outline length.

    A stroke of width ``w`` and length ``l`` has area ``a = w * l`` and outline
    ``p = 2 * (w + l)``, so ``w`` is the smaller root of ``w**2 - (p / 2) * w + a = 0``. Ink is
    taken at a 50 % threshold and the outline counted as the number of ink/background pixel
    edges; a one-pixel line measures 1, a digit's strokes their width whatever its size.
    """
    solid = ink >= np.float32(0.5)
    area = int(solid.sum())
    if area == 0:
        return 0.0
    padded = np.pad(solid, 1)
    outline = int((padded[1:, :] != padded[:-1, :]).sum() + (padded[:, 1:] != padded[:, :-1]).sum())
    half_outline = outline / 2
    return float(half_outline - np.sqrt(max(half_outline**2 - 4 * area, 0.0))) / 2


def shrink_for_stroke_matching(digit: FloatImage) -> FloatImage:
    """Box-average a large cropped digit down to :data:`STROKE_MATCHING_SIDE` on its longest side
    and restore full contrast, which averaging takes from thin strokes.

    A digit that is already small enough is returned as it is.
    """
    height, width = digit.shape
    size = working_size((width, height), STROKE_MATCHING_SIDE)
    if size == (width, height):
        return digit
    shrunk = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.BOX), dtype=np.float32)
    visible = shrunk[shrunk > np.float32(MIN_INK_CONTRAST)]
    if visible.size == 0:
        return shrunk
    solid = float(np.percentile(visible, SOLID_INK_PERCENTILE))
    restored: FloatImage = np.clip(shrunk * np.float32(1.0 / solid), 0.0, 1.0)
    return restored


def match_stroke_width(digit: FloatImage) -> FloatImage:
    """Thicken hairline strokes and thin marker strokes so that, in the 20-pixel box, they come
    out between :data:`MIN_STROKE_WIDTH` and :data:`MAX_STROKE_WIDTH` pixels wide.

    A 2-pixel line on a 900-pixel canvas would otherwise average away to a faint trace. Strokes
    already in range, as every MNIST digit's are, are left untouched.
    """
    extent = max(digit.shape)
    if extent <= DIGIT_BOX_SIDE:
        return digit
    width = estimate_stroke_width(digit)
    box_scale = DIGIT_BOX_SIDE / extent
    width_in_box = width * box_scale
    if width <= 0.0 or MIN_STROKE_WIDTH <= width_in_box <= MAX_STROKE_WIDTH:
        return digit
    goal = TARGET_STROKE_WIDTH if width_in_box < MIN_STROKE_WIDTH else MAX_STROKE_WIDTH
    # Widening strokes by k pixels widens the digit's box by k too: solve
    # (width + k) / (extent + k) = goal / DIGIT_BOX_SIDE for k (negative k thins).
    relative_goal = goal / DIGIT_BOX_SIDE
    change = (relative_goal * extent - width) / (1.0 - relative_goal)
    size = 2 * round(abs(change) / 2) + 1
    if size < 3:
        return digit
    if change > 0:
        # A hairline's intensity varies along it with how it fell on the pixel grid; made solid
        # before it is widened, it does not turn into a chain of blocks.
        solid = np.minimum(digit * np.float32(HAIRLINE_GAIN), np.float32(1.0))
        return _morphology(np.pad(solid, size // 2), ImageFilter.MaxFilter(size))
    thinned = _morphology(digit, ImageFilter.MinFilter(size))
    return crop_to_ink(thinned) if thinned.any() else digit


def scale_to_box(digit: FloatImage, side: int) -> FloatImage:
    """Resize so that the longest side is ``side`` pixels, keeping the aspect ratio.

    Shrinking averages areas (as MNIST's anti-aliased normalisation did); enlarging interpolates
    smoothly. A digit already ``side`` pixels long is returned as it is.
    """
    height, width = digit.shape
    longest = max(height, width)
    if longest == side:
        return digit
    scale = side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = SHRINK_FILTER if longest > side else ENLARGE_FILTER
    resized = np.asarray(Image.fromarray(digit).resize(size, resample), dtype=np.float32)
    return np.clip(resized, 0.0, 1.0)


def centre_by_mass(digit: FloatImage, side: int) -> FloatImage:
    """Place ``digit`` on a ``side`` x ``side`` black canvas with its centre of mass at the
    centre (MNIST's rule), shifted by whole pixels and never pushed past an edge."""
    height, width = digit.shape
    if height > side or width > side or float(digit.sum()) <= 0.0:
        raise NoDigitFoundError("no digit found: the image holds no strokes")
    top, left = centre_by_mass_offset(digit, side)
    canvas = np.zeros((side, side), dtype=np.float32)
    canvas[top : top + height, left : left + width] = digit
    return canvas


def centre_by_mass_offset(digit: FloatImage, side: int) -> tuple[int, int]:
    """Where :func:`centre_by_mass` puts the top-left corner of ``digit`` (row, column)."""
    height, width = digit.shape
    total = float(digit.sum())
    centre_row = float(digit.sum(axis=1) @ np.arange(height)) / total
    centre_column = float(digit.sum(axis=0) @ np.arange(width)) / total
    return _offset_for_centre(centre_row, centre_column, digit.shape, side)


def _offset_for_centre(
    centre_row: float, centre_column: float, shape: tuple[int, ...], side: int
) -> tuple[int, int]:
    """The top-left corner (row, column) that moves a digit of ``shape`` whose centre of mass is
    at (``centre_row``, ``centre_column``) to the canvas centre, rounded half to even and kept
    inside a ``side`` x ``side`` canvas."""
    height, width = shape[0], shape[1]
    top = min(max(round(CENTRE_OF_MASS_TARGET - centre_row), 0), side - height)
    left = min(max(round(CENTRE_OF_MASS_TARGET - centre_column), 0), side - width)
    return top, left


def to_uint8(image: FloatImage) -> NDArray[np.uint8]:
    """[0, 1] floats to MNIST's 0-255 bytes, rounded."""
    scaled = np.clip(image, 0.0, 1.0) * np.float32(PIXEL_MAX)
    rounded: NDArray[np.uint8] = np.rint(scaled).astype(np.uint8)
    return rounded


def _high_depth_to_unit_range(image: Image.Image) -> Image.Image:
    """A 16/32-bit integer or float image as a float (``F``) image scaled towards [0, 1], at
    the working size.

    16-bit images are divided by 65535; 32-bit integers by 255 when they fit in 8 bits and by
    65535 otherwise; floats are taken as [0, 1], [0, 255] or [0, 65535] from their maximum.
    Such images are rare and large (four bytes a pixel), so they are box-averaged down to the
    working size in their own mode first, and only the small image is converted and scaled:
    a 40-megapixel float image then costs its decoded size and nothing more. Values out of
    range, NaN and infinities are dealt with once the image is small (see
    :func:`grey_and_alpha`).
    """
    if image.mode.startswith("I;16"):
        full_scale = 65535.0
    else:
        extrema = image.getextrema()
        peak = float(extrema[1]) if isinstance(extrema[1], (int, float)) else 0.0
        if not np.isfinite(peak):
            # NaN or infinity: the peak of the finite values, read at the working size (box
            # averages only lower it; the scale chosen from it is coarse).
            values = np.asarray(image.resize(working_size(image.size), Image.Resampling.BOX))
            finite = values[np.isfinite(values)]
            peak = float(finite.max()) if finite.size else 0.0
        if image.mode == "F" and peak <= 1.0:
            full_scale = 1.0
        elif peak <= PIXEL_MAX:
            full_scale = float(PIXEL_MAX)
        else:
            full_scale = 65535.0
    size = working_size(image.size)
    reduced = image if size == image.size else image.resize(size, Image.Resampling.BOX)
    floats = reduced if reduced.mode == "F" else reduced.convert("F")
    return floats.point(lambda value: value * (1.0 / full_scale))


def _least_squares(design: NDArray[np.float64], values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Least-squares coefficients by the normal equations, slightly regularised.

    With six well-scaled columns this is exact enough and about fifty times faster than
    ``numpy.linalg.lstsq``, whose LAPACK call also competes for threads with other requests.
    """
    ridge = np.eye(design.shape[1]) * (1e-9 * design.shape[0])
    normal = design.T @ design + ridge
    solution: NDArray[np.float64] = np.linalg.solve(normal, design.T @ values)
    return solution


def _robust_spread(values: NDArray[np.floating]) -> float:
    """Standard deviation estimated from the median absolute deviation (robust to outliers)."""
    if values.size == 0:
        return 0.0
    deviations = np.abs(values - np.median(values))
    return float(1.4826 * np.median(deviations))


def _neighbour_noise(grey: FloatImage, ring: int) -> float:
    """The noise of the border ring from differences between horizontally neighbouring pixels
    (robust spread, divided by the square root of 2)."""
    bands = (grey[:ring], grey[-ring:], grey[ring:-ring, :ring], grey[ring:-ring, -ring:])
    differences = [np.diff(band, axis=1).ravel() for band in bands if band.shape[1] > 1]
    if not differences:
        return 0.0
    return _robust_spread(np.concatenate(differences)) / float(np.sqrt(2.0))


def _border_coordinates(
    height: int, width: int, ring: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row and column indices of (a regular sample of) the pixels in the border ring."""
    all_rows = np.arange(height)
    all_columns = np.arange(width)
    edge_rows = np.concatenate([all_rows[:ring], all_rows[height - ring :]])
    edge_columns = np.concatenate([all_columns[:ring], all_columns[width - ring :]])
    inner_rows = all_rows[ring : height - ring]
    horizontal = np.meshgrid(edge_rows, all_columns, indexing="ij")
    vertical = np.meshgrid(inner_rows, edge_columns, indexing="ij")
    rows = np.concatenate([horizontal[0].ravel(), vertical[0].ravel()])
    columns = np.concatenate([horizontal[1].ravel(), vertical[1].ravel()])
    step = max(1, rows.size // MAX_BORDER_SAMPLES)
    return rows[::step], columns[::step]


def _max_pool(image: FloatImage, pool: int) -> FloatImage:
    """Maximum over ``pool`` x ``pool`` blocks (the image is zero-padded to whole blocks)."""
    if pool == 1:
        return image
    height, width = image.shape
    padded = np.zeros((-(-height // pool) * pool, -(-width // pool) * pool), dtype=np.float32)
    padded[:height, :width] = image
    # Strided slices, one per offset within a block, are much faster than a reduction over a
    # short trailing axis.
    columns_pooled = padded[:, 0::pool].copy()
    for offset in range(1, pool):
        np.maximum(columns_pooled, padded[:, offset::pool], out=columns_pooled)
    pooled = columns_pooled[0::pool].copy()
    for offset in range(1, pool):
        np.maximum(pooled, columns_pooled[offset::pool], out=pooled)
    return pooled


def _dilate(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    """Grow a mask by ``radius`` pixels in every direction (a square neighbourhood)."""
    height, width = mask.shape
    grown = np.zeros((height + 2 * radius, width + 2 * radius), dtype=bool)
    for row_shift in range(2 * radius + 1):
        for column_shift in range(2 * radius + 1):
            grown[row_shift : row_shift + height, column_shift : column_shift + width] |= mask
    return grown[radius : radius + height, radius : radius + width]


def _morphology(image: FloatImage, operation: ImageFilter.Filter) -> FloatImage:
    """Apply a Pillow rank filter (max or min) to a float image."""
    filtered = Image.fromarray(image).filter(operation)
    return np.asarray(filtered, dtype=np.float32)


def drawn_boxes(runs: InkRuns, table: RegionTable, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Which regions of a mask of ``shape`` are boxes drawn or printed around the writing, by
    the rule :func:`suppress_specks` applies (the segmentation of numbers applies it too)."""
    return _outline_boxes(runs, table, shape)
