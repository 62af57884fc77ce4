"""Read the trained model out of its Keras 3 ``.keras`` archive without importing Keras.

A ``.keras`` file is a zip holding ``config.json`` (the architecture) and ``model.weights.h5``
(the weights, one HDF5 group per layer: ``layers/<name>/vars/0`` is a Dense kernel, ``vars/1``
its bias). The service accepts exactly one architecture, the classic dense MNIST network::

    InputLayer(28, 28, 1) -> Flatten -> Dense(128, relu) -> Dense(64, relu) -> Dense(10, softmax)

saved as a ``Sequential`` or as a linear functional ``Model``. ``Dropout`` layers may sit between
them: they do nothing at inference and hold no weights. Anything else is refused with a
:class:`~app.errors.ModelLoadError` that says what was expected and what was found.

>>> archive = read_keras_archive(Path("models/mnist_dense.keras"))  # doctest: +SKIP
>>> [layer.units for layer in archive.dense_layers]  # doctest: +SKIP
[128, 64, 10]
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import h5py
import numpy as np
from numpy.typing import NDArray

from app.errors import ModelLoadError
from app.inference.artifact_file import read_artifact_bytes
from app.model_contract import DENSE_LAYERS, INPUT_SHAPE

CONFIG_MEMBER: Final = "config.json"
WEIGHTS_MEMBER: Final = "model.weights.h5"
METADATA_MEMBER: Final = "metadata.json"

EXPECTED_DENSE_LAYERS: Final = tuple((layer.units, layer.activation) for layer in DENSE_LAYERS)
"""Units and activation of each Dense layer, input side first (:data:`DENSE_LAYERS`)."""

EXPECTED_ARCHITECTURE: Final = f"InputLayer{INPUT_SHAPE} -> Flatten -> " + " -> ".join(
    f"Dense({units}, {activation})" for units, activation in EXPECTED_DENSE_LAYERS
)

# Layers that are the identity at inference time and hold no weights.
_INFERENCE_IDENTITY_LAYERS: Final = frozenset({"Dropout"})

# An archive or weights member larger than this is not our 100k-parameter model (about 1.3 MB
# with optimizer state); refuse it before reading it into memory.
_MAX_ARCHIVE_BYTES: Final = 64 * 1024 * 1024
_MAX_WEIGHTS_BYTES: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DenseLayerWeights:
    """One Dense layer as stored: its name, activation, kernel (inputs x units) and bias."""

    name: str
    activation: str
    kernel: NDArray[np.float32]
    bias: NDArray[np.float32]

    @property
    def units(self) -> int:
        """Number of outputs of the layer."""
        return int(self.bias.shape[0])


@dataclass(frozen=True, slots=True)
class KerasArchive:
    """What the service needs from a ``.keras`` file: the model name, its Dense layers in order
    and the Keras version that saved it (from ``metadata.json``, when present)."""

    model_name: str
    dense_layers: tuple[DenseLayerWeights, ...]
    keras_version: str | None
    sha256: str
    """SHA-256 of the archive file, hex."""

    @property
    def parameter_count(self) -> int:
        """Number of weights and biases, as Keras's ``count_params`` reports it."""
        return sum(layer.kernel.size + layer.bias.size for layer in self.dense_layers)


@dataclass(frozen=True, slots=True)
class _LayerSpec:
    """A layer of ``config.json`` reduced to what the architecture check looks at."""

    class_name: str
    name: str
    config: dict[str, Any]
    inbound_names: tuple[str, ...] | None


