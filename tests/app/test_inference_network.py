"""The numpy forward pass: probabilities, batching, numerical stability, input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.inference.dense_network import DenseNetwork, stable_softmax
from app.inference.keras_archive import read_keras_archive
from app.model_contract import MODEL_FILENAME, to_model_input


@pytest.fixture(scope="module")
def network(committed_model_dir: Path) -> DenseNetwork:
    return DenseNetwork.from_archive(read_keras_archive(committed_model_dir / MODEL_FILENAME))


def _reference_forward(network: DenseNetwork, images: NDArray[np.float32]) -> NDArray[np.float64]:
    """The same network written out plainly in float64, as an independent check."""
    activations = images.reshape(len(images), -1).astype(np.float64)
    for layer in network.hidden_layers:
        activations = np.maximum(activations @ layer.kernel + layer.bias, 0.0)
    logits = activations @ network.output_layer.kernel + network.output_layer.bias
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    result: NDArray[np.float64] = exponentials / exponentials.sum(axis=1, keepdims=True)
    return result


def test_predict_probabilities_returns_float32_rows_summing_to_one(
    network: DenseNetwork, mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]]
) -> None:
    images, _ = mnist_sample

    probabilities = network.predict_probabilities(to_model_input(images[:50]))

    assert probabilities.shape == (50, 10)
    assert probabilities.dtype == np.float32
    assert np.all(probabilities >= 0.0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_predict_probabilities_matches_float64_reference(
    network: DenseNetwork, mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]]
) -> None:
    images, _ = mnist_sample
    inputs = to_model_input(images[::25])

    np.testing.assert_allclose(
        network.predict_probabilities(inputs), _reference_forward(network, inputs), atol=1e-6
    )


def test_predict_probabilities_gives_same_rows_alone_and_in_a_batch(
    network: DenseNetwork, mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]]
) -> None:
    images, _ = mnist_sample
    inputs = to_model_input(images[:8])

    batched = network.predict_probabilities(inputs)
    one_by_one = np.concatenate([network.predict_probabilities(row[np.newaxis]) for row in inputs])

    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)


def test_predict_probabilities_classifies_real_digits(
    network: DenseNetwork, mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]]
) -> None:
    images, labels = mnist_sample

    predicted = network.predict_probabilities(to_model_input(images)).argmax(axis=1)

    assert np.mean(predicted == labels) >= 0.97


def test_predict_probabilities_refuses_float64_input(network: DenseNetwork) -> None:
    with pytest.raises(ValueError, match="float32"):
        network.predict_probabilities(np.zeros((1, 28, 28, 1), dtype=np.float64))


def test_predict_probabilities_refuses_wrong_shape(network: DenseNetwork) -> None:
    with pytest.raises(ValueError, match="shape"):
        network.predict_probabilities(np.zeros((1, 32, 32, 1), dtype=np.float32))


def test_stable_softmax_survives_huge_logits() -> None:
    logits = np.array([[1e4, 0.0, -1e4, 5.0, 0, 0, 0, 0, 0, 0]], dtype=np.float32)

    probabilities = stable_softmax(logits)

    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities[0, 0], 1.0)
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-6)


def test_stable_softmax_gives_uniform_probabilities_for_equal_logits() -> None:
    probabilities = stable_softmax(np.full((2, 10), 123.0, dtype=np.float32))

    np.testing.assert_allclose(probabilities, 0.1, atol=1e-7)
