"""Model faults beyond the missing, truncated and wrong-architecture files that
``tests/app/test_api_startup.py`` covers: an empty file, a folder in its place, weights that are
not finite or of the wrong shape, a missing or corrupt ``metrics.json``, metrics of another
model. Each stops start-up with one log line that says what is wrong; ``mnist-serve`` exits
non-zero without a traceback and never listens."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

import h5py
import numpy as np
import pytest

from app.model_contract import EVALUATION_FILENAME, MODEL_FILENAME
from tests.conftest import assert_lifespan_refuses, run_refused_mnist_serve


def _archive_members(model_file: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(model_file) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_archive(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _with_weights(members: dict[str, bytes], change: Callable[[h5py.File], None]) -> None:
    """Apply ``change`` to the archive's weights file, in place."""
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as weights:
        change(weights)
    members["model.weights.h5"] = buffer.getvalue()


def _first_kernel_path(weights: h5py.File) -> str:
    paths: list[str] = []
    weights.visit(lambda name: paths.append(name) if name.endswith("vars/0") else None)
    return sorted(paths)[0]


def _nan_weights(weights: h5py.File) -> None:
    kernel = weights[_first_kernel_path(weights)]
    values = kernel[()]
    values[0, 0] = np.nan
    kernel[...] = values


def _transposed_kernel(weights: h5py.File) -> None:
    path = _first_kernel_path(weights)
    values = weights[path][()]
    del weights[path]
    weights[path] = values.T.copy()


FAULTS: Final = {
    # name: (what to break, words the log line must hold)
    "empty-model-file": "not a readable .keras archive",
    "model-path-is-a-folder": "cannot be read",
    "nan-weights": "not all finite",
    "wrong-shape-weights": "expected (784, 128)",
    "metrics-missing": "does not exist",
    "metrics-corrupt": "is not valid",
    "metrics-of-another-model": "the metrics are not this model's",
}


def _broken_model_dir(fault: str, committed_model_dir: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    model_file, metrics_file = folder / MODEL_FILENAME, folder / EVALUATION_FILENAME
    shutil.copy(committed_model_dir / MODEL_FILENAME, model_file)
    shutil.copy(committed_model_dir / EVALUATION_FILENAME, metrics_file)
    if fault == "empty-model-file":
        model_file.write_bytes(b"")
    elif fault == "model-path-is-a-folder":
        model_file.unlink()
        model_file.mkdir()
    elif fault in ("nan-weights", "wrong-shape-weights"):
        members = _archive_members(model_file)
        _with_weights(members, _nan_weights if fault == "nan-weights" else _transposed_kernel)
        _write_archive(model_file, members)
    elif fault == "metrics-missing":
        metrics_file.unlink()
    elif fault == "metrics-corrupt":
        metrics_file.write_text('{"schema_version": 1, "model": ')
    elif fault == "metrics-of-another-model":
        metrics = json.loads(metrics_file.read_text())
        metrics["model"]["sha256"] = "0" * 64
        metrics_file.write_text(json.dumps(metrics))
    else:
        raise ValueError(fault)
    return folder


@pytest.mark.parametrize(("fault", "reason"), FAULTS.items())
def test_lifespan_refuses_broken_model(
    committed_model_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    reason: str,
) -> None:
    model_dir = _broken_model_dir(fault, committed_model_dir, tmp_path / fault)

    assert_lifespan_refuses(model_dir, reason, caplog)


@pytest.mark.parametrize("fault", ["nan-weights", "metrics-of-another-model"])
def test_mnist_serve_exits_non_zero_for_broken_model(
    committed_model_dir: Path, tmp_path: Path, fault: str
) -> None:
    model_dir = _broken_model_dir(fault, committed_model_dir, tmp_path / fault)

    completed = run_refused_mnist_serve(model_dir, FAULTS[fault], cwd=tmp_path)

    assert "Uvicorn running" not in completed.stderr
