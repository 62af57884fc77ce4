"""The contract between training and serving: the model's input (shape and pixel scaling), its
served layers, and the names of the files training leaves in ``models/``.

Training, evaluation and serving all go through :func:`to_model_input`, so a digit is scaled
the same way whether it came from the MNIST files or from an upload. Images enter as MNIST
stores them: 28 x 28 ``uint8`` arrays, white ink (255) on a black background (0). Training
builds exactly :data:`DENSE_LAYERS` and the service refuses any other architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

IMAGE_SIDE = 28
"""Width and height, in pixels, of an MNIST digit."""

INPUT_SHAPE: tuple[int, int, int] = (IMAGE_SIDE, IMAGE_SIDE, 1)
"""Shape of one model input: height, width, one grey channel."""

NUM_CLASSES = 10
"""The digits 0 to 9; class index equals the digit."""

PIXEL_MAX = 255
"""Brightest value of a stored ``uint8`` pixel; it maps to 1.0."""

MODEL_NAME: Final = "mnist_dense"
"""Name of the Keras model and stem of its file."""

MODEL_FILENAME: Final = f"{MODEL_NAME}.keras"
"""The model file in ``models/``."""

EVALUATION_FILENAME: Final = "metrics.json"
"""The stored evaluation beside it (schema: :mod:`app.evaluation_file`)."""


@dataclass(frozen=True, slots=True)
class DenseLayerSpec:
    """One Dense layer of the served model: its Keras name, units and activation."""

    name: str
    units: int
    activation: str


DENSE_LAYERS: Final = (
    DenseLayerSpec("dense", 128, "relu"),
    DenseLayerSpec("dense_1", 64, "relu"),
    DenseLayerSpec("dense_2", NUM_CLASSES, "softmax"),
)
"""The seed's Dense layers after ``Flatten``, input side first; the names are Keras's defaults
in a fresh session, and the service reads the weights at ``layers/<name>/vars/0|1``."""


def to_model_input(images: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Scale MNIST-format images to the model's input: float32 in [0, 1], shape (n, 28, 28, 1).

    ``images`` is one image of shape (28, 28) or a stack of shape (n, 28, 28), optionally with a
    trailing channel axis of 1, with dtype ``uint8``.

    >>> to_model_input(np.zeros((28, 28), dtype=np.uint8)).shape
    (1, 28, 28, 1)
    """
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {images.dtype}")
    stack = images
    if stack.ndim == 4 or stack.shape == INPUT_SHAPE:
        if stack.shape[-1] != 1:
            raise ValueError(f"expected one grey channel, got shape {images.shape}")
        stack = stack[..., 0]
    if stack.ndim == 2:
        stack = stack[np.newaxis]
    if stack.ndim != 3 or stack.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(
            f"expected images of shape ({IMAGE_SIDE}, {IMAGE_SIDE}) or (n, {IMAGE_SIDE}, "
            f"{IMAGE_SIDE}[, 1]), got {images.shape}"
        )
    scaled = stack.astype(np.float32) / np.float32(PIXEL_MAX)
    return scaled.reshape(stack.shape[0], *INPUT_SHAPE)
