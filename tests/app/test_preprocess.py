"""Preprocessing: each step on its own, then :func:`to_mnist_digit` on the kinds of images
users send (either polarity, transparency, rotation metadata, 16-bit, palette, CMYK, off-centre,
specks, hairlines, markers) and on images without a digit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from app.errors import NoDigitFoundError
from app.imaging import preprocess
from app.imaging.decode import decode_upload
from app.imaging.pipeline import prepare_upload
from app.imaging.preprocess import (
    Background,
    centre_by_mass,
    composite_on_contrasting_background,
    crop_to_ink,
    estimate_background,
    estimate_stroke_width,
    extract_ink,
    grey_and_alpha,
    match_stroke_width,
    normalise_contrast,
    reduce_to_working_size,
    scale_to_box,
    standardise_mode,
    suppress_specks,
    to_mnist_digit,
)
from app.imaging.structure import DecodeLimits
from app.imaging.working_size import WORKING_MIN_SIDE

MAX_PIXELS = 40_000_000
LIMITS = DecodeLimits(max_pixels=MAX_PIXELS)
Digits = tuple[NDArray[np.uint8], NDArray[np.int64]]


def mean_difference(first: NDArray[np.uint8], second: NDArray[np.uint8]) -> float:
    """Mean absolute difference of two 8-bit images, in grey levels."""
    return float(np.abs(first.astype(np.int32) - second.astype(np.int32)).mean())


def correlation(first: NDArray[np.uint8], second: NDArray[np.uint8]) -> float:
    """Pearson correlation of two images' pixels."""
    return float(np.corrcoef(first.ravel().astype(float), second.ravel().astype(float))[0, 1])


