"""From uploaded bytes to a digit: decode and preprocess (``app.imaging``), then the network.

These functions are synchronous and CPU-bound; the API runs them in the threadpool (or, for
tiny PNGs, inline; see ``app.api.routes.predict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.errors import EmptyUploadError, InputError
from app.imaging.decode_gate import DecodeGate
from app.imaging.pipeline import prepare_upload
from app.inference.serving_model import ServingModel


@dataclass(frozen=True, slots=True)
class DigitPrediction:
    """The model's answer for one image and the 28 x 28 digit it was given."""

    digit: int
    probabilities: NDArray[np.float32]
    """Shape (10,); index = digit; sums to 1."""
    model_input: NDArray[np.uint8]
    """The preprocessed 28 x 28 MNIST-format digit the model saw."""

    @property
    def confidence(self) -> np.float32:
        """Probability of the predicted digit."""
        return np.float32(self.probabilities[self.digit])


def classify_upload(
    data: bytes, *, model: ServingModel, max_pixels: int, gate: DecodeGate | None = None
) -> DigitPrediction:
    """Classify one uploaded image; a large one waits for a slot of ``gate``, if given.

    Raises an :class:`~app.errors.InputError` subclass for an empty, undecodable, oversized or
    blank image, and :class:`~app.errors.ServiceBusyError` when the gate stays full.
    """
    digit_image = _prepare(data, max_pixels=max_pixels, gate=gate)
    probabilities = model.predict_probabilities(digit_image)[0]
    return _prediction(probabilities, digit_image)


def classify_uploads(
    uploads: Sequence[bytes],
    *,
    model: ServingModel,
    max_pixels: int,
    gate: DecodeGate | None = None,
) -> list[DigitPrediction | InputError]:
    """Classify several uploads with one pass of the network, keeping their order.

    An upload that cannot be classified yields its :class:`~app.errors.InputError` in its place;
    the others are classified regardless. Large images wait for a slot of ``gate``, if given,
    one at a time; a :class:`~app.errors.ServiceBusyError` fails the whole batch.
    """
    prepared: list[NDArray[np.uint8] | InputError] = []
    for data in uploads:
        try:
            prepared.append(_prepare(data, max_pixels=max_pixels, gate=gate))
        except InputError as error:
            prepared.append(error)
    digit_images = [item for item in prepared if not isinstance(item, InputError)]
    if not digit_images:
        return [item for item in prepared if isinstance(item, InputError)]
    rows = iter(model.predict_probabilities(np.stack(digit_images)))
    return [
        item if isinstance(item, InputError) else _prediction(next(rows), item) for item in prepared
    ]


def _prepare(data: bytes, *, max_pixels: int, gate: DecodeGate | None) -> NDArray[np.uint8]:
    """The upload as a 28 x 28 MNIST-format digit, decoded under ``gate`` when one is given."""
    if not data:
        raise EmptyUploadError("the upload is empty: send the image's bytes")
    if gate is None:
        return prepare_upload(data, max_pixels=max_pixels)
    with gate.admit(data):
        return prepare_upload(data, max_pixels=max_pixels)


def _prediction(
    probabilities: NDArray[np.float32], digit_image: NDArray[np.uint8]
) -> DigitPrediction:
    """Package one row of probabilities with the digit image it came from."""
    return DigitPrediction(
        digit=int(np.argmax(probabilities)),
        probabilities=probabilities,
        model_input=digit_image,
    )