def read_keras_archive(path: Path) -> KerasArchive:
    """Read and check the model archive at ``path``.

    Raises :class:`~app.errors.ModelLoadError` when the file is missing, is not a readable zip,
    lacks a member, holds another architecture, or has weights of the wrong shape or non-finite
    values.
    """
    archive_bytes = read_artifact_bytes(
        path,
        kind="model file",
        max_bytes=_MAX_ARCHIVE_BYTES,
        too_large="is implausibly large for this model",
    )
    try:
        with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
            names = set(archive.namelist())
            for member in (CONFIG_MEMBER, WEIGHTS_MEMBER):
                if member not in names:
                    raise ModelLoadError(
                        f"model file {path} has no {member}: not a Keras 3 archive"
                    )
            if archive.getinfo(WEIGHTS_MEMBER).file_size > _MAX_WEIGHTS_BYTES:
                raise ModelLoadError(f"model file {path}: {WEIGHTS_MEMBER} is implausibly large")
            config_bytes = archive.read(CONFIG_MEMBER)
            weights_bytes = archive.read(WEIGHTS_MEMBER)
            metadata_bytes = archive.read(METADATA_MEMBER) if METADATA_MEMBER in names else None
    except ModelLoadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as error:
        # zlib.error is not raised here: zipfile turns corrupt deflate data into BadZipFile.
        raise ModelLoadError(
            f"model file {path} is not a readable .keras archive (zip): {error}"
        ) from error

    model_name, layer_specs = _parse_config(config_bytes, path)
    dense_specs = _check_architecture(layer_specs, path)
    dense_layers = _read_dense_weights(weights_bytes, dense_specs, path)
    return KerasArchive(
        model_name=model_name,
        dense_layers=dense_layers,
        keras_version=_parse_keras_version(metadata_bytes),
        sha256=hashlib.sha256(archive_bytes).hexdigest(),
    )


def _parse_config(config_bytes: bytes, path: Path) -> tuple[str, list[_LayerSpec]]:
    """Decode ``config.json`` into the model's name and its layers in order."""
    try:
        document = json.loads(config_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"model file {path}: {CONFIG_MEMBER} is not valid JSON") from error
    if not isinstance(document, dict):
        raise ModelLoadError(f"model file {path}: {CONFIG_MEMBER} is not a JSON object")
    class_name = document.get("class_name")
    model_config = document.get("config")
    if class_name not in ("Sequential", "Functional", "Model") or not isinstance(
        model_config, dict
    ):
        raise ModelLoadError(
            f"model file {path} holds a {class_name!r}, expected a Sequential or functional model "
            f"{EXPECTED_ARCHITECTURE}"
        )
    raw_layers = model_config.get("layers")
    if not isinstance(raw_layers, list) or not all(isinstance(item, dict) for item in raw_layers):
        raise ModelLoadError(f"model file {path}: {CONFIG_MEMBER} has no list of layers")
    functional = class_name != "Sequential"
    layers = [_layer_spec(item, functional=functional) for item in raw_layers]
    if functional:
        _check_linear_graph(layers, model_config, path)
    name = model_config.get("name")
    return (name if isinstance(name, str) and name else "model"), layers


def _layer_spec(item: dict[str, Any], *, functional: bool) -> _LayerSpec:
    """Reduce one layer entry of ``config.json`` to a :class:`_LayerSpec`."""
    config = item.get("config")
    config = config if isinstance(config, dict) else {}
    name = item.get("name", config.get("name"))
    inbound: tuple[str, ...] | None = None
    if functional:
        inbound = tuple(_inbound_layer_names(item.get("inbound_nodes")))
    return _LayerSpec(
        class_name=str(item.get("class_name")),
        name=name if isinstance(name, str) else "",
        config=config,
        inbound_names=inbound,
    )


def _inbound_layer_names(inbound_nodes: object) -> list[str]:
    """Names of the layers feeding a functional layer (Keras 3 ``inbound_nodes`` format)."""
    names: list[str] = []
    if not isinstance(inbound_nodes, list):
        return names
    for node in inbound_nodes:
        arguments = node.get("args", []) if isinstance(node, dict) else []
        for argument in arguments if isinstance(arguments, list) else []:
            history = (
                argument.get("config", {}).get("keras_history")
                if isinstance(argument, dict)
                else None
            )
            if isinstance(history, list) and history and isinstance(history[0], str):
                names.append(history[0])
            else:
                names.append("<unrecognised input>")
    return names


def _check_linear_graph(layers: list[_LayerSpec], model_config: dict[str, Any], path: Path) -> None:
    """Refuse a functional model that is not a single chain from its input to its output."""
    for previous, layer in zip(layers, layers[1:], strict=False):
        if layer.inbound_names != (previous.name,):
            raise ModelLoadError(
                f"model file {path}: layer {layer.name!r} does not take exactly the output of "
                f"{previous.name!r}; expected a single chain {EXPECTED_ARCHITECTURE}"
            )
    outputs = model_config.get("output_layers")
    if layers and not _names_one_layer(outputs, layers[-1].name):
        raise ModelLoadError(
            f"model file {path}: the model output is not the last layer {layers[-1].name!r}"
        )


