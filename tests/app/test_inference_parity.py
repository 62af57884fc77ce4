"""Parity with Keras: the service's numpy forward pass equals ``keras.Model.predict`` on the same
inputs to within 1e-5, for the committed model and for the same network saved as a functional
model. Keras is imported here only; the service itself never imports it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.inference.dense_network import DenseNetwork
from app.inference.keras_archive import read_keras_archive
from app.model_contract import INPUT_SHAPE, MODEL_FILENAME, to_model_input

PARITY_TOLERANCE = 1e-5

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras: Any = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def keras_model(committed_model_dir: Path) -> Any:
    return keras.saving.load_model(committed_model_dir / MODEL_FILENAME, compile=False)


@pytest.fixture(scope="module")
def parity_inputs(
    mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]],
) -> NDArray[np.float32]:
    """1,000 real digits, plus a blank, a saturated and 20 random-noise images."""
    images, _ = mnist_sample
    random = np.random.default_rng(3)
    extremes = np.stack(
        [np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8)]
        + list(random.integers(0, 256, size=(20, 28, 28), dtype=np.uint8))
    )
    return to_model_input(np.concatenate([images[::5], extremes]))


def test_numpy_forward_pass_equals_keras_predict(
    keras_model: Any, parity_inputs: NDArray[np.float32], committed_model_dir: Path
) -> None:
    network = DenseNetwork.from_archive(read_keras_archive(committed_model_dir / MODEL_FILENAME))

    expected = keras_model.predict(parity_inputs, batch_size=256, verbose=0)
    actual = network.predict_probabilities(parity_inputs)

    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=PARITY_TOLERANCE)
    assert np.array_equal(actual.argmax(axis=1), expected.argmax(axis=1))


def test_numpy_forward_pass_equals_keras_for_single_images(
    keras_model: Any, parity_inputs: NDArray[np.float32], committed_model_dir: Path
) -> None:
    network = DenseNetwork.from_archive(read_keras_archive(committed_model_dir / MODEL_FILENAME))

    for row in parity_inputs[:5]:
        expected = keras_model.predict(row[np.newaxis], verbose=0)
        np.testing.assert_allclose(
            network.predict_probabilities(row[np.newaxis]), expected, atol=PARITY_TOLERANCE
        )


def test_functional_model_reads_and_matches_keras(
    keras_model: Any, parity_inputs: NDArray[np.float32], tmp_path: Path
) -> None:
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    hidden = keras.layers.Flatten()(inputs)
    hidden = keras.layers.Dense(128, activation="relu")(hidden)
    hidden = keras.layers.Dense(64, activation="relu")(hidden)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    functional = keras.Model(inputs, outputs, name="mnist_dense_functional")
    functional.set_weights(keras_model.get_weights())
    saved = tmp_path / MODEL_FILENAME
    functional.save(saved)

    network = DenseNetwork.from_archive(read_keras_archive(saved))

    np.testing.assert_allclose(
        network.predict_probabilities(parity_inputs),
        functional.predict(parity_inputs, batch_size=256, verbose=0),
        atol=PARITY_TOLERANCE,
    )


def test_served_probabilities_are_keras_at_the_stored_temperature(
    keras_model: Any, parity_inputs: NDArray[np.float32], committed_model_dir: Path
) -> None:
    from app.inference.serving_model import load_serving_model
    from training.calibration import apply_temperature

    served = load_serving_model(committed_model_dir)
    temperature = served.evaluation.calibration.temperature
    assert served.network.temperature == temperature != 1.0

    expected = apply_temperature(
        keras_model.predict(parity_inputs, batch_size=256, verbose=0), temperature
    )
    actual = served.network.predict_probabilities(parity_inputs)

    np.testing.assert_allclose(actual, expected, rtol=0, atol=PARITY_TOLERANCE)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_network_refuses_a_temperature_that_is_not_a_positive_number(
    committed_model_dir: Path, temperature: float
) -> None:
    archive = read_keras_archive(committed_model_dir / MODEL_FILENAME)
    with pytest.raises(ValueError, match="temperature"):
        DenseNetwork.from_archive(archive, temperature)
