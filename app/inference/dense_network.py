"""The dense MNIST network's forward pass in numpy: the service never calls ``model.predict``.

Three matrix products, two ReLUs and a softmax on float32 arrays, without the framework
overhead Keras's ``predict`` has per call (figures: docs/performance.md). The results equal
Keras's own output to within 1e-5 (``tests/app/test_inference_parity.py``).

>>> network = DenseNetwork.from_archive(read_keras_archive(path))  # doctest: +SKIP
>>> network.predict_probabilities(to_model_input(digits)).shape  # doctest: +SKIP
(n, 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from app.inference.keras_archive import DenseLayerWeights, KerasArchive
from app.model_contract import INPUT_SHAPE

_FLAT_INPUT_SIZE = int(np.prod(INPUT_SHAPE))


@dataclass(frozen=True, slots=True)
class DenseNetwork:
    """Flatten -> Dense ReLU -> Dense ReLU -> Dense softmax, with float32 weights.

    The weights are read-only arrays, so one network is safely shared by concurrent threads.
    """

    hidden_layers: tuple[DenseLayerWeights, ...]
    output_layer: DenseLayerWeights
    temperature: float = 1.0
    """The logits are divided by this before the softmax (temperature scaling: 1 gives the
    trained network's own probabilities; the service uses the one fitted for calibration)."""

    def __post_init__(self) -> None:
        """Refuse a temperature that is not a positive finite number."""
        if not (0.0 < self.temperature < float("inf")):
            raise ValueError(f"the temperature must be positive and finite: {self.temperature}")

    @classmethod
    def from_archive(cls, archive: KerasArchive, temperature: float = 1.0) -> DenseNetwork:
        """Build the network from the checked layers of a model archive."""
        *hidden, output = archive.dense_layers
        return cls(hidden_layers=tuple(hidden), output_layer=output, temperature=temperature)

    def predict_probabilities(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        """Class probabilities for a stack of model inputs, at the network's temperature.

        ``images`` has shape (n, 28, 28, 1) (or anything with n * 784 values per row, as
        :func:`app.model_contract.to_model_input` returns), float32 in [0, 1]. The result has shape
        (n, 10); each row sums to 1.
        """
        if images.dtype != np.float32:
            raise ValueError(f"expected float32 model input, got {images.dtype}")
        if images.ndim < 2 or images.size != images.shape[0] * _FLAT_INPUT_SIZE:
            raise ValueError(f"expected model input of shape (n, 28, 28, 1), got {images.shape}")
        activations = images.reshape(images.shape[0], _FLAT_INPUT_SIZE)
        for layer in self.hidden_layers:
            activations = activations @ layer.kernel
            activations += layer.bias
            np.maximum(activations, 0.0, out=activations)
        logits = activations @ self.output_layer.kernel
        logits += self.output_layer.bias
        if self.temperature != 1.0:
            logits *= np.float32(1.0 / self.temperature)
        return stable_softmax(logits)


def stable_softmax(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    """Softmax over the last axis, shifted by the row maximum so ``exp`` never overflows.

    Works in place on ``logits`` (a fresh array owned by the caller) and returns it. Calls the
    reductions directly, not through the ``ndarray`` methods' Python wrappers (runs per image).
    """
    logits -= np.maximum.reduce(logits, axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= np.add.reduce(logits, axis=-1, keepdims=True)
    return logits


def use_single_threaded_blas() -> None:
    """Make numpy's BLAS run each matrix product on the calling thread, for the whole process.

    The products here are tiny, so BLAS worker threads only add hand-offs and contention with
    the request threads and other workers (measured in docs/performance.md). Parallelism
    comes from the threadpool and from worker processes instead.
    """
    threadpool_limits(limits=1, user_api="blas")