def encoded(image: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    """``image`` saved as ``image_format``."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def enlarged_ink(digit: NDArray[np.uint8], height: int) -> NDArray[np.float32]:
    """An MNIST digit's ink (0..1) enlarged smoothly to ``height`` pixels tall."""
    rows = np.flatnonzero(digit.any(axis=1))
    columns = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    padded = np.pad(crop, 2).astype(np.float32) / 255
    scale = height / crop.shape[0]
    size = (round(padded.shape[1] * scale), round(padded.shape[0] * scale))
    resized = Image.fromarray(padded).resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def on_canvas(
    ink: NDArray[np.float32],
    canvas: tuple[int, int],
    top_left: tuple[int, int],
    *,
    paper: float = 1.0,
    pen: float = 0.0,
) -> NDArray[np.float32]:
    """Grey levels (0..1) of ``ink`` laid with ``pen`` on ``paper`` at ``top_left`` (x, y)."""
    width, height = canvas
    coverage = np.zeros((height, width), dtype=np.float32)
    left, top = top_left
    coverage[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    grey: NDArray[np.float32] = paper + (pen - paper) * coverage
    return grey


def to_grey_image(grey: NDArray[np.float32]) -> Image.Image:
    """Grey levels 0..1 as an 8-bit greyscale image."""
    return Image.fromarray(np.clip(np.rint(grey * 255), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def seven(mnist_sample: Digits) -> NDArray[np.uint8]:
    """A real MNIST 7."""
    images, labels = mnist_sample
    return images[np.flatnonzero(labels == 7)[0]]


@pytest.fixture(scope="module")
def three(mnist_sample: Digits) -> NDArray[np.uint8]:
    """A real MNIST 3."""
    images, labels = mnist_sample
    return images[np.flatnonzero(labels == 3)[0]]


# --- standardise_mode, reduce_to_working_size, grey_and_alpha ---------------------------------


def test_standardise_mode_turns_palette_transparency_into_alpha() -> None:
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    palette.info["transparency"] = 1
    standard = standardise_mode(palette)
    assert standard.mode == "RGBA"
    assert np.asarray(standard)[..., 3].max() == 0


def test_standardise_mode_scales_sixteen_bit_to_unit_range() -> None:
    sixteen = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    standard = standardise_mode(sixteen)
    assert standard.mode == "F"
    np.testing.assert_allclose(np.asarray(standard), [[0.0, 0.5, 1.0]], atol=1e-4)


def test_grey_and_alpha_replaces_float_nan_and_infinity() -> None:
    floats = Image.fromarray(np.array([[np.nan, np.inf, 0.25, 1.0, -3.0]], dtype=np.float32))
    grey, alpha = grey_and_alpha(standardise_mode(floats))
    assert alpha is None
    np.testing.assert_allclose(grey, [[0.0, 0.0, 0.25, 1.0, 0.0]])


@pytest.mark.parametrize(
    "mode",
    ["1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F", "La", "RGBa", "PA"],
)
def test_standardise_mode_gives_a_standard_mode(mode: str) -> None:
    assert standardise_mode(Image.new(mode, (4, 4))).mode in ("L", "LA", "RGBA", "F")


def test_standardise_mode_turns_colour_into_luma() -> None:
    red = standardise_mode(Image.new("RGB", (2, 2), (255, 0, 0)))
    assert red.mode == "L"
    assert np.asarray(red)[0, 0] == 76


def test_reduce_to_working_size_keeps_small_image() -> None:
    small = Image.new("L", (200, 120))
    assert reduce_to_working_size(small).size == (200, 120)


def test_reduce_to_working_size_shrinks_large_image_keeping_aspect() -> None:
    large = Image.new("L", (1800, 900))
    assert reduce_to_working_size(large).size == (WORKING_MIN_SIDE, WORKING_MIN_SIDE // 2)


def test_reduce_to_working_size_keeps_a_thin_line_visible() -> None:
    canvas = Image.new("L", (900, 900), 255)
    ImageDraw.Draw(canvas).line([(100, 450), (800, 450)], fill=0, width=2)
    reduced = np.asarray(reduce_to_working_size(canvas), dtype=np.float32)
    # Averaging by 3.5 fades a 2-pixel line to about 2 / 3.5 of its darkness but keeps its ink
    # (up to where the line falls between the averaging boxes).
    assert reduced.min() < 255 * 0.5 + 1
    assert (255 - reduced).sum() == pytest.approx(2 * 700 * 255 * (256 / 900) ** 2, rel=0.2)


def test_grey_and_alpha_reads_luma_and_opacity() -> None:
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 128))
    grey, alpha = grey_and_alpha(image)
    assert grey[0, 0] == pytest.approx(0.299, abs=0.01)
    assert alpha is not None
    assert alpha[0, 0] == pytest.approx(128 / 255)


# --- composite_on_contrasting_background --------------------------------------------------------


@pytest.mark.parametrize("hidden", [0.0, 1.0], ids=["hidden-black", "hidden-white"])
def test_composite_turns_black_strokes_on_transparency_into_black_on_white(hidden: float) -> None:
    alpha = np.zeros((10, 10), dtype=np.float32)
    alpha[4:6, 2:8] = 1.0
    grey = np.where(alpha > 0, 0.0, hidden).astype(np.float32)
    flat = composite_on_contrasting_background(grey, alpha)
    assert flat[5, 5] == 0.0
    assert flat[0, 0] == 1.0


@pytest.mark.parametrize("hidden", [0.0, 1.0], ids=["hidden-black", "hidden-white"])
def test_composite_turns_white_strokes_on_transparency_into_white_on_black(hidden: float) -> None:
    alpha = np.zeros((10, 10), dtype=np.float32)
    alpha[4:6, 2:8] = 1.0
    grey = np.where(alpha > 0, 1.0, hidden).astype(np.float32)
    flat = composite_on_contrasting_background(grey, alpha)
    assert flat[5, 5] == 1.0
    assert flat[0, 0] == 0.0


def test_composite_leaves_opaque_image_unchanged() -> None:
    grey = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(
        composite_on_contrasting_background(grey, np.ones_like(grey)), grey
    )


# --- estimate_background, extract_ink, normalise_contrast ---------------------------------------


def test_estimate_background_of_uniform_image_is_its_level_without_noise() -> None:
    background = estimate_background(np.full((50, 40), 0.8, dtype=np.float32))
    assert float(background.surface.mean()) == pytest.approx(0.8)
    assert background.noise == 0.0


def test_estimate_background_follows_uneven_lighting() -> None:
    rows, columns = np.mgrid[0:200, 0:300].astype(np.float32)
    lighting = 0.55 + 0.3 * columns / 300 - 0.15 * ((rows - 100) / 100) ** 2
    background = estimate_background(lighting.astype(np.float32))
    np.testing.assert_allclose(background.surface, lighting, atol=0.01)


def test_estimate_background_ignores_ink_touching_the_border() -> None:
    grey = np.full((100, 100), 0.9, dtype=np.float32)
    grey[0:60, 48:53] = 0.1  # A stroke running off the top edge.
    background = estimate_background(grey)
    assert float(np.abs(background.surface - 0.9).max()) < 0.01


def test_extract_ink_gives_the_same_ink_for_either_polarity() -> None:
    dark_on_light = np.full((30, 30), 0.9, dtype=np.float32)
    dark_on_light[10:20, 14:16] = 0.2
    light_on_dark = 1.0 - dark_on_light
    first, _ = extract_ink(dark_on_light, estimate_background(dark_on_light))
    second, _ = extract_ink(light_on_dark, estimate_background(light_on_dark))
    np.testing.assert_allclose(first, second, atol=1e-6)
    assert first[15, 15] == pytest.approx(0.7)
    assert first[0, 0] == 0.0


def test_extract_ink_refuses_a_uniform_image() -> None:
    grey = np.full((30, 30), 0.5, dtype=np.float32)
    with pytest.raises(NoDigitFoundError):
        extract_ink(grey, estimate_background(grey))


def test_normalise_contrast_makes_grey_pencil_solid() -> None:
    generator = np.random.default_rng(1)
    ink = np.abs(generator.normal(0.0, 0.01, (40, 40))).astype(np.float32)
    ink[10:30, 18:22] = 0.3
    normalised = normalise_contrast(ink, noise=0.01, threshold=0.05)
    assert normalised[20, 20] == 1.0
    assert float(normalised[:8].max()) < 0.2


# --- suppress_specks ------------------------------------------------------------------------------


def stroke_image() -> NDArray[np.float32]:
    """A 120 x 120 ink map holding a thick vertical stroke (the main ink)."""
    ink = np.zeros((120, 120), dtype=np.float32)
    ink[30:90, 55:62] = 1.0
    return ink


def test_suppress_specks_removes_a_dot_far_from_the_digit() -> None:
    ink = stroke_image()
    ink[100:104, 10:14] = 1.0
    cleaned = suppress_specks(ink, 0.1)
    assert cleaned[100:104, 10:14].max() == 0.0
    np.testing.assert_array_equal(cleaned[30:90, 55:62], 1.0)


def test_suppress_specks_keeps_a_large_separate_part() -> None:
    ink = stroke_image()
    ink[18:24, 56:95] = 1.0  # The bar of a 5, 6 pixels above the stroke.
    cleaned = suppress_specks(ink, 0.1)
    np.testing.assert_array_equal(cleaned[18:24, 56:95], 1.0)


def test_suppress_specks_keeps_a_small_piece_of_a_broken_stroke() -> None:
    ink = stroke_image()
    ink[93:98, 55:62] = 1.0  # The stroke continues after a 3-pixel gap.
    cleaned = suppress_specks(ink, 0.1)
    np.testing.assert_array_equal(cleaned[93:98, 55:62], 1.0)


def test_suppress_specks_refuses_an_image_of_specks_only() -> None:
    ink = np.zeros((300, 300), dtype=np.float32)
    ink[40, 40] = ink[200, 100] = ink[150, 250] = 1.0
    with pytest.raises(NoDigitFoundError):
        suppress_specks(ink, 0.1)


# --- crop_to_ink, match_stroke_width, scale_to_box, centre_by_mass --------------------------------


def test_crop_to_ink_cuts_to_the_ink() -> None:
    ink = np.zeros((50, 60), dtype=np.float32)
    ink[10:30, 20:25] = 0.5
    assert crop_to_ink(ink).shape == (20, 5)


def test_scale_to_box_makes_longest_side_twenty_keeping_aspect() -> None:
    assert scale_to_box(np.ones((100, 50), dtype=np.float32), 20).shape == (20, 10)
    assert scale_to_box(np.ones((7, 14), dtype=np.float32), 20).shape == (10, 20)


def test_centre_by_mass_puts_the_centre_of_mass_in_the_middle() -> None:
    digit = np.zeros((20, 12), dtype=np.float32)
    digit[:5, :] = 1.0  # All mass at the top, like a 7's bar.
    digit[:, 10:] = 1.0
    canvas = centre_by_mass(digit, 28)
    rows, columns = np.indices(canvas.shape)
    total = canvas.sum()
    assert abs((rows * canvas).sum() / total - 14) <= 0.5 or canvas[-1].any()
    assert abs((columns * canvas).sum() / total - 14) <= 0.5
    assert canvas.sum() == pytest.approx(digit.sum())


def drawn_stroke(width: int) -> NDArray[np.float32]:
    """An ink map of a 7, 300 pixels tall along its centre line, drawn with a pen ``width``
    pixels wide."""
    margin = width // 2 + 10
    canvas = Image.new("L", (240 + 2 * margin, 300 + 2 * margin), 0)
    ImageDraw.Draw(canvas).line(
        [(margin, margin), (margin + 240, margin), (margin + 60, margin + 300)],
        fill=255,
        width=width,
        joint="curve",
    )
    return crop_to_ink(np.asarray(canvas, dtype=np.float32) / 255)


def width_in_box(digit: NDArray[np.float32]) -> float:
    """The stroke width the digit would have once scaled into the 20-pixel box."""
    return estimate_stroke_width(digit) * 20 / max(digit.shape)


def test_match_stroke_width_thickens_a_hairline() -> None:
    hairline = preprocess.shrink_for_stroke_matching(drawn_stroke(2))
    assert width_in_box(hairline) < preprocess.MIN_STROKE_WIDTH
    assert 1.6 <= width_in_box(match_stroke_width(hairline)) <= 2.6


def test_match_stroke_width_thins_a_marker() -> None:
    marker = preprocess.shrink_for_stroke_matching(drawn_stroke(150))
    assert width_in_box(marker) > preprocess.MAX_STROKE_WIDTH + 0.5
    before = width_in_box(marker)
    after = width_in_box(match_stroke_width(marker))
    # Filters come in odd pixel sizes and the width is an estimate: near the limit is enough.
    assert after < before - 0.5
    assert after <= preprocess.MAX_STROKE_WIDTH + 0.5


def test_match_stroke_width_leaves_a_pen_stroke_alone() -> None:
    pen = preprocess.shrink_for_stroke_matching(drawn_stroke(30))
    np.testing.assert_array_equal(match_stroke_width(pen), pen)


# --- to_mnist_digit on whole images ---------------------------------------------------------------


def test_to_mnist_digit_returns_mnist_digits_unchanged(mnist_sample: Digits) -> None:
    images, _ = mnist_sample
    outputs = np.stack([to_mnist_digit(Image.fromarray(image)) for image in images])
    assert outputs.dtype == np.uint8
    np.testing.assert_array_equal(outputs, images)


def test_to_mnist_digit_restores_mnist_digits_moved_and_inverted_on_a_larger_canvas(
    mnist_sample: Digits,
) -> None:
    images, _ = mnist_sample
    generator = np.random.default_rng(0)
    outputs = []
    for image in images[:1000]:
        canvas = np.zeros((64, 64), dtype=np.uint8)
        row, column = generator.integers(0, 64 - 28, size=2)
        canvas[row : row + 28, column : column + 28] = image
        outputs.append(to_mnist_digit(Image.fromarray(255 - canvas)))
    changes = np.abs(np.stack(outputs).astype(int) - images[:1000].astype(int))
    differences = changes.mean(axis=(1, 2))
    assert float(differences.mean()) < 0.5
    assert float(np.mean(differences < 1.0)) > 0.99


def test_to_mnist_digit_is_idempotent(three: NDArray[np.uint8]) -> None:
    photo = on_canvas(enlarged_ink(three, 250), (500, 400), (120, 60), paper=0.8, pen=0.3)
    digit = to_mnist_digit(to_grey_image(photo))
    assert preprocess.is_mnist_format(digit)
    np.testing.assert_array_equal(to_mnist_digit(Image.fromarray(digit)), digit)


def test_to_mnist_digit_reads_light_on_dark_like_dark_on_light(seven: NDArray[np.uint8]) -> None:
    ink = enlarged_ink(seven, 300)
    dark_on_light = on_canvas(ink, (500, 400), (40, 30), paper=0.95, pen=0.1)
    light_on_dark = on_canvas(ink, (500, 400), (40, 30), paper=0.1, pen=0.95)
    first = to_mnist_digit(to_grey_image(dark_on_light))
    second = to_mnist_digit(to_grey_image(light_on_dark))
    assert mean_difference(first, second) < 1.0
    assert correlation(first, seven) > 0.9


def test_to_mnist_digit_reads_inverted_mnist_digit_unchanged(seven: NDArray[np.uint8]) -> None:
    assert mean_difference(to_mnist_digit(Image.fromarray(255 - seven)), seven) < 1.0


@pytest.mark.parametrize("stroke", [(0, 0, 0), (255, 255, 255), (200, 30, 30)])
@pytest.mark.parametrize("hidden", [(0, 0, 0), (255, 255, 255)], ids=["black", "white"])
def test_to_mnist_digit_reads_transparent_canvas_exports(
    seven: NDArray[np.uint8], stroke: tuple[int, int, int], hidden: tuple[int, int, int]
) -> None:
    alpha = np.clip(np.rint(enlarged_ink(seven, 200) * 255), 0, 255).astype(np.uint8)
    colours = np.where(alpha[..., np.newaxis] > 0, stroke, hidden).astype(np.uint8)
    export = Image.fromarray(np.dstack([colours, alpha]), mode="RGBA")
    reference = to_mnist_digit(Image.fromarray(alpha))
    assert mean_difference(to_mnist_digit(export), reference) < 2.0


def test_prepare_upload_applies_exif_rotation(seven: NDArray[np.uint8]) -> None:
    upright = to_grey_image(on_canvas(enlarged_ink(seven, 200), (300, 300), (40, 20)))
    exif = Image.Exif()
    exif[0x0112] = 8  # "Rotate 270 clockwise to display": stored turned by 90 degrees.
    stored = upright.transpose(Image.Transpose.ROTATE_270)
    rotated = prepare_upload(encoded(stored, "JPEG", exif=exif, quality=95), LIMITS)
    plain = prepare_upload(encoded(upright, "JPEG", quality=95), LIMITS)
    assert mean_difference(rotated, plain) < 3.0


def test_to_mnist_digit_reads_sixteen_bit_like_eight_bit(seven: NDArray[np.uint8]) -> None:
    grey = on_canvas(enlarged_ink(seven, 150), (200, 200), (30, 20))
    eight_bit = to_mnist_digit(to_grey_image(grey))
    sixteen = Image.fromarray(np.rint(grey * 65535).astype(np.uint16))
    decoded = decode_upload(encoded(sixteen), LIMITS)
    assert decoded.mode.startswith("I")
    assert mean_difference(to_mnist_digit(decoded), eight_bit) < 1.0


def test_to_mnist_digit_reads_palette_image(seven: NDArray[np.uint8]) -> None:
    grey = to_grey_image(on_canvas(enlarged_ink(seven, 150), (200, 200), (30, 20)))
    palette = grey.convert("RGB").quantize(colors=16)
    assert palette.mode == "P"
    assert mean_difference(to_mnist_digit(palette), to_mnist_digit(grey)) < 6.0


def test_to_mnist_digit_reads_cmyk_jpeg(seven: NDArray[np.uint8]) -> None:
    grey = to_grey_image(on_canvas(enlarged_ink(seven, 150), (200, 200), (30, 20)))
    cmyk = decode_upload(encoded(grey.convert("CMYK"), "JPEG", quality=95), LIMITS)
    assert cmyk.mode == "CMYK"
    assert mean_difference(to_mnist_digit(cmyk), to_mnist_digit(grey)) < 3.0


def test_to_mnist_digit_centres_an_off_centre_digit(three: NDArray[np.uint8]) -> None:
    ink = enlarged_ink(three, 120)
    centred = to_mnist_digit(to_grey_image(on_canvas(ink, (800, 600), (340, 240))))
    cornered = to_mnist_digit(to_grey_image(on_canvas(ink, (800, 600), (5, 450))))
    assert mean_difference(centred, cornered) < 3.0
    assert correlation(cornered, three) > 0.85


def test_to_mnist_digit_keeps_a_small_digit_in_a_corner_of_a_big_photo(
    three: NDArray[np.uint8],
) -> None:
    small = on_canvas(enlarged_ink(three, 60), (900, 900), (820, 15), paper=0.8, pen=0.2)
    assert correlation(to_mnist_digit(to_grey_image(small)), three) > 0.85


def test_to_mnist_digit_ignores_stray_dots(three: NDArray[np.uint8]) -> None:
    grey = on_canvas(enlarged_ink(three, 200), (600, 500), (300, 40))
    clean = to_mnist_digit(to_grey_image(grey))
    grey[400:412, 60:72] = 0.0
    grey[30:36, 40:46] = 0.0
    assert mean_difference(to_mnist_digit(to_grey_image(grey)), clean) < 0.5


def test_to_mnist_digit_reads_a_phone_photo_with_uneven_lighting(
    three: NDArray[np.uint8],
) -> None:
    generator = np.random.default_rng(3)
    rows, columns = np.mgrid[0:480, 0:640].astype(np.float32)
    paper = 0.45 + 0.25 * columns / 640 + 0.1 * rows / 480  # Grey paper, lit from one side.
    coverage = on_canvas(enlarged_ink(three, 260), (640, 480), (250, 110), paper=0.0, pen=1.0)
    grey = paper * (1 - 0.45 * coverage) + generator.normal(0, 0.01, paper.shape)
    photo = Image.fromarray(np.clip(grey * 255, 0, 255).astype(np.uint8)).convert("RGB")
    digit = prepare_upload(encoded(photo, "JPEG", quality=70), LIMITS)
    assert correlation(digit, three) > 0.85
    assert int(digit.max()) == 255


@pytest.mark.parametrize("pen_width", [2, 40, 120])
def test_to_mnist_digit_brings_hairline_and_marker_to_mnist_stroke_width(
    pen_width: int,
) -> None:
    canvas = Image.new("L", (900, 900), 255)
    ImageDraw.Draw(canvas).line(
        [(250, 150), (650, 150), (380, 750)], fill=0, width=pen_width, joint="curve"
    )
    digit = to_mnist_digit(canvas)
    assert int(digit.max()) >= 250
    assert 1.3 <= estimate_stroke_width(digit.astype(np.float32) / 255) <= 4.6


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (300, 200), 255),
        Image.new("L", (300, 200), 0),
        Image.new("RGB", (300, 200), (120, 130, 140)),
        Image.new("RGBA", (300, 200), (0, 0, 0, 0)),
        Image.new("L", (1, 1), 0),
        Image.new("L", (10_000, 10), 128),
        Image.fromarray(np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))),
    ],
    ids=["white", "black", "grey", "transparent", "one-pixel", "10000x10", "gradient"],
)
def test_to_mnist_digit_finds_no_digit_in_a_blank_image(image: Image.Image) -> None:
    with pytest.raises(NoDigitFoundError):
        to_mnist_digit(image)


