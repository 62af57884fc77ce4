"""The use case: uploaded bytes in, a digit out (decode -> preprocess -> network).

:class:`DigitClassifier` is the one place that turns uploads into predictions. The HTTP routes
(``POST /predict``, ``POST /predict/batch``) and the start-up self-test call it, and any later
transport calls it too, so they cannot drift apart.

Decoding, preprocessing and the forward pass are CPU work. :meth:`DigitClassifier.classify_async`
runs it in the threadpool, so that a large photo never stalls the event loop, except for uploads
that :func:`~app.imaging.decode.is_cheap_upload` has checked to be small: a PNG of at most
``INLINE_MAX_PIXELS`` pixels and :data:`~app.imaging.decode.CHEAP_UPLOAD_MAX_BYTES` bytes whose
chunk structure has been verified and that carries no compressed metadata. Its whole
classification takes less than a thread-pool hop costs (docs/performance.md), so it runs on the
loop. Batches run in the threadpool, one batch at a time per worker process (batches are
Python-heavy and hold the GIL, so several at once in one process only contend for it).

>>> classifier = DigitClassifier(model, max_pixels=40_000_000)  # doctest: +SKIP
>>> classifier.classify(png_bytes).digit  # doctest: +SKIP
7
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Final, Protocol

import numpy as np
from anyio import CapacityLimiter, to_thread
from numpy.typing import NDArray

from app.errors import InputError
from app.imaging.decode import is_cheap_upload
from app.imaging.decode_gate import DecodeGate
from app.imaging.pipeline import prepare_upload
from app.inference.serving_model import ServingModel

BATCHES_AT_ONCE: Final = 1
"""Batches classified at the same time in one worker process."""


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
        """One image was preprocessed and classified as ``digit``."""


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
        """Probability of the predicted digit (float32, so that JSON shows it as the same
        number as its entry in ``probabilities``)."""
        return np.float32(self.probabilities[self.digit])


class DigitClassifier:
    """Classifies uploaded images with ``model``.

    ``max_pixels`` bounds the images decoded; ``inline_max_pixels`` the PNGs classified on the
    event loop (0: none); ``gate``, if given, bounds the large decodes at once; ``observer``, if
    given, is told the time of each stage and the digits answered.
    """

    def __init__(
        self,
        model: ServingModel,
        *,
        max_pixels: int,
        inline_max_pixels: int = 0,
        gate: DecodeGate | None = None,
        observer: PipelineObserver | None = None,
    ) -> None:
        self.model = model
        self.max_pixels = max_pixels
        self.inline_max_pixels = inline_max_pixels
        self.gate = gate
        self.observer = observer
        self._batch_limiter: CapacityLimiter | None = None

    def classify(self, data: bytes) -> DigitPrediction:
        """Classify one uploaded image (synchronous, CPU-bound).

        Raises an :class:`~app.errors.InputError` subclass for an empty, undecodable, oversized
        or blank image, and :class:`~app.errors.ServiceBusyError` when the gate stays full.
        """
        started = perf_counter()
        digit_image = self._prepare(data)
        prepared = perf_counter()
        probabilities = self.model.predict_probabilities(digit_image)[0]
        finished = perf_counter()
        prediction = _prediction(probabilities, digit_image)
        if self.observer is not None:
            self.observer.observe_prediction(
                prepared - started, finished - prepared, prediction.digit
            )
        return prediction

    def classify_many(self, uploads: Sequence[bytes]) -> list[DigitPrediction | InputError]:
        """Classify several uploads with one pass of the network, keeping their order.

        An upload that cannot be classified yields its :class:`~app.errors.InputError` in its
        place; the others are classified regardless. A :class:`~app.errors.ServiceBusyError`
        fails the whole batch.
        """
        prepared: list[NDArray[np.uint8] | InputError] = []
        for data in uploads:
            started = perf_counter()
            try:
                prepared.append(self._prepare(data))
            except InputError as error:
                prepared.append(error)
                continue
            if self.observer is not None:
                self.observer.observe_preprocessing(perf_counter() - started)
        digit_images = [item for item in prepared if not isinstance(item, InputError)]
        if not digit_images:
            return [item for item in prepared if isinstance(item, InputError)]
        started = perf_counter()
        all_probabilities = self.model.predict_probabilities(np.stack(digit_images))
        if self.observer is not None:
            self.observer.observe_inference(perf_counter() - started)
            self.observer.count_predictions(int(row.argmax()) for row in all_probabilities)
        rows = iter(all_probabilities)
        return [
            item if isinstance(item, InputError) else _prediction(next(rows), item)
            for item in prepared
        ]

    async def classify_async(self, data: bytes) -> DigitPrediction:
        """:meth:`classify` on the event loop for a cheap upload, else in the threadpool."""
        if is_cheap_upload(data, max_pixels=self.inline_max_pixels):
            return self.classify(data)
        return await to_thread.run_sync(self.classify, data)

    async def classify_many_async(
        self, uploads: Sequence[bytes]
    ) -> list[DigitPrediction | InputError]:
        """:meth:`classify_many` in the threadpool, :data:`BATCHES_AT_ONCE` at a time."""
        if self._batch_limiter is None:
            # Made on first use, inside the event loop that will use it.
            self._batch_limiter = CapacityLimiter(BATCHES_AT_ONCE)
        return await to_thread.run_sync(
            partial(self.classify_many, uploads), limiter=self._batch_limiter
        )

    def _prepare(self, data: bytes) -> NDArray[np.uint8]:
        """The upload as a 28 x 28 MNIST-format digit, decoded under the gate if there is one."""
        if self.gate is None:
            return prepare_upload(data, max_pixels=self.max_pixels)
        with self.gate.admit(data):
            return prepare_upload(data, max_pixels=self.max_pixels)


def _prediction(
    probabilities: NDArray[np.float32], digit_image: NDArray[np.uint8]
) -> DigitPrediction:
    """Package one row of probabilities with the digit image it came from."""
    return DigitPrediction(
        digit=int(probabilities.argmax()), probabilities=probabilities, model_input=digit_image
    )
