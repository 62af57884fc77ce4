"""Digits drawn the way people really send them: photos, scans and canvas exports of one MNIST
digit, in a seeded random way (see :func:`render`).

Two users: :mod:`bench.user_corpus` renders test digits into the user-like corpus that measures
the service, and :mod:`training.realistic` renders training digits (never test digits) that are
passed through the service's own preprocessing and trained on, so that the model learns what it
will really see.

* canvas: 200 to 900 pixels a side (not always square), the digit 12 % to 80 % of the shorter
  side, anywhere on it (off-centre, in a corner);
* stroke: the digit's own anti-aliased shape enlarged ("scan"), made thinner or thicker by
  erosion or dilation ("morph"), or redrawn along its skeleton with a round pen from a 1-pixel
  hairline to a fat marker ("pen"), with a slight rotation;
* medium: a clean canvas export (PNG; dark ink on light or, in dark mode, light on dark), a
  transparent canvas export (RGBA PNG, black, white or coloured strokes), a greyscale scan, or a
  phone photo of paper or a board (coloured ink or chalk, uneven lighting, blur, sensor noise);
* sometimes a stray dot away from the digit.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from app.imaging.components import find_runs

MIN_REDRAW_OVERLAP = 0.65
"""How closely a digit's skeleton, redrawn at its own stroke width, must cover the digit for
the digit to be redrawn with a pen (intersection over union)."""

FloatArray = NDArray[np.float32]
Colour = tuple[float, float, float]


# ---------------------------------------------------------------------------------------------
# Strokes: a coverage map in [0, 1] of the digit at its final size.
# ---------------------------------------------------------------------------------------------


def digit_crop(digit: NDArray[np.uint8]) -> FloatArray:
    """The digit's ink (0..1) cut to its bounding box."""
    rows = np.flatnonzero(digit.any(axis=1))
    columns = np.flatnonzero(digit.any(axis=0))
    crop = digit[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    return crop.astype(np.float32) / 255.0


def enlarge(crop: FloatArray, height: int) -> FloatArray:
    """Enlarge the cropped digit smoothly (bicubic) so that it is ``height`` pixels tall,
    keeping its aspect; the result has a blank margin so that no stroke is cut at its edge."""
    scale = height / crop.shape[0]
    padded = np.pad(crop, 2)
    size = (max(1, round(padded.shape[1] * scale)), max(1, round(padded.shape[0] * scale)))
    enlarged = Image.fromarray(padded).resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(enlarged, dtype=np.float32), 0.0, 1.0)


def sharpen_edges(coverage: FloatArray, softness: float) -> FloatArray:
    """Turn a blurry enlargement into ink with crisp edges (``softness`` 0 = hard, 0.5 = as is)."""
    low, high = 0.5 - softness, 0.5 + softness
    sharpened: FloatArray = np.clip((coverage - low) / (high - low), 0.0, 1.0)
    return sharpened


def edge_softness(crop: FloatArray, height: int, edge_pixels: float) -> float:
    """The :func:`sharpen_edges` softness that makes edges about ``edge_pixels`` wide."""
    scale = height / crop.shape[0]
    return float(np.clip(edge_pixels / (2 * scale), 0.02, 0.45))


def scan_stroke(crop: FloatArray, height: int, rng: np.random.Generator) -> FloatArray:
    """The digit's own shape, enlarged, with pen-like edges one to three pixels wide."""
    softness = edge_softness(crop, height, float(rng.uniform(1.0, 3.0)))
    return sharpen_edges(enlarge(crop, height), softness)


def stroke_width(mask: NDArray[np.bool_]) -> float:
    """Typical stroke width of a binary shape in pixels: twice its area over its outline."""
    padded = np.pad(mask, 1)
    outline = (padded[1:, :] != padded[:-1, :]).sum() + (padded[:, 1:] != padded[:, :-1]).sum()
    return float(2 * mask.sum() / max(1, outline))


def region_count(mask: NDArray[np.bool_]) -> int:
    """Number of 8-connected regions of a binary shape."""
    return find_runs(mask).region_count


