"""Reading the ``.keras`` archive without Keras: the committed model, and every way a model file
can be wrong (missing, truncated, not a zip, another architecture, bad weights)."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from app.errors import ModelLoadError
from app.inference.keras_archive import (
    CONFIG_MEMBER,
    EXPECTED_ARCHITECTURE,
    WEIGHTS_MEMBER,
    read_keras_archive,
)
from app.model_contract import MODEL_FILENAME

ConfigEdit = Callable[[dict[str, Any]], None]


def _layers(config: dict[str, Any]) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = config["config"]["layers"]
    return layers


def _dense(config: dict[str, Any], position: int) -> dict[str, Any]:
    dense_layers = [layer for layer in _layers(config) if layer["class_name"] == "Dense"]
    return dense_layers[position]


def rewrite_archive(
    source: Path,
    destination: Path,
    *,
    edit_config: ConfigEdit | None = None,
    replace_weights: dict[str, np.ndarray[Any, Any]] | None = None,
    drop_members: tuple[str, ...] = (),
) -> Path:
    """Copy the ``.keras`` zip at ``source`` to ``destination``, changing what is asked."""
    with zipfile.ZipFile(source) as original:
        members = {name: original.read(name) for name in original.namelist()}
    if edit_config is not None:
        config = json.loads(members[CONFIG_MEMBER])
        edit_config(config)
        members[CONFIG_MEMBER] = json.dumps(config).encode()
    if replace_weights:
        members[WEIGHTS_MEMBER] = _rewrite_weights(members[WEIGHTS_MEMBER], replace_weights)
    with zipfile.ZipFile(destination, "w") as rewritten:
        for name, data in members.items():
            if name not in drop_members:
                rewritten.writestr(name, data)
    return destination


def _rewrite_weights(weights: bytes, replacements: dict[str, np.ndarray[Any, Any]]) -> bytes:
    """The HDF5 weights file with the datasets at the given keys replaced."""
    output = io.BytesIO()
    with h5py.File(io.BytesIO(weights), "r") as source, h5py.File(output, "w") as target:

        def copy_item(name: str, item: object) -> None:
            if isinstance(item, h5py.Dataset):
                target.create_dataset(name, data=replacements.get(name, item[()]))

        source.visititems(copy_item)
    return output.getvalue()


@pytest.fixture()
def committed_archive(committed_model_dir: Path) -> Path:
    return committed_model_dir / MODEL_FILENAME


def test_read_keras_archive_reads_committed_model(committed_archive: Path) -> None:
    archive = read_keras_archive(committed_archive)

    assert [(layer.units, layer.activation) for layer in archive.dense_layers] == [
        (128, "relu"),
        (64, "relu"),
        (10, "softmax"),
    ]
    assert [layer.kernel.shape for layer in archive.dense_layers] == [
        (784, 128),
        (128, 64),
        (64, 10),
    ]
    assert all(layer.kernel.dtype == np.float32 for layer in archive.dense_layers)
    assert archive.parameter_count == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert archive.sha256 == hashlib.sha256(committed_archive.read_bytes()).hexdigest()
    assert archive.keras_version


def test_read_keras_archive_refuses_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        read_keras_archive(tmp_path / MODEL_FILENAME)


def test_read_keras_archive_refuses_folder(tmp_path: Path) -> None:
    (tmp_path / MODEL_FILENAME).mkdir()

    with pytest.raises(ModelLoadError, match="cannot be read"):
        read_keras_archive(tmp_path / MODEL_FILENAME)


@pytest.mark.parametrize("kept_fraction", [0.0, 0.5, 0.99])
def test_read_keras_archive_refuses_truncated_file(
    committed_archive: Path, tmp_path: Path, kept_fraction: float
) -> None:
    data = committed_archive.read_bytes()
    truncated = tmp_path / MODEL_FILENAME
    truncated.write_bytes(data[: int(len(data) * kept_fraction)])

    with pytest.raises(ModelLoadError, match=r"not a readable \.keras archive"):
        read_keras_archive(truncated)


def test_read_keras_archive_refuses_corrupt_member(committed_archive: Path, tmp_path: Path) -> None:
    # Flip bytes inside the stored weights: the zip's CRC check fails when the member is read.
    stored = bytearray(committed_archive.read_bytes())
    with zipfile.ZipFile(committed_archive) as archive:
        info = archive.getinfo(WEIGHTS_MEMBER)
    middle = info.header_offset + 100 + info.compress_size // 2
    stored[middle : middle + 16] = bytes(16)
    corrupt = tmp_path / MODEL_FILENAME
    corrupt.write_bytes(bytes(stored))

    with pytest.raises(ModelLoadError, match="not a readable"):
        read_keras_archive(corrupt)


def test_read_keras_archive_refuses_missing_weights_member(
    committed_archive: Path, tmp_path: Path
) -> None:
    broken = rewrite_archive(
        committed_archive, tmp_path / MODEL_FILENAME, drop_members=(WEIGHTS_MEMBER,)
    )

    with pytest.raises(ModelLoadError, match="has no model.weights.h5"):
        read_keras_archive(broken)


def test_read_keras_archive_refuses_invalid_config_json(tmp_path: Path) -> None:
    broken = tmp_path / MODEL_FILENAME
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr(CONFIG_MEMBER, "{not json")
        archive.writestr(WEIGHTS_MEMBER, b"")

    with pytest.raises(ModelLoadError, match="config.json is not valid JSON"):
        read_keras_archive(broken)


def _widen_first_dense(config: dict[str, Any]) -> None:
    _dense(config, 0)["config"]["units"] = 256


def _relu_output(config: dict[str, Any]) -> None:
    _dense(config, 2)["config"]["activation"] = "relu"


def _extra_dense(config: dict[str, Any]) -> None:
    extra = copy.deepcopy(_dense(config, 1))
    extra["config"]["name"] = "dense_extra"
    _layers(config).insert(-1, extra)


def _no_flatten(config: dict[str, Any]) -> None:
    config["config"]["layers"] = [
        layer for layer in _layers(config) if layer["class_name"] != "Flatten"
    ]


def _flat_input(config: dict[str, Any]) -> None:
    _layers(config)[0]["config"]["batch_shape"] = [None, 784]


def _channels_first(config: dict[str, Any]) -> None:
    _layers(config)[1]["config"]["data_format"] = "channels_first"


def _convolution(config: dict[str, Any]) -> None:
    _dense(config, 0)["class_name"] = "Conv2D"


def _no_bias(config: dict[str, Any]) -> None:
    _dense(config, 1)["config"]["use_bias"] = False


@pytest.mark.parametrize(
    ("edit", "found"),
    [
        (_widen_first_dense, "Dense(256, relu)"),
        (_relu_output, "Dense(10, relu)"),
        (_extra_dense, "Dense(64, relu) -> Dense(64, relu)"),
        (_no_flatten, "InputLayer(28, 28, 1) -> Dense(128, relu)"),
        (_flat_input, "InputLayer(784,)"),
        (_channels_first, "Flatten"),
        (_convolution, "Conv2D"),
        (_no_bias, "Dense(64, relu)"),
    ],
)
def test_read_keras_archive_refuses_wrong_architecture(
    committed_archive: Path, tmp_path: Path, edit: ConfigEdit, found: str
) -> None:
    wrong = rewrite_archive(committed_archive, tmp_path / MODEL_FILENAME, edit_config=edit)

    with pytest.raises(ModelLoadError, match="wrong architecture") as raised:
        read_keras_archive(wrong)

    assert f"expected {EXPECTED_ARCHITECTURE}" in raised.value.message
    assert found in raised.value.message


def test_read_keras_archive_refuses_another_model_class(
    committed_archive: Path, tmp_path: Path
) -> None:
    def to_custom(config: dict[str, Any]) -> None:
        config["class_name"] = "MyCustomModel"

    wrong = rewrite_archive(committed_archive, tmp_path / MODEL_FILENAME, edit_config=to_custom)

    with pytest.raises(ModelLoadError, match="holds a 'MyCustomModel'"):
        read_keras_archive(wrong)


def test_read_keras_archive_accepts_dropout_between_layers(
    committed_archive: Path, tmp_path: Path
) -> None:
    def add_dropout(config: dict[str, Any]) -> None:
        dropout = {
            "module": "keras.layers",
            "class_name": "Dropout",
            "config": {"name": "dropout", "rate": 0.2},
        }
        _layers(config).insert(3, dropout)

    with_dropout = rewrite_archive(
        committed_archive, tmp_path / MODEL_FILENAME, edit_config=add_dropout
    )

    archive = read_keras_archive(with_dropout)

    assert [layer.units for layer in archive.dense_layers] == [128, 64, 10]


def test_read_keras_archive_refuses_wrong_weight_shape(
    committed_archive: Path, tmp_path: Path
) -> None:
    wrong = rewrite_archive(
        committed_archive,
        tmp_path / MODEL_FILENAME,
        replace_weights={"layers/dense_1/vars/0": np.zeros((128, 32), dtype=np.float32)},
    )

    with pytest.raises(ModelLoadError, match=r"kernel \(128, 32\).*expected \(128, 64\)"):
        read_keras_archive(wrong)


def test_read_keras_archive_refuses_missing_weights(
    committed_archive: Path, tmp_path: Path
) -> None:
    def rename_output_layer(config: dict[str, Any]) -> None:
        _dense(config, 2)["config"]["name"] = "renamed_output"

    wrong = rewrite_archive(
        committed_archive, tmp_path / MODEL_FILENAME, edit_config=rename_output_layer
    )

    with pytest.raises(ModelLoadError, match="no weights at layers/renamed_output/vars/0"):
        read_keras_archive(wrong)


def test_read_keras_archive_refuses_non_finite_weights(
    committed_archive: Path, tmp_path: Path
) -> None:
    bias = np.zeros(10, dtype=np.float32)
    bias[3] = np.nan
    wrong = rewrite_archive(
        committed_archive,
        tmp_path / MODEL_FILENAME,
        replace_weights={"layers/dense_2/vars/1": bias},
    )

    with pytest.raises(ModelLoadError, match="not all finite"):
        read_keras_archive(wrong)