def _names_one_layer(reference: object, name: str) -> bool:
    """Whether a functional ``input_layers``/``output_layers`` entry names exactly ``name``."""
    if isinstance(reference, list) and len(reference) == 1 and isinstance(reference[0], list):
        reference = reference[0]
    return isinstance(reference, list) and bool(reference) and reference[0] == name


def _describe(layer: _LayerSpec) -> str:
    """A short description of a layer for error messages, e.g. ``Dense(128, relu)``."""
    if layer.class_name == "Dense":
        return f"Dense({layer.config.get('units')}, {layer.config.get('activation')})"
    if layer.class_name == "InputLayer":
        shape = layer.config.get("batch_shape", layer.config.get("batch_input_shape"))
        shown = tuple(shape[1:]) if isinstance(shape, list) else shape
        return f"InputLayer{shown}"
    return layer.class_name


def _check_architecture(layers: list[_LayerSpec], path: Path) -> list[_LayerSpec]:
    """Check the layer sequence against :data:`EXPECTED_ARCHITECTURE`; return the Dense layers."""
    effective = [layer for layer in layers if layer.class_name not in _INFERENCE_IDENTITY_LAYERS]
    found = " -> ".join(_describe(layer) for layer in effective) or "no layers"
    mismatch = ModelLoadError(
        f"model file {path} has the wrong architecture: expected {EXPECTED_ARCHITECTURE}, "
        f"found {found}"
    )
    if len(effective) != 2 + len(EXPECTED_DENSE_LAYERS):
        raise mismatch
    input_layer, flatten, *dense = effective
    shape = input_layer.config.get("batch_shape", input_layer.config.get("batch_input_shape"))
    if input_layer.class_name != "InputLayer" or shape != [None, *INPUT_SHAPE]:
        raise mismatch
    if flatten.class_name != "Flatten" or flatten.config.get("data_format") not in (
        None,
        "channels_last",
    ):
        raise mismatch
    for layer, (units, activation) in zip(dense, EXPECTED_DENSE_LAYERS, strict=True):
        if (
            layer.class_name != "Dense"
            or layer.config.get("units") != units
            or layer.config.get("activation") != activation
            or layer.config.get("use_bias", True) is not True
        ):
            raise mismatch
    return dense


def _read_dense_weights(
    weights_bytes: bytes, dense_specs: list[_LayerSpec], path: Path
) -> tuple[DenseLayerWeights, ...]:
    """Read each Dense layer's kernel and bias from ``model.weights.h5`` and check their shapes."""
    layers: list[DenseLayerWeights] = []
    inputs = int(np.prod(INPUT_SHAPE))
    try:
        with h5py.File(io.BytesIO(weights_bytes), "r") as weights_file:
            for spec in dense_specs:
                units = int(spec.config["units"])
                kernel = _read_array(weights_file, f"layers/{spec.name}/vars/0", path)
                bias = _read_array(weights_file, f"layers/{spec.name}/vars/1", path)
                if kernel.shape != (inputs, units) or bias.shape != (units,):
                    raise ModelLoadError(
                        f"model file {path}: layer {spec.name!r} has kernel {kernel.shape} and "
                        f"bias {bias.shape}, expected ({inputs}, {units}) and ({units},)"
                    )
                layers.append(
                    DenseLayerWeights(
                        name=spec.name,
                        activation=str(spec.config["activation"]),
                        kernel=kernel,
                        bias=bias,
                    )
                )
                inputs = units
    except ModelLoadError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ModelLoadError(f"model file {path}: cannot read {WEIGHTS_MEMBER}: {error}") from error
    return tuple(layers)


def _read_array(weights_file: h5py.File, key: str, path: Path) -> NDArray[np.float32]:
    """One stored weight array as contiguous float32, refusing a missing or non-finite one."""
    dataset = weights_file.get(key)
    if not isinstance(dataset, h5py.Dataset):
        raise ModelLoadError(f"model file {path}: {WEIGHTS_MEMBER} has no weights at {key}")
    if not np.issubdtype(dataset.dtype, np.floating):
        raise ModelLoadError(f"model file {path}: weights at {key} are {dataset.dtype}, not floats")
    values = np.ascontiguousarray(dataset[()], dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise ModelLoadError(f"model file {path}: weights at {key} are not all finite")
    values.setflags(write=False)
    return values


def _parse_keras_version(metadata_bytes: bytes | None) -> str | None:
    """The Keras version recorded in ``metadata.json``, if the archive has a readable one."""
    if metadata_bytes is None:
        return None
    try:
        metadata = json.loads(metadata_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) else None