def morph_stroke(
    crop: FloatArray, height: int, rng: np.random.Generator, *, thicker: bool
) -> tuple[FloatArray, str]:
    """The enlarged digit dilated (thicker strokes, by 30 % to 90 % of their width) or eroded
    (thinner, by 30 % to 55 %, less if that would break a stroke)."""
    coverage = sharpen_edges(enlarge(crop, height), edge_softness(crop, height, 2.0))
    shape = coverage >= 0.5
    width = stroke_width(shape)
    fraction = float(rng.uniform(0.3, 0.9) if thicker else rng.uniform(0.3, 0.55))
    pieces = region_count(shape)
    for _ in range(4):
        size = 2 * round(width * fraction / 2) + 1
        if size < 3:
            break
        operation = ImageFilter.MaxFilter(size) if thicker else ImageFilter.MinFilter(size)
        padded = np.pad(coverage, size)
        filtered = np.asarray(Image.fromarray(padded).filter(operation), dtype=np.float32)
        if thicker or region_count(filtered >= 0.5) <= pieces:
            return filtered, f"morph-{'thick' if thicker else 'thin'}{size}"
        fraction /= 2
    return coverage, "morph-none"


def skeleton(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """One-pixel-wide centre lines of a binary shape (Zhang and Suen's two-pass thinning)."""
    image = np.pad(mask, 1).astype(np.uint8)
    while True:
        changed = False
        for second_pass in (False, True):
            north, south = image[:-2, 1:-1], image[2:, 1:-1]
            east, west = image[1:-1, 2:], image[1:-1, :-2]
            north_east, south_east = image[:-2, 2:], image[2:, 2:]
            south_west, north_west = image[2:, :-2], image[:-2, :-2]
            ring = [north, north_east, east, south_east, south, south_west, west, north_west]
            neighbours = sum(part.astype(np.int32) for part in ring)
            transitions = sum(
                ((ring[i] == 0) & (ring[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8)
            )
            if second_pass:
                side = (north * east * west == 0) & (north * south * west == 0)
            else:
                side = (north * east * south == 0) & (east * south * west == 0)
            centre = image[1:-1, 1:-1]
            removable = (
                (centre == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & side
            )
            if removable.any():
                centre[removable] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1].astype(bool)


def pen_stroke(crop: FloatArray, height: int, pen_width: float) -> FloatArray | None:
    """The digit redrawn along its skeleton with a round pen ``pen_width`` pixels wide.

    ``None`` when the skeleton does not represent the digit (a blotted digit whose loops are
    filled thins to a different shape): redrawn with the digit's own stroke width, it must
    cover the digit with an intersection over union of at least :data:`MIN_REDRAW_OVERLAP`.
    """
    detail = 4  # Thin at 4x MNIST resolution so the centre line follows the curves.
    fine = enlarge(crop, crop.shape[0] * detail)
    shape = fine >= 0.5
    centre_line = skeleton(shape)
    own_width = 2 * round(stroke_width(shape) / 2) + 1
    redrawn = Image.fromarray(centre_line.astype(np.uint8) * 255).filter(
        ImageFilter.MaxFilter(max(3, own_width))
    )
    redrawn_shape = np.asarray(redrawn) > 0
    overlap = (redrawn_shape & shape).sum() / max(1, (redrawn_shape | shape).sum())
    if overlap < MIN_REDRAW_OVERLAP:
        return None
    scale = height / (crop.shape[0] * detail)
    supersample = 4 if pen_width < 6 else 1
    margin = pen_width / 2 + 2
    width = round(fine.shape[1] * scale + 2 * margin)
    full_height = round(fine.shape[0] * scale + 2 * margin)
    canvas = Image.new("L", (width * supersample, full_height * supersample), 0)
    draw = ImageDraw.Draw(canvas)
    radius = pen_width * supersample / 2

    def place(row: int, column: int) -> tuple[float, float]:
        return (
            ((column + 0.5) * scale + margin) * supersample,
            ((row + 0.5) * scale + margin) * supersample,
        )

    rows, columns = np.nonzero(centre_line)
    points = set(zip(rows.tolist(), columns.tolist(), strict=True))
    for row, column in points:
        x, y = place(row, column)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
        for step_row, step_column in ((0, 1), (1, 0), (1, 1), (1, -1)):
            if (row + step_row, column + step_column) in points:
                draw.line(
                    [(x, y), place(row + step_row, column + step_column)],
                    fill=255,
                    width=max(1, round(pen_width * supersample)),
                )
    if supersample > 1:
        canvas = canvas.resize((width, full_height), Image.Resampling.BOX)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def rotate(coverage: FloatArray, degrees: float) -> FloatArray:
    """Rotate the coverage map about its centre, growing it to hold the corners."""
    if abs(degrees) < 0.5:
        return coverage
    turned = Image.fromarray(coverage).rotate(
        degrees, resample=Image.Resampling.BICUBIC, expand=True
    )
    return np.clip(np.asarray(turned, dtype=np.float32), 0.0, 1.0)


def trim(coverage: FloatArray) -> FloatArray:
    """Cut empty rows and columns from the coverage map (a map without ink, which thinning a
    fine shape can leave, becomes one empty pixel: drawn, it shows nothing)."""
    rows = np.flatnonzero((coverage > 0.01).any(axis=1))
    columns = np.flatnonzero((coverage > 0.01).any(axis=0))
    if rows.size == 0:
        return np.zeros((1, 1), dtype=np.float32)
    return coverage[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def render_stroke(
    digit: NDArray[np.uint8], height: int, rng: np.random.Generator
) -> tuple[FloatArray, str]:
    """A coverage map of ``digit`` about ``height`` pixels tall in one of the stroke styles."""
    crop = digit_crop(digit)
    style = rng.choice(["scan", "morph", "pen"], p=[0.4, 0.25, 0.35])
    if style == "scan":
        coverage, name = scan_stroke(crop, height, rng), "scan"
    elif style == "morph":
        coverage, name = morph_stroke(crop, height, rng, thicker=bool(rng.random() < 0.5))
    else:
        kind = rng.choice(["hairline", "pen", "marker"], p=[0.3, 0.45, 0.25])
        if kind == "hairline":
            pen_width = float(rng.uniform(1.0, 3.0))
        elif kind == "pen":
            pen_width = float(height * rng.uniform(0.05, 0.12))
        else:
            pen_width = float(height * rng.uniform(0.12, 0.17))
        redrawn = pen_stroke(crop, height, max(pen_width, 1.0))
        if redrawn is None:
            coverage, name = scan_stroke(crop, height, rng), "scan"
        else:
            coverage, name = redrawn, f"pen-{kind}"
    angle = float(rng.normal(0.0, 5.0))
    return trim(rotate(coverage, angle)), name


# ---------------------------------------------------------------------------------------------
# Media: where the stroke ends up.
# ---------------------------------------------------------------------------------------------


def luma(colour: Colour) -> float:
    """ITU-R 601 luma of an RGB colour in 0..255."""
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def random_colour(rng: np.random.Generator, low: float, high: float) -> Colour:
    """A random RGB colour whose luma lies in [low, high]."""
    while True:
        colour = (
            float(rng.uniform(0, 255)),
            float(rng.uniform(0, 255)),
            float(rng.uniform(0, 255)),
        )
        if low <= luma(colour) <= high:
            return colour


def place_on_canvas(
    coverage: FloatArray, canvas_size: tuple[int, int], rng: np.random.Generator
) -> tuple[FloatArray, tuple[int, int, int, int]]:
    """Put the coverage map somewhere on an empty canvas (width, height); return the canvas map
    and the digit's box (top, left, bottom, right)."""
    width, height = canvas_size
    digit_height, digit_width = coverage.shape
    margin = 2
    top = int(rng.integers(margin, max(margin + 1, height - digit_height - margin)))
    left = int(rng.integers(margin, max(margin + 1, width - digit_width - margin)))
    canvas = np.zeros((height, width), dtype=np.float32)
    bottom, right = min(height, top + digit_height), min(width, left + digit_width)
    canvas[top:bottom, left:right] = coverage[: bottom - top, : right - left]
    return canvas, (top, left, bottom, right)


def add_stray_dot(
    canvas: FloatArray, box: tuple[int, int, int, int], rng: np.random.Generator
) -> bool:
    """Dab a small dot well away from the digit's box; False when there is no room for one."""
    height, width = canvas.shape
    top, left, bottom, right = box
    digit_height = bottom - top
    radius = max(1.5, digit_height * float(rng.uniform(0.02, 0.05)))
    keep_away = 0.35 * digit_height + radius
    for _ in range(50):
        y = float(rng.uniform(radius, height - radius))
        x = float(rng.uniform(radius, width - radius))
        gap_y = max(top - y, y - bottom, 0.0)
        gap_x = max(left - x, x - right, 0.0)
        if max(gap_x, gap_y) >= keep_away:
            rows, columns = np.ogrid[0:height, 0:width]
            distance = np.sqrt((rows - y) ** 2 + (columns - x) ** 2)
            dot = np.clip(radius + 0.5 - distance, 0.0, 1.0).astype(np.float32)
            np.maximum(canvas, dot, out=canvas)
            return True
    return False


def paint(canvas: FloatArray, paper: Colour, ink: Colour) -> FloatArray:
    """RGB image (float, 0..255): ink laid on paper in proportion to coverage."""
    paper_rgb = np.array(paper, dtype=np.float32)
    ink_rgb = np.array(ink, dtype=np.float32)
    coverage = canvas[..., np.newaxis]
    painted: FloatArray = paper_rgb * (1.0 - coverage) + ink_rgb * coverage
    return painted


def uneven_lighting(shape: tuple[int, int], rng: np.random.Generator) -> FloatArray:
    """A smooth illumination field around 1: a gradient across the frame and a vignette."""
    height, width = shape
    rows = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, np.newaxis]
    columns = np.linspace(-1.0, 1.0, width, dtype=np.float32)[np.newaxis, :]
    angle = float(rng.uniform(0, 2 * np.pi))
    strength = float(rng.uniform(0.05, 0.25))
    gradient = strength * (np.cos(angle) * columns + np.sin(angle) * rows)
    vignette = float(rng.uniform(0.0, 0.2)) * (rows**2 + columns**2) / 2
    field: FloatArray = (1.0 + gradient - vignette).astype(np.float32)
    return field


def to_image(pixels: FloatArray, grey: bool) -> Image.Image:
    """Float RGB pixels (0..255) as an 8-bit RGB or greyscale image."""
    rgb = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")
    return rgb.convert("L") if grey else rgb


def photo(
    canvas: FloatArray, rng: np.random.Generator, digit_height: int
) -> tuple[Image.Image, str]:
    """Pen on paper or chalk on a board, photographed: lighting, blur, noise."""
    if rng.random() < 0.75:
        paper = random_colour(rng, 170, 250)
        ink = random_colour(rng, 0, max(0.0, luma(paper) - 110))
        scene = "paper"
    else:
        paper = random_colour(rng, 15, 80)
        ink = random_colour(rng, min(255.0, luma(paper) + 110), 255)
        scene = "board"
    # A real pen never covers fully: a little of the paper shows through.
    pixels = paint(canvas * float(rng.uniform(0.8, 1.0)), paper, ink)
    pixels *= uneven_lighting(canvas.shape, rng)[..., np.newaxis]
    image = to_image(pixels, grey=False)
    blur = float(rng.uniform(0.0, 0.01)) * digit_height
    if blur > 0.3:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    noise_level = float(rng.uniform(1.0, 6.0))
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(
        0.0, noise_level, size=(*canvas.shape, 3)
    ).astype(np.float32)
    return to_image(noisy, grey=False), f"photo-{scene}-blur{blur:.1f}-noise{noise_level:.0f}"


def clean_canvas(canvas: FloatArray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A drawing app's export: flat background, light or dark mode, sometimes coloured ink."""
    if rng.random() < 0.65:
        paper: Colour = (255.0, 255.0, 255.0)
        ink = (0.0, 0.0, 0.0) if rng.random() < 0.6 else random_colour(rng, 0, 120)
        mode = "light"
    else:
        paper = (0.0, 0.0, 0.0) if rng.random() < 0.6 else random_colour(rng, 0, 60)
        ink = (255.0, 255.0, 255.0) if rng.random() < 0.6 else random_colour(rng, 150, 255)
        mode = "dark"
    grey = bool(rng.random() < 0.3)
    return to_image(paint(canvas, paper, ink), grey=grey), f"canvas-{mode}"


def transparent_canvas(canvas: FloatArray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A canvas export with a transparent background: strokes carry the alpha."""
    kind = rng.choice(["black", "white", "colour"])
    if kind == "black":
        ink: Colour = (0.0, 0.0, 0.0)
    elif kind == "white":
        ink = (255.0, 255.0, 255.0)
    else:
        ink = random_colour(rng, 0, 255)
    hidden: Colour = (0.0, 0.0, 0.0) if rng.random() < 0.5 else (255.0, 255.0, 255.0)
    opaque = canvas > 0
    rgb = np.where(opaque[..., np.newaxis], np.array(ink), np.array(hidden)).astype(np.float32)
    alpha = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
    rgba = np.dstack([np.clip(np.rint(rgb), 0, 255).astype(np.uint8), alpha])
    return Image.fromarray(rgba, mode="RGBA"), f"transparent-{kind}"


def scan(canvas: FloatArray, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A greyscale scan: near-white paper, dark ink, light noise."""
    paper_level = float(rng.uniform(200, 250))
    ink_level = float(rng.uniform(0, paper_level - 120))
    pixels = paint(canvas, (paper_level,) * 3, (ink_level,) * 3)
    pixels += rng.normal(0.0, float(rng.uniform(0.5, 3.0)), size=pixels.shape[:2])[
        ..., np.newaxis
    ].astype(np.float32)
    return to_image(pixels, grey=True), "scan"


DEFAULT_CANVAS_SIDES = (200, 900)
"""Smallest and largest canvas side of :func:`render`, in pixels."""


def render(
    digit: NDArray[np.uint8],
    rng: np.random.Generator,
    canvas_sides: tuple[int, int] = DEFAULT_CANVAS_SIDES,
) -> tuple[Image.Image, str, str]:
    """One user-like image of ``digit``: the image, its file suffix and a description.

    Each canvas side is drawn from ``canvas_sides`` (smallest, largest), inclusive.
    """
    low, high = canvas_sides
    canvas_size = (int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1)))
    if rng.random() < 0.4:
        canvas_size = (canvas_size[0], canvas_size[0])
    shorter = min(canvas_size)
    digit_height = max(40, round(shorter * float(rng.uniform(0.12, 0.8))))
    coverage, stroke_name = render_stroke(digit, digit_height, rng)
    scale = min(
        1.0, (canvas_size[1] - 4) / coverage.shape[0], (canvas_size[0] - 4) / coverage.shape[1]
    )
    if scale < 1.0:
        size = (max(1, int(coverage.shape[1] * scale)), max(1, int(coverage.shape[0] * scale)))
        coverage = np.asarray(
            Image.fromarray(coverage).resize(size, Image.Resampling.BOX), dtype=np.float32
        )
    canvas, box = place_on_canvas(coverage, canvas_size, rng)
    dotted = bool(rng.random() < 0.25) and add_stray_dot(canvas, box, rng)

    medium = rng.choice(["photo", "canvas", "transparent", "scan"], p=[0.4, 0.25, 0.2, 0.15])
    if medium == "photo":
        image, medium_name = photo(canvas, rng, box[2] - box[0])
        suffix = "jpg"
    elif medium == "canvas":
        image, medium_name = clean_canvas(canvas, rng)
        suffix = "png" if rng.random() < 0.7 else "jpg"
    elif medium == "transparent":
        image, medium_name = transparent_canvas(canvas, rng)
        suffix = "png"
    else:
        image, medium_name = scan(canvas, rng)
        suffix = "png" if rng.random() < 0.5 else "jpg"
    description = (
        f"{canvas_size[0]}x{canvas_size[1]} digit{box[2] - box[0]}px {stroke_name} "
        f"{medium_name}{' dot' if dotted else ''}"
    )
    return image, suffix, description


def encode(image: Image.Image, suffix: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """The image as the file a user would send: JPEG at a random quality, or PNG; the bytes and
    a quality note for the log."""
    buffer = io.BytesIO()
    if suffix == "jpg":
        quality = int(rng.integers(40, 96))
        image.save(buffer, format="JPEG", quality=quality)
        return buffer.getvalue(), f" q{quality}"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), ""
