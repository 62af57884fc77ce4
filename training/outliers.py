"""Images that are not one handwritten digit, as the model will see them: outlier exposure.

The model learns to be unsure of them (its training target for each is the uniform
distribution), so that a low calibrated confidence means "this is not a digit" and not only
"this digit is hard". Each kind of image people send instead of a digit is drawn here in a
seeded random way (see :func:`render_outlier`) and passed through the service's own
preprocessing (:func:`app.imaging.preprocess.to_mnist_digit`), exactly as an upload would be:

* ``glyph``: a letter (Latin or Greek) or a symbol from a font, slanted, rotated, thickened or
  thinned, with pen-like edges; letters that people write exactly like a digit (O, I, l, S, Z,
  B, b, g, q, ...) are left out;
* ``word``: two to five glyphs in a row, as text;
* ``scribble``: a smooth random pen path with loops;
* ``crossing``: two to four strokes crossing near their middles (+, x, #, asterisks);
* ``blob``: filled shapes and textures, as in a photo of something else;
* ``several``: two to five training digits side by side, close or touching, so that the
  preprocessing keeps them together (a number is not one digit).

Rendering costs a few milliseconds an image, so the set is made in worker processes and cached
(:mod:`training.cache`).
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from training.cache import (
    CHUNKS_PER_WORKER,
    MAX_WORKERS,
    cached_arrays,
    run_in_processes,
    source_digest,
)
from training.datasets import DigitSet

if TYPE_CHECKING:
    from app.imaging.structure import DecodeLimits

KINDS: Final = ("glyph", "word", "scribble", "crossing", "blob", "several")
KIND_WEIGHTS: Final = (0.36, 0.1, 0.14, 0.1, 0.1, 0.2)
"""How often each kind is drawn."""

LATIN_LETTERS: Final = "ACDEFHJKLMNPRTUVWXYacdefhkmnprtuvwxy"
"""Latin letters whose handwritten forms are not also digits (no O, o, Q, I, i, l, j, S, s, Z,
z, B, b, G, g, q: people write those like 0, 1, 5, 2, 8, 6 or 9)."""

GREEK_LETTERS: Final = "αβγδεζηλμξπρσφψωΓΔΛΞΠΣΨΩ"
"""Greek letters as students photograph them (θ and Φ, too close to a slashed zero, left out)."""

SYMBOLS: Final = "+×÷=≠?#$%&@*<>{}~^√∞∫∑±€£¥§¶®©"
"""Symbols people draw or type; strokes that are also digits (|, /, (, ...) left out."""

GLYPHS: Final = LATIN_LETTERS + GREEK_LETTERS + SYMBOLS

FONT_DIRS: Final = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
"""Where TrueType fonts are looked for; Pillow's own font is always used as well."""

CANVAS_SIDES: Final = (64, 256)
"""Canvas sides of the renderings (the preprocessing shrinks large images anyway)."""

REDRAWN_FRACTION: Final = 0.5
REDRAWN_CANVAS_SIDES: Final = (64, 256)
"""Share of the outliers drawn again as digits are (photos, pens, canvases), on canvases of
these sides."""


CODE_MODULES: Final = (
    "training/outliers.py",
    "training/renderings.py",
    "app/imaging/decode.py",
    "app/imaging/pipeline.py",
    "app/imaging/preprocess.py",
    "app/imaging/components.py",
    "app/imaging/working_size.py",
)
"""Source files whose change invalidates the cache (of the outliers, and of what else is drawn
through :func:`as_sent`)."""


@lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """The TrueType fonts on this machine, sorted (Pillow's own font is used as well)."""
    found: list[str] = []
    for directory in FONT_DIRS:
        if directory.is_dir():
            found.extend(str(path) for path in directory.rglob("*.ttf"))
    return tuple(sorted(found))


@cache
def drawable_glyphs(font_file: str | None) -> str:
    """The glyphs of :data:`GLYPHS` that ``font_file`` (None: Pillow's own font) really draws:
    a glyph the font lacks comes out as its "missing" box, which looks like a 0."""
    font = load_font(font_file, 48)
    missing = glyph_pixels(font, "\U0010fffd")
    return "".join(glyph for glyph in GLYPHS if glyph_pixels(font, glyph) != missing)


def glyph_pixels(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, glyph: str) -> bytes:
    """How ``font`` draws ``glyph``, as the bytes of a small greyscale image."""
    canvas = Image.new("L", (96, 96), 0)
    ImageDraw.Draw(canvas).text((8, 8), glyph, fill=255, font=font)
    return canvas.tobytes()


def load_font(font_file: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """``font_file`` at ``size`` pixels, or Pillow's own font for None."""
    if font_file is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(font_file, size)


def _font_and_glyphs(rng: np.random.Generator) -> tuple[str | None, str]:
    """A random font (a system TrueType font or Pillow's own) and the glyphs it draws."""
    choices: list[str | None] = [*font_files(), None]
    while True:
        font_file = choices[int(rng.integers(len(choices)))]
        glyphs = drawable_glyphs(font_file)
        if len(glyphs) >= 10:
            return font_file, glyphs


def blank_canvas(rng: np.random.Generator) -> Image.Image:
    """A blank white canvas of a random size."""
    width = int(rng.integers(*CANVAS_SIDES))
    height = int(np.clip(width * rng.uniform(0.7, 1.4), CANVAS_SIDES[0], CANVAS_SIDES[1]))
    return Image.new("L", (width, height), 255)


def _pen(rng: np.random.Generator, side: int) -> int:
    """A pen width in pixels for a drawing of ``side`` pixels."""
    return max(1, round(side * rng.uniform(0.015, 0.08)))


def _draw_text(rng: np.random.Generator, length: int) -> Image.Image:
    """``length`` random glyphs that one random font draws, in a random size and weight,
    slanted and rotated a little."""
    font_file, glyphs = _font_and_glyphs(rng)
    if length > 1:
        glyphs = "".join(glyph for glyph in glyphs if glyph in LATIN_LETTERS + GREEK_LETTERS)
    text = "".join(rng.choice(list(glyphs), length))
    canvas = blank_canvas(rng)
    side = min(canvas.size)
    size = max(12, int(side * rng.uniform(0.35, 0.75) / max(1.0, 0.6 * len(text))))
    return type_on(rng, canvas, text, load_font(font_file, size), size)


def type_on(
    rng: np.random.Generator,
    canvas: Image.Image,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    size: int,
) -> Image.Image:
    """``text`` typed in black on the white ``canvas`` in ``font`` (of ``size`` pixels) at a
    random place, with a random stroke weight, then slanted and rotated a little."""
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = (canvas.width - (right - left)) * rng.uniform(0.2, 0.8) - left
    y = (canvas.height - (bottom - top)) * rng.uniform(0.2, 0.8) - top
    weight = int(rng.integers(0, max(1, size // 12) + 1))
    draw.text((x, y), text, fill=0, font=font, stroke_width=weight, stroke_fill=0)
    shear = float(rng.uniform(-0.3, 0.3))
    canvas = canvas.transform(
        canvas.size,
        Image.Transform.AFFINE,
        (1.0, shear, -shear * canvas.height / 2, 0.0, 1.0, 0.0),
        resample=Image.Resampling.BILINEAR,
        fillcolor=255,
    )
    return canvas.rotate(float(rng.uniform(-15, 15)), Image.Resampling.BILINEAR, fillcolor=255)


def _smooth_path(rng: np.random.Generator, points: int, size: tuple[int, int]) -> list[float]:
    """A smooth pen path through ``points`` random points (Catmull-Rom), flattened x, y."""
    width, height = size
    margin = 0.15
    control = np.column_stack(
        [
            rng.uniform(margin * width, (1 - margin) * width, points),
            rng.uniform(margin * height, (1 - margin) * height, points),
        ]
    )
    padded = np.vstack([control[:1], control, control[-1:]])
    steps = np.linspace(0.0, 1.0, 12, endpoint=False)[:, None]
    path: list[NDArray[np.float64]] = []
    for index in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[index - 1 : index + 3]
        path.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * steps
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * steps**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * steps**3
            )
        )
    path.append(control[-1:])
    return [float(value) for value in np.vstack(path).ravel()]


def _scribble(rng: np.random.Generator) -> Image.Image:
    """A smooth random pen path through five to twelve points."""
    canvas = blank_canvas(rng)
    ImageDraw.Draw(canvas).line(
        _smooth_path(rng, int(rng.integers(5, 13)), canvas.size),
        fill=0,
        width=_pen(rng, min(canvas.size)),
        joint="curve",
    )
    return canvas


def _crossing(rng: np.random.Generator) -> Image.Image:
    """Two to four straight strokes crossing near the middle at well-separated angles."""
    canvas = blank_canvas(rng)
    draw = ImageDraw.Draw(canvas)
    centre = np.array(canvas.size, dtype=np.float64) * rng.uniform(0.4, 0.6, 2)
    length = min(canvas.size) * rng.uniform(0.25, 0.45)
    strokes = int(rng.integers(2, 5))
    first = rng.uniform(0, np.pi)
    pen = _pen(rng, min(canvas.size))
    for index in range(strokes):
        angle = first + index * np.pi / strokes + rng.normal(0, 0.1)
        offset = rng.normal(0, 0.15, 2) * length
        direction = np.array([np.cos(angle), np.sin(angle)]) * length
        start, end = centre + offset - direction, centre + offset + direction
        draw.line([*start.tolist(), *end.tolist()], fill=0, width=pen)
    return canvas


def _blob(rng: np.random.Generator) -> Image.Image:
    """Filled shapes or a smooth texture, as in a photo of something other than a digit."""
    canvas = blank_canvas(rng)
    if rng.random() < 0.5:
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(1, 4))):
            # Never much longer than wide: scaled to the digit box, a bar is a bold 1.
            width = canvas.width * rng.uniform(0.2, 0.7)
            height = float(np.clip(width * rng.uniform(0.6, 1.6), 0.2, 0.8 * canvas.height))
            width = max(width, height / 1.6)
            x = rng.uniform(0.05, 0.95) * (canvas.width - width)
            y = rng.uniform(0.05, 0.95) * (canvas.height - height)
            shape = (x, y, x + width, y + height)
            fill = int(rng.integers(0, 120))
            if rng.random() < 0.5:
                draw.ellipse(shape, fill=fill)
            else:
                draw.rectangle(shape, fill=fill)
        return canvas
    noise = rng.random((8, 8)).astype(np.float32)
    field = np.asarray(
        Image.fromarray(noise).resize(canvas.size, Image.Resampling.BICUBIC), dtype=np.float32
    )
    level = np.quantile(field, rng.uniform(0.6, 0.9))
    return Image.fromarray(np.where(field > level, 30, 255).astype(np.uint8))


def _several(rng: np.random.Generator, digits: NDArray[np.uint8]) -> Image.Image:
    """Two to five digits side by side, touching or close enough to stay together."""
    count = int(rng.integers(2, min(5, len(digits)) + 1))
    height = int(rng.integers(40, 120))
    pieces: list[NDArray[np.uint8]] = []
    for digit in digits[:count]:
        rows = np.flatnonzero(digit.any(axis=1))
        columns = np.flatnonzero(digit.any(axis=0))
        crop = 255 - digit[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        scale = height * rng.uniform(0.85, 1.15) / crop.shape[0]
        size = (max(2, round(crop.shape[1] * scale)), max(2, round(crop.shape[0] * scale)))
        pieces.append(np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR)))
    gap = float(rng.uniform(-0.15, 0.3))
    widths = [piece.shape[1] for piece in pieces]
    step = [round(width * (1 + gap)) for width in widths]
    total_width = sum(step[:-1]) + widths[-1] + 16
    total_height = max(piece.shape[0] for piece in pieces) + 16
    canvas = np.full((total_height, total_width), 255, dtype=np.uint8)
    x = 8
    for piece, advance in zip(pieces, step, strict=True):
        y = int(rng.integers(8, total_height - piece.shape[0] - 8 + 1))
        region = canvas[y : y + piece.shape[0], x : x + piece.shape[1]]
        np.minimum(region, piece, out=region)
        x += max(1, advance)
    return Image.fromarray(canvas)


