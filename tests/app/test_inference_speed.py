"""The model layer's speed target: the numpy forward pass takes at most 100 µs per image.

The best of several timing rounds is taken, so a busy machine slows the figure, not the verdict.
Run with ``-s`` to see the figures::

    .venv/bin/pytest tests/app/test_inference_speed.py -q -s
"""

from __future__ import annotations

import timeit
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.inference.dense_network import DenseNetwork, use_single_threaded_blas
from app.inference.keras_archive import read_keras_archive
from app.inference.serving_model import MODEL_FILENAME
from app.model_input import to_model_input

TARGET_SECONDS_PER_IMAGE = 100e-6


def _best_seconds_per_call(network: DenseNetwork, inputs: NDArray[np.float32]) -> float:
    timer = timeit.Timer(lambda: network.predict_probabilities(inputs))
    loops, _ = timer.autorange()
    return min(timer.repeat(repeat=7, number=loops)) / loops


@pytest.mark.parametrize("batch_size", [1, 64])
def test_forward_pass_takes_at_most_100_microseconds_per_image(
    committed_model_dir: Path,
    mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]],
    batch_size: int,
) -> None:
    use_single_threaded_blas()  # as the service's lifespan does
    network = DenseNetwork.from_archive(read_keras_archive(committed_model_dir / MODEL_FILENAME))
    images, _ = mnist_sample
    inputs = to_model_input(images[:batch_size])

    per_image = _best_seconds_per_call(network, inputs) / batch_size

    print(f"\nforward pass, batch of {batch_size}: {per_image * 1e6:.1f} µs per image")
    assert per_image <= TARGET_SECONDS_PER_IMAGE
