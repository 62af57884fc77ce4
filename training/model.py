"""The seed's dense network, as served, and the same network with dropout for training.

The served model is exactly ``Input(28, 28, 1) -> Flatten -> Dense(128, relu) -> Dense(64, relu)
-> Dense(10, softmax)``. Its layers have fixed, simple names because the service reads the saved
weights at ``layers/<name>/vars/0|1`` of the ``.keras`` archive without importing Keras. Training
may add dropout between the dense layers; :func:`to_inference_model` copies the trained weights
into a clean inference model before it is saved.
"""

from __future__ import annotations

from typing import Any

import keras

from app.model_contract import DENSE_LAYERS, INPUT_SHAPE, MODEL_NAME

FLATTEN_LAYER_NAME = "flatten"
INPUT_LAYER_NAME = "input_layer"


def build_inference_model() -> Any:
    """Build the served model: the seed's architecture and nothing else (untrained)."""
    layers: list[Any] = [keras.Input(shape=INPUT_SHAPE, name=INPUT_LAYER_NAME)]
    layers.append(keras.layers.Flatten(name=FLATTEN_LAYER_NAME))
    layers += [
        keras.layers.Dense(spec.units, activation=spec.activation, name=spec.name)
        for spec in DENSE_LAYERS
    ]
    return keras.Sequential(layers, name=MODEL_NAME)


def build_training_model(dropout_rate: float) -> Any:
    """Build the seed's architecture with dropout after each hidden layer (none at 0.0).

    The dense layers carry the same names and shapes as in :func:`build_inference_model`.
    """
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {dropout_rate}")
    layers: list[Any] = [keras.Input(shape=INPUT_SHAPE, name=INPUT_LAYER_NAME)]
    layers.append(keras.layers.Flatten(name=FLATTEN_LAYER_NAME))
    for index, spec in enumerate(DENSE_LAYERS):
        layers.append(keras.layers.Dense(spec.units, activation=spec.activation, name=spec.name))
        is_hidden = index < len(DENSE_LAYERS) - 1
        if is_hidden and dropout_rate > 0:
            layers.append(keras.layers.Dropout(dropout_rate, name=f"dropout_{index}"))
    return keras.Sequential(layers, name=f"{MODEL_NAME}_training")


def to_inference_model(training_model: Any) -> Any:
    """Return a clean inference model holding the dense weights of ``training_model``."""
    inference_model = build_inference_model()
    for spec in DENSE_LAYERS:
        inference_model.get_layer(spec.name).set_weights(
            training_model.get_layer(spec.name).get_weights()
        )
    return inference_model


def describe_layers(model: Any) -> list[str]:
    """Describe ``model``'s layers in order, e.g. ``["Input(28, 28, 1)", "Flatten", ...]``."""
    descriptions = [f"Input{tuple(model.input_shape[1:])}"]
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            descriptions.append(f"Dense({layer.units}, {layer.activation.__name__})")
        else:
            descriptions.append(type(layer).__name__)
    return descriptions


def build_teacher_model(dropout_rate: float = 0.25) -> Any:
    """A small convolutional network, much stronger than the dense one, that teaches it.

    It is trained first by the same command and used only for its soft predictions
    (knowledge distillation); it is never served. Two convolutions with pooling keep it
    cheap enough to train within the training budget on two CPU cores.
    """
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(dropout_rate),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="teacher_cnn",
    )