def render_outlier(rng: np.random.Generator, digits: NDArray[np.uint8]) -> Image.Image:
    """One random not-a-digit image (dark ink on white, mode ``L``); ``digits`` are a few
    training digits for the ``several`` kind."""
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
    if kind == "several" and len(digits) < 2:
        kind = "glyph"
    if kind == "glyph":
        image = _draw_text(rng, 1)
    elif kind == "word":
        image = _draw_text(rng, int(rng.integers(2, 6)))
    elif kind == "scribble":
        image = _scribble(rng)
    elif kind == "crossing":
        image = _crossing(rng)
    elif kind == "blob":
        image = _blob(rng)
    else:
        image = _several(rng, digits)
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5))))
    if rng.random() < 0.3:
        image = Image.eval(image, lambda value: 255 - value)
    return image


def render_outliers(digits: DigitSet, count: int, seed: int) -> NDArray[np.uint8]:
    """``count`` not-a-digit images through the service's preprocessing, shape (n, 28, 28);
    ``digits`` supply the ``several`` kind. Renderings in which the preprocessing finds
    nothing are left out, so there may be a few fewer than ``count``. Cached."""
    if count <= 0:
        return np.zeros((0, 28, 28), dtype=np.uint8)
    key = source_digest(
        f"outliers:{count}:{seed}:{KINDS}:{KIND_WEIGHTS}:{GLYPHS}:{font_files()}",
        [digits.images],
        CODE_MODULES,
    )

    def build() -> dict[str, NDArray[np.generic]]:
        chunks = np.array_split(np.arange(count), MAX_WORKERS * CHUNKS_PER_WORKER)
        tasks = [
            (
                [digits.images[_digits_for(seed, index, len(digits))] for index in chunk.tolist()],
                chunk.tolist(),
                seed,
            )
            for chunk in chunks
            if len(chunk)
        ]
        return {"images": np.concatenate(run_in_processes(_render_chunk, tasks))}

    return cached_arrays(f"outliers-{key}", build)["images"].astype(np.uint8)


