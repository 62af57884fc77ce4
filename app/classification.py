"""The use case: uploaded bytes in, a digit out (decode -> preprocess -> network).

:class:`DigitClassifier` is the one place that turns uploads into predictions. The HTTP routes
(``POST /predict``, ``POST /predict/batch``) and the start-up self-test call it, and any later
transport calls it too, so they cannot drift apart.

Decoding and preprocessing an upload is where a hostile file costs CPU and memory, so the async
methods the routes use run it in the decoder sandbox (:class:`~app.imaging.sandbox.DecodeSandbox`:
separate processes under hard CPU, memory and time limits, with bounded waiting), except for
uploads that :func:`~app.imaging.decode.cheap_png_layout` has checked to be small: a PNG of at
most ``INLINE_MAX_PIXELS`` pixels whose chunk structure has been verified, classified on the
event loop within about 2 ms (``python -m bench.inline_budget``). The forward pass, about as
cheap, runs on the loop, once per request or batch. The synchronous methods do everything in
the calling thread; the start-up self-test and the benchmarks use them.

>>> classifier = DigitClassifier(model, DecodeLimits(max_pixels=40_000_000))  # doctest: +SKIP
>>> classifier.classify(png_bytes).digit  # doctest: +SKIP
7
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Final, Protocol

import numpy as np
from anyio import to_thread
from numpy.typing import NDArray

from app.errors import InputError
from app.imaging.decode import cheap_png_layout
from app.imaging.number_layout import NumberLayout
from app.imaging.pipeline import read_upload, segment_upload
from app.imaging.preprocess import DigitReading
from app.imaging.sandbox import DecodeSandbox
from app.imaging.structure import DecodeLimits
from app.inference.serving_model import ServingModel
from app.model_contract import INPUT_SHAPE
from app.number_reading import NumberReading, choose_reading
from app.verdict import Reason, judge

MODEL_INPUT_SHAPES: Final = (INPUT_SHAPE, INPUT_SHAPE[:2], (int(np.prod(INPUT_SHAPE)),))
"""Shapes of one model-ready input that :meth:`DigitClassifier.predict_model_inputs` takes:
(28, 28, 1), (28, 28) or (784,)."""

INLINE_MAX_MODEL_INPUTS: Final = 64
"""Model-ready batches of up to this many rows run the network on the event loop (about as long
as a batch of uploads' forward pass); larger ones run in the threadpool."""


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
    """The model's answer for one image, whether to believe it, and the 28 x 28 digit it was
    given."""

    digit: int
    probabilities: NDArray[np.float32]
    """Shape (10,); index = digit; sums to 1; calibrated (see :mod:`app.verdict`)."""
    model_input: NDArray[np.uint8]
    """The preprocessed 28 x 28 MNIST-format digit the model saw."""
    is_digit: bool
    """Whether the service believes the image shows one handwritten digit."""
    reason: Reason | None
    """Why not, when ``is_digit`` is false (None when it is true)."""

    @property
    def confidence(self) -> np.float32:
        """Probability of the predicted digit (float32, so that JSON shows it as the same
        number as its entry in ``probabilities``)."""
        return np.float32(self.probabilities[self.digit])


class DigitClassifier:
    """Classifies uploaded images with ``model``.

    ``limits`` bound what an upload may declare and contain; ``inline_max_pixels`` the PNGs
    classified on the event loop (0: none); ``sandbox``, if given, decodes every other upload of
    the async methods (without one, they use the threadpool); ``observer``, if given, is told
    the time of each stage and the digits answered; ``digit_threshold``, if given, replaces the
    model's own not-a-digit threshold (:attr:`ServingModel.digit_threshold`).
    """

    def __init__(
        self,
        model: ServingModel,
        limits: DecodeLimits,
        *,
        inline_max_pixels: int = 0,
        sandbox: DecodeSandbox | None = None,
        observer: PipelineObserver | None = None,
        digit_threshold: float | None = None,
    ) -> None:
        self.model = model
        self.digit_threshold = model.digit_threshold if digit_threshold is None else digit_threshold
        self.limits = limits
        self.inline_max_pixels = inline_max_pixels
        self.sandbox = sandbox
        self.observer = observer

    def classify(self, data: bytes) -> DigitPrediction:
        """Classify one uploaded image in the calling thread.

        Raises an :class:`~app.errors.InputError` subclass for an empty, undecodable, oversized,
        too complex or blank image.
        """
        started = perf_counter()
        reading = read_upload(data, self.limits)
        return self._predict_one(reading, perf_counter() - started)

    def classify_many(self, uploads: Sequence[bytes]) -> list[DigitPrediction | InputError]:
        """Classify several uploads in the calling thread, with one pass of the network, keeping
        their order; an upload that cannot be classified yields its
        :class:`~app.errors.InputError` in its place."""
        prepared: list[DigitReading | InputError] = []
        for data in uploads:
            try:
                prepared.append(read_upload(data, self.limits))
            except InputError as error:
                prepared.append(error)
        return self._predict_many(prepared)

    async def classify_async(self, data: bytes) -> DigitPrediction:
        """:meth:`classify`, the decoding in the sandbox unless the upload is cheap. Also raises
        :class:`~app.errors.ServiceBusyError` when no decoder was free in time."""
        started = perf_counter()
        reading = await self._prepare_async(data)
        return self._predict_one(reading, perf_counter() - started)

    async def classify_many_async(
        self, uploads: Sequence[bytes]
    ) -> list[DigitPrediction | InputError]:
        """:meth:`classify_many`, each upload decoded as :meth:`classify_async` decodes it, one
        after the other (a batch takes one decoder at a time). A
        :class:`~app.errors.ServiceBusyError` fails the whole batch."""
        prepared: list[DigitReading | InputError] = []
        for data in uploads:
            started = perf_counter()
            try:
                prepared.append(await self._prepare_async(data))
            except InputError as error:
                prepared.append(error)
                continue
            if self.observer is not None:
                self.observer.observe_preprocessing(perf_counter() - started)
            # Let other requests run between two cheap images decoded on the loop.
            await asyncio.sleep(0)
        return self._predict_many(prepared)

    def predict_model_inputs(self, values: NDArray[np.float32]) -> NDArray[np.float32]:
        """Class probabilities, shape (n, 10), for inputs that are already what the network
        takes: float32 values in [0, 1], shape (n, 28, 28, 1), (n, 28, 28) or (n, 784), n >= 1,
        white ink on black as :func:`~app.model_contract.to_model_input` makes them. Nothing is
        decoded or preprocessed: this is the path of clients that send model-ready tensors (the
        Open Inference Protocol's ``input``), which a server of the bare network would take.

        Raises :class:`ValueError` for another dtype or shape, or a value outside [0, 1] (NaN
        included).

        >>> classifier.predict_model_inputs(np.zeros((2, 784), np.float32)).shape  # doctest: +SKIP
        (2, 10)
        """
        if values.dtype != np.float32:
            raise ValueError(f"expected float32 values, got {values.dtype}")
        if values.ndim < 2 or values.shape[0] < 1 or values.shape[1:] not in MODEL_INPUT_SHAPES:
            accepted = ", ".join(
                str(("n", *shape)).replace("'", "") for shape in MODEL_INPUT_SHAPES
            )
            raise ValueError(f"expected shape {accepted} with n >= 1, got {values.shape}")
        # NaN fails both comparisons.
        if not (values.min() >= 0.0 and values.max() <= 1.0):
            raise ValueError("expected values in [0, 1] (pixels scaled by 1/255)")
        started = perf_counter()
        probabilities = self.model.network.predict_probabilities(values)
        if self.observer is not None:
            self.observer.observe_inference(perf_counter() - started)
            self.observer.count_predictions(probabilities.argmax(axis=1).tolist())
        return probabilities

    def confident_rows(self, probabilities: NDArray[np.float32]) -> NDArray[np.bool_]:
        """Which rows of (n, 10) probabilities :mod:`app.verdict` takes for one digit, on their
        confidence alone (for inputs that were never preprocessed here)."""
        return np.array(
            [judge(row, self.digit_threshold, 1).is_digit for row in probabilities], dtype=np.bool_
        )

    async def predict_model_inputs_async(self, values: NDArray[np.float32]) -> NDArray[np.float32]:
        """:meth:`predict_model_inputs`, on the event loop for up to
        :data:`INLINE_MAX_MODEL_INPUTS` rows and in the threadpool for more."""
        if values.ndim >= 1 and len(values) <= INLINE_MAX_MODEL_INPUTS:
            return self.predict_model_inputs(values)
        return await to_thread.run_sync(self.predict_model_inputs, values)

    def read_number(self, data: bytes, max_digits: int) -> NumberReading:
        """Read the number an uploaded image shows, in the calling thread: every digit, line
        by line (see :mod:`app.imaging.segmentation` and :mod:`app.number_reading`). Its
        confidence is the product of its digits' confidences.

        Raises what :meth:`classify` raises, and :class:`~app.errors.TooManyDigitsError` past
        ``max_digits`` digits.
        """
        return self._read_layout(segment_upload(data, self.limits, max_digits), max_digits)

    async def read_number_async(self, data: bytes, max_digits: int) -> NumberReading:
        """:meth:`read_number`, the decoding and segmentation in the sandbox unless the upload
        is cheap; the forward pass, one for all candidate digits, on the event loop."""
        png_layout = cheap_png_layout(data, max_pixels=self.inline_max_pixels, limits=self.limits)
        if png_layout is not None:
            layout = segment_upload(data, self.limits, max_digits, png_layout=png_layout)
        elif self.sandbox is not None:
            layout = await self.sandbox.segment(data, max_digits)
        else:
            layout = await to_thread.run_sync(segment_upload, data, self.limits, max_digits)
        return self._read_layout(layout, max_digits)

    def _read_layout(self, layout: NumberLayout, max_digits: int) -> NumberReading:
        """Classify every candidate digit of ``layout`` in one pass, each judged as one digit
        (the segmentation has already separated them), and choose the reading."""
        pieces: list[DigitReading | InputError] = [
            DigitReading(piece.digit_image, separate_digits=1)
            for line in layout.lines
            for group in line
            for piece in group.pieces
        ]
        predictions = [
            item for item in self._predict_many(pieces) if isinstance(item, DigitPrediction)
        ]
        return choose_reading(layout, predictions, max_digits)

    async def _prepare_async(self, data: bytes) -> DigitReading:
        """The upload as a 28 x 28 digit: on the loop if cheap, else in the sandbox."""
        layout = cheap_png_layout(data, max_pixels=self.inline_max_pixels, limits=self.limits)
        if layout is not None:
            return read_upload(data, self.limits, png_layout=layout)
        if self.sandbox is not None:
            return await self.sandbox.prepare(data)
        return await to_thread.run_sync(read_upload, data, self.limits)

    def _predict_one(self, reading: DigitReading, prepare_seconds: float) -> DigitPrediction:
        """The network's answer for one prepared digit, told to the observer."""
        started = perf_counter()
        probabilities = self.model.predict_probabilities(reading.pixels)[0]
        prediction = self._prediction(probabilities, reading)
        if self.observer is not None:
            self.observer.observe_prediction(
                prepare_seconds, perf_counter() - started, prediction.digit
            )
        return prediction

    def _predict_many(
        self, prepared: list[DigitReading | InputError]
    ) -> list[DigitPrediction | InputError]:
        """One forward pass for the prepared digits; the errors stay in their places."""
        readings = [item for item in prepared if not isinstance(item, InputError)]
        if not readings:
            return [item for item in prepared if isinstance(item, InputError)]
        started = perf_counter()
        all_probabilities = self.model.predict_probabilities(
            np.stack([reading.pixels for reading in readings])
        )
        if self.observer is not None:
            self.observer.observe_inference(perf_counter() - started)
            self.observer.count_predictions(int(row.argmax()) for row in all_probabilities)
        rows = iter(all_probabilities)
        return [
            item if isinstance(item, InputError) else self._prediction(next(rows), item)
            for item in prepared
        ]

    def _prediction(
        self, probabilities: NDArray[np.float32], reading: DigitReading
    ) -> DigitPrediction:
        """Package one row of probabilities with the digit it came from and the verdict."""
        verdict = judge(probabilities, self.digit_threshold, reading.separate_digits)
        return DigitPrediction(
            digit=int(probabilities.argmax()),
            probabilities=probabilities,
            model_input=reading.pixels,
            is_digit=verdict.is_digit,
            reason=verdict.reason,
        )
