"""From uploaded bytes to a digit: decode and preprocess (``app.imaging``), then the network.

These functions are synchronous and CPU-bound; the API runs them in the threadpool (or, for
tiny PNGs, inline; see ``app.api.routes.predict``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from app.errors import EmptyUploadError, InputError
from app.imaging.decode_gate import DecodeGate
from app.imaging.pipeline import prepare_upload
from app.inference.serving_model import ServingModel


class PipelineObserver(Protocol):
    """What watches the pipeline (the service's telemetry): the time of each stage and the
    digits it answers. Its methods must be cheap and thread-safe."""

    def observe_preprocessing(self, seconds: float) -> None:
        """One image was decoded and preprocessed in ``seconds``."""

    def observe_inference(self, seconds: float) -> None:
        """One forward pass of the network took ``seconds``."""

    def count_predictions(self, digits: Iterable[int]) -> None:
        """These digits were answered."""

    def observe_prediction(
        self, preprocessing_seconds: float, inference_seconds: float, digit: int
    ) -> None:
        """One image was preprocessed and classified as ``digit``: the three calls above in
        one, for the single-image path (it runs per request)."""


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
    data: bytes,
    *,
    model: ServingModel,
    max_pixels: int,
    gate: DecodeGate | None = None,
    observer: PipelineObserver | None = None,
) -> DigitPrediction:
    """Classify one uploaded image; a large one waits for a slot of ``gate``, if given.
    ``observer``, if given, is told the time of each stage and the digit.

    Raises an :class:`~app.errors.InputError` subclass for an empty, undecodable, oversized or
    blank image, and :class:`~app.errors.ServiceBusyError` when the gate stays full.
    """
    if observer is None:
        digit_image = _prepare(data, max_pixels=max_pixels, gate=gate)
        return _prediction(model.predict_probabilities(digit_image)[0], digit_image)
    started = perf_counter()
    digit_image = _prepare(data, max_pixels=max_pixels, gate=gate)
    prepared = perf_counter()
    probabilities = model.predict_probabilities(digit_image)[0]
    finished = perf_counter()
    prediction = _prediction(probabilities, digit_image)
    observer.observe_prediction(prepared - started, finished - prepared, prediction.digit)
    return prediction


def classify_uploads(
    uploads: Sequence[bytes],
    *,
    model: ServingModel,
    max_pixels: int,
    gate: DecodeGate | None = None,
    observer: PipelineObserver | None = None,
) -> list[DigitPrediction | InputError]:
    """Classify several uploads with one pass of the network, keeping their order;
    ``observer``, if given, is told the time of each stage and the digits.

    An upload that cannot be classified yields its :class:`~app.errors.InputError` in its place;
    the others are classified regardless. Large images wait for a slot of ``gate``, if given,
    one at a time; a :class:`~app.errors.ServiceBusyError` fails the whole batch.
    """
    prepared: list[NDArray[np.uint8] | InputError] = []
    for data in uploads:
        started = perf_counter()
        try:
            digit_image = _prepare(data, max_pixels=max_pixels, gate=gate)
        except InputError as error:
            prepared.append(error)
            continue
        if observer is not None:
            observer.observe_preprocessing(perf_counter() - started)
        prepared.append(digit_image)
    digit_images = [item for item in prepared if not isinstance(item, InputError)]
    if not digit_images:
        return [item for item in prepared if isinstance(item, InputError)]
    started = perf_counter()
    all_probabilities = model.predict_probabilities(np.stack(digit_images))
    if observer is not None:
        observer.observe_inference(perf_counter() - started)
        observer.count_predictions(int(digit) for digit in np.argmax(all_probabilities, axis=1))
    rows = iter(all_probabilities)
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