def _digits_for(seed: int, index: int, available: int) -> NDArray[np.intp]:
    """Which digits outlier ``index`` may put side by side (up to five, never the same one
    twice)."""
    rng = np.random.default_rng([seed, 7907, index])
    return rng.choice(available, size=min(5, available), replace=False)


def _render_chunk(task: tuple[list[NDArray[np.uint8]], list[int], int]) -> NDArray[np.uint8]:
    """Render and preprocess the outliers numbered ``indices`` (in a worker process), half of
    them drawn again (:func:`as_sent`)."""
    from app.errors import InputError
    from app.imaging.structure import DecodeLimits

    digits, indices, seed = task
    limits = DecodeLimits(max_pixels=40_000_000)
    prepared: list[NDArray[np.uint8]] = []
    for chosen, index in zip(digits, indices, strict=True):
        # Each outlier depends on the seed and its own number only.
        rng = np.random.default_rng([seed, 7919, index])
        try:
            prepared.append(as_sent(render_outlier(rng, chosen), rng, limits))
        except InputError:
            continue
    return np.stack(prepared) if prepared else np.zeros((0, 28, 28), dtype=np.uint8)


def as_sent(
    image: Image.Image, rng: np.random.Generator, limits: DecodeLimits
) -> NDArray[np.uint8]:
    """``image`` as the model sees it when people send it: through the service's preprocessing,
    and with chance :data:`REDRAWN_FRACTION` drawn again the way :mod:`training.renderings` draws
    digits (redrawn with a pen, photographed, exported from a transparent canvas, scanned) from
    that 28 x 28 form and preprocessed once more: a letter people send is as often a phone photo
    of a thin pen line as a clean drawing. Raises :class:`~app.errors.InputError` when the
    preprocessing finds no ink."""
    from app.imaging.pipeline import prepare_upload
    from app.imaging.preprocess import to_mnist_digit
    from training.renderings import encode, render

    digit = to_mnist_digit(image)
    if rng.random() < REDRAWN_FRACTION:
        drawn, suffix, _ = render(digit, rng, REDRAWN_CANVAS_SIDES)
        if suffix == "jpg":
            return prepare_upload(encode(drawn, suffix, rng)[0], limits)
        return to_mnist_digit(drawn)
    return digit