def test_to_mnist_digit_finds_no_digit_in_faint_noise() -> None:
    generator = np.random.default_rng(5)
    noise = np.clip(generator.normal(200, 4, (400, 400)), 0, 255).astype(np.uint8)
    with pytest.raises(NoDigitFoundError):
        prepare_upload(encoded(Image.fromarray(noise), "JPEG", quality=80), LIMITS)


def test_to_mnist_digit_finds_no_digit_in_a_single_speck() -> None:
    canvas = np.full((600, 600), 255, dtype=np.uint8)
    canvas[300:303, 300:303] = 0
    with pytest.raises(NoDigitFoundError):
        to_mnist_digit(Image.fromarray(canvas))


def test_background_dataclass_broadcasts_a_constant_surface() -> None:
    background = Background(np.full((1, 1), 0.5, dtype=np.float32), 0.0)
    grey = np.full((4, 6), 0.5, dtype=np.float32)
    grey[1:3, 2:4] = 0.0
    ink, _ = extract_ink(grey, background)
    assert ink.shape == (4, 6)


@settings(max_examples=200, deadline=None)
@given(
    pixels=arrays(
        np.uint8,
        st.tuples(st.integers(1, 60), st.integers(1, 60), st.sampled_from([1, 2, 3, 4])),
    )
)
def test_to_mnist_digit_raises_only_no_digit_found_for_arbitrary_pixels(
    pixels: NDArray[np.uint8],
) -> None:
    channels = pixels.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode)
    try:
        digit = to_mnist_digit(image)
    except NoDigitFoundError:
        return
    assert digit.shape == (28, 28)
    assert digit.dtype == np.uint8


