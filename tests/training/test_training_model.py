"""The network: the seed's exact architecture, and the weight copy from the training variant."""

from __future__ import annotations

import keras
import numpy as np

from training.model import (
    build_inference_model,
    build_training_model,
    describe_layers,
    to_inference_model,
)


def test_build_inference_model_has_seed_layers() -> None:
    model = build_inference_model()
    assert model.input_shape == (None, 28, 28, 1)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dense", "Dense"]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [(layer.name, layer.units, layer.activation.__name__) for layer in dense] == [
        ("dense", 128, "relu"),
        ("dense_1", 64, "relu"),
        ("dense_2", 10, "softmax"),
    ]
    assert model.count_params() == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert describe_layers(model) == [
        "Input(28, 28, 1)",
        "Flatten",
        "Dense(128, relu)",
        "Dense(64, relu)",
        "Dense(10, softmax)",
    ]


def test_build_training_model_adds_dropout_between_dense_layers() -> None:
    model = build_training_model(dropout_rate=0.2)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense"]


def test_to_inference_model_copies_weights_and_predicts_alike() -> None:
    keras.utils.set_random_seed(0)
    training_model = build_training_model(dropout_rate=0.5)
    inference_model = to_inference_model(training_model)
    for name in ("dense", "dense_1", "dense_2"):
        for trained, copied in zip(
            training_model.get_layer(name).get_weights(),
            inference_model.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(trained, copied)
    inputs = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    # Outside training, dropout is the identity, so both models compute the same function.
    np.testing.assert_allclose(
        training_model.predict(inputs, verbose=0),
        inference_model.predict(inputs, verbose=0),
        rtol=1e-6,
    )
