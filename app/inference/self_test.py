"""The start-up self-test: one synthetic hand-drawn digit through the whole serving path.

The service reports ready only after this passes, so a broken decoder, preprocessing step or
set of weights shows up as a refused start, not as wrong answers to the first users.
"""

from __future__ import annotations

import io
from typing import Final

import numpy as np
from PIL import Image, ImageDraw

from app.classification import DigitClassifier
from app.errors import InputError, ModelLoadError
from app.imaging.structure import DecodeLimits
from app.inference.serving_model import ServingModel
from app.model_contract import IMAGE_SIDE, NUM_CLASSES

SELF_TEST_DIGIT: Final = 1
"""The digit drawn for the self-test: a vertical stroke, which every MNIST model gets right."""

_CANVAS_SIDE: Final = 200


def render_self_test_png() -> bytes:
    """A 200 x 200 PNG of a dark, slightly slanted stroke (a "1") on a white canvas, as a user
    drawing on a page would send it."""
    canvas = Image.new("L", (_CANVAS_SIDE, _CANVAS_SIDE), color=255)
    ImageDraw.Draw(canvas).line([(104, 30), (96, 170)], fill=0, width=16)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def run_self_test(model: ServingModel, limits: DecodeLimits) -> None:
    """Classify the synthetic digit; raise :class:`~app.errors.ModelLoadError` unless the
    result is a 28 x 28 digit and a probability vector naming :data:`SELF_TEST_DIGIT`."""
    try:
        prediction = DigitClassifier(model, limits).classify(render_self_test_png())
    except InputError as error:
        raise ModelLoadError(
            f"self-test failed: the synthetic digit was refused: {error.message}"
        ) from error
    probabilities = prediction.probabilities
    if (
        prediction.model_input.shape != (IMAGE_SIDE, IMAGE_SIDE)
        or probabilities.shape != (NUM_CLASSES,)
        or not np.all(np.isfinite(probabilities))
        or abs(float(probabilities.sum()) - 1.0) > 1e-4
    ):
        raise ModelLoadError("self-test failed: the prediction is not a probability vector")
    if prediction.digit != SELF_TEST_DIGIT:
        raise ModelLoadError(
            f"self-test failed: a drawn {SELF_TEST_DIGIT} was classified as {prediction.digit} "
            f"(confidence {float(prediction.confidence):.3f}); the model or preprocessing is broken"
        )
