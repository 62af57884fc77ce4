"""Hand-drawn digits, drawn here with Pillow the way people draw them (thick marker or thin pen,
dark on light or light on dark, off-centre, a stray dot, a phone photo, a transparent canvas),
go through the real upload pipeline and are classified correctly by the committed Keras model.

The drawings were made once, as a person would draw each digit, and are not adjusted to the
preprocessing: a failure here is a preprocessing (or model) problem to fix, not a drawing to
change.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from app.imaging.pipeline import prepare_upload
from app.imaging.structure import DecodeLimits
from app.model_contract import to_model_input

MODEL_FILE = Path(__file__).resolve().parents[2] / "models" / "mnist_dense.keras"
MAX_PIXELS = 40_000_000
LIMITS = DecodeLimits(max_pixels=MAX_PIXELS)

Point = tuple[float, float]
Stroke = list[Point]


def arc(centre: Point, radii: Point, start_degrees: float, end_degrees: float) -> Stroke:
    """Points along an elliptical arc (angles clockwise from 3 o'clock, y pointing down)."""
    steps = max(8, int(abs(end_degrees - start_degrees) / 6))
    return [
        (
            centre[0] + radii[0] * math.cos(math.radians(angle)),
            centre[1] + radii[1] * math.sin(math.radians(angle)),
        )
        for angle in np.linspace(start_degrees, end_degrees, steps)
    ]


# Each digit as pen strokes in a unit box: x from 0 (left) to 1, y from 0 (top) to 1.
DIGIT_STROKES: dict[int, list[Stroke]] = {
    0: [arc((0.5, 0.5), (0.36, 0.48), 0, 360)],
    1: [[(0.42, 0.18), (0.6, 0.02), (0.52, 0.98)]],
    2: [arc((0.5, 0.3), (0.36, 0.28), 190, 380) + [(0.12, 0.96), (0.9, 0.96)]],
    3: [arc((0.48, 0.27), (0.34, 0.25), 200, 450), arc((0.48, 0.72), (0.4, 0.26), 270, 520)],
    4: [[(0.55, 0.02), (0.08, 0.66), (0.92, 0.66)], [(0.7, 0.3), (0.7, 0.98)]],
    5: [
        [(0.88, 0.03), (0.25, 0.03), (0.2, 0.45)],
        [(0.2, 0.45)] + arc((0.5, 0.68), (0.38, 0.3), 230, 500),
    ],
    7: [[(0.08, 0.04), (0.92, 0.04), (0.4, 0.98)]],
}


@dataclass(frozen=True)
class Drawing:
    """How one test image is drawn: canvas, where the digit goes, pen and colours."""

    name: str
    canvas: tuple[int, int]
    box: tuple[int, int, int]
    """Left, top and height of the digit (its width is 0.7 of its height)."""
    pen_width: int
    paper: tuple[int, ...]
    ink: tuple[int, ...]
    mode: str = "RGB"
    stray_dot: Point | None = None
    photo: bool = False
    image_format: str = "PNG"


DRAWINGS = [
    Drawing("thick-marker-centred", (600, 600), (190, 90, 420), 38, (255, 255, 255), (0, 0, 0)),
    Drawing("thin-pen-corner", (900, 900), (40, 30, 300), 2, (250, 250, 245), (20, 20, 90)),
    Drawing(
        "chalk-on-board-off-centre",
        (480, 360),
        (300, 150, 190),
        9,
        (30, 60, 40),
        (235, 235, 225),
        image_format="JPEG",
    ),
    Drawing(
        "transparent-canvas-stray-dot",
        (400, 400),
        (60, 40, 280),
        14,
        (0, 0, 0, 0),
        (0, 0, 0, 255),
        mode="RGBA",
        stray_dot=(350, 360),
    ),
    Drawing(
        "white-strokes-on-transparency",
        (280, 280),
        (60, 30, 220),
        16,
        (0, 0, 0, 0),
        (255, 255, 255, 255),
        mode="RGBA",
    ),
    Drawing(
        "phone-photo-blue-ink-stray-dot",
        (800, 600),
        (420, 200, 260),
        7,
        (205, 200, 190),
        (30, 40, 120),
        stray_dot=(120, 520),
        photo=True,
        image_format="JPEG",
    ),
]


def draw_digit(digit: int, drawing: Drawing) -> bytes:
    """Render ``digit`` as ``drawing`` says and encode it."""
    image = Image.new(drawing.mode, drawing.canvas, drawing.paper)
    pen = ImageDraw.Draw(image)
    left, top, height = drawing.box
    width = 0.7 * height
    radius = drawing.pen_width / 2
    for stroke in DIGIT_STROKES[digit]:
        points = [(left + x * width, top + y * height) for x, y in stroke]
        pen.line(points, fill=drawing.ink, width=drawing.pen_width, joint="curve")
        for x, y in (points[0], points[-1]):  # Round pen ends.
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=drawing.ink)
    if drawing.stray_dot is not None:
        x, y = drawing.stray_dot
        dot = max(3.0, drawing.pen_width * 0.8)
        pen.ellipse((x - dot, y - dot, x + dot, y + dot), fill=drawing.ink)
    if drawing.photo:
        image = _photograph(image)
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": 80} if drawing.image_format == "JPEG" else {}
    image.save(buffer, format=drawing.image_format, **options)
    return buffer.getvalue()


def _photograph(image: Image.Image) -> Image.Image:
    """Uneven light, a little blur and sensor noise, as a phone camera adds."""
    generator = np.random.default_rng(0)
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float32)
    height, width = pixels.shape[:2]
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 0.8 + 0.3 * columns / width - 0.1 * rows / height
    lit = pixels * light[..., np.newaxis] + generator.normal(0, 3, pixels.shape)
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def classify() -> Callable[[Sequence[bytes]], list[int]]:
    """The committed Keras model behind the upload pipeline: uploads -> predicted digits."""
    if not MODEL_FILE.is_file():
        pytest.skip(f"the committed model {MODEL_FILE.name} does not exist yet")
    keras = pytest.importorskip("keras")
    model = keras.saving.load_model(MODEL_FILE)

    def predict(uploads: Sequence[bytes]) -> list[int]:
        digits = np.stack([prepare_upload(data, LIMITS) for data in uploads])
        probabilities = model.predict(to_model_input(digits), verbose=0)
        return [int(digit) for digit in np.argmax(probabilities, axis=1)]

    return predict


@pytest.mark.parametrize("drawing", DRAWINGS, ids=[drawing.name for drawing in DRAWINGS])
def test_handdrawn_digits_are_classified_correctly(
    classify: Callable[[Sequence[bytes]], list[int]], drawing: Drawing
) -> None:
    digits = sorted(DIGIT_STROKES)
    predicted = classify([draw_digit(digit, drawing) for digit in digits])
    assert predicted == digits


def test_handdrawn_digit_in_either_polarity_is_read_alike() -> None:
    dark_on_light = Drawing("dark", (500, 500), (150, 80, 330), 20, (255,) * 3, (0,) * 3)
    light_on_dark = Drawing("light", (500, 500), (150, 80, 330), 20, (0,) * 3, (255,) * 3)
    first = prepare_upload(draw_digit(4, dark_on_light), LIMITS)
    second = prepare_upload(draw_digit(4, light_on_dark), LIMITS)
    assert np.abs(first.astype(int) - second.astype(int)).mean() < 1.0