@settings(max_examples=100, deadline=None)
@given(values=arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_to_mnist_digit_raises_only_no_digit_found_for_arbitrary_floats(
    values: NDArray[np.float32],
) -> None:
    try:
        digit = to_mnist_digit(Image.fromarray(values))
    except NoDigitFoundError:
        return
    assert digit.shape == (28, 28)


# --- real photos and scans: what is not ink ------------------------------------------------------


def test_to_mnist_digit_reads_a_digit_inside_a_filled_grey_box(three: NDArray[np.uint8]) -> None:
    # A scanned form: the digit written in a grey box on a white page.
    grey = np.full((800, 600), 0.96, dtype=np.float32)
    grey[250:600, 120:470] = 0.6
    coverage = on_canvas(enlarged_ink(three, 240), (600, 800), (200, 300), paper=0.0, pen=1.0)
    grey = grey * (1 - coverage) + 0.05 * coverage
    digit = to_mnist_digit(to_grey_image(grey))
    assert correlation(digit, three) > 0.85


def test_to_mnist_digit_ignores_a_box_drawn_around_the_digit(three: NDArray[np.uint8]) -> None:
    page = Image.new("L", (600, 500), 240)
    ImageDraw.Draw(page).rectangle((100, 80, 480, 430), outline=60, width=4)
    grey = np.asarray(page, dtype=np.float32) / 255
    coverage = on_canvas(enlarged_ink(three, 220), (600, 500), (200, 140), paper=0.0, pen=1.0)
    grey = grey * (1 - coverage) + 0.05 * coverage
    digit = to_mnist_digit(to_grey_image(grey))
    assert correlation(digit, three) > 0.85


def test_to_mnist_digit_ignores_grid_lines_fainter_than_the_pen(
    three: NDArray[np.uint8],
) -> None:
    grey = np.full((400, 400), 0.85, dtype=np.float32)
    for line in range(20, 400, 60):
        grey[line : line + 2, :] = 0.72
        grey[:, line : line + 2] = 0.72
    coverage = on_canvas(enlarged_ink(three, 200), (400, 400), (120, 100), paper=0.0, pen=1.0)
    grey = grey * (1 - coverage) + 0.1 * coverage
    digit = to_mnist_digit(to_grey_image(grey))
    assert correlation(digit, three) > 0.85


def test_to_mnist_digit_ignores_a_paper_edge_along_the_border(three: NDArray[np.uint8]) -> None:
    grey = np.full((480, 400), 0.8, dtype=np.float32)
    grey[468:, :] = 0.45  # The table below the sheet's edge.
    coverage = on_canvas(enlarged_ink(three, 200), (400, 480), (110, 120), paper=0.0, pen=1.0)
    grey = grey * (1 - coverage) + 0.2 * coverage
    digit = to_mnist_digit(to_grey_image(grey))
    assert correlation(digit, three) > 0.85


def test_standardise_mode_reads_colour_strokes_without_luma_contrast(
    three: NDArray[np.uint8],
) -> None:
    # Yellow strokes on light blue: their lumas differ by a few grey levels only.
    coverage = on_canvas(enlarged_ink(three, 260), (500, 400), (150, 50), paper=0.0, pen=1.0)
    paper = np.array([153, 217, 234], dtype=np.float32)
    pen = np.array([255, 201, 14], dtype=np.float32)
    pixels = paper * (1 - coverage[..., np.newaxis]) + pen * coverage[..., np.newaxis]
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")
    assert standardise_mode(image).mode == "L"
    assert correlation(to_mnist_digit(image), three) > 0.85
