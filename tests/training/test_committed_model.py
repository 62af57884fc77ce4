"""The committed model really scores what models/metrics.json says, on the full MNIST test split."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from training.calibration import apply_temperature, expected_calibration_error, reliability_table
from training.datasets import load_local, sha256_of_file
from training.evaluate import evaluate_model, predict_probabilities
from training.realworld import evaluate_model_on_realworld, realworld_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
DEFAULT_MNIST_DATA = REPO_ROOT.parent / "shared" / "data" / "mnist"
MACRO_TOLERANCE = 1e-6

pytestmark = pytest.mark.mnist


def _mnist_path() -> Path:
    """Where MNIST is ($MNIST_DATA, else ../shared/data/mnist); skip, or fail on CI, if absent."""
    configured = os.environ.get("MNIST_DATA", "").strip()
    path = Path(configured) if configured else DEFAULT_MNIST_DATA
    if not path.exists():
        reason = (
            f"full MNIST not found at {path} (set MNIST_DATA to a folder of the four IDX files "
            "or a mnist.npz)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def committed_metrics() -> dict[str, Any]:
    """models/metrics.json as committed."""
    return dict(json.loads((MODELS_DIR / "metrics.json").read_text(encoding="utf-8")))


def test_committed_model_file_matches_stored_sha256(committed_metrics: dict[str, Any]) -> None:
    model_path = MODELS_DIR / committed_metrics["model"]["file"]
    assert sha256_of_file(model_path) == committed_metrics["model"]["sha256"]


def test_committed_model_reevaluation_equals_stored_metrics(
    committed_metrics: dict[str, Any],
) -> None:
    data_path = _mnist_path()
    data = load_local(data_path)
    stored = committed_metrics["test"]
    assert committed_metrics["data"]["source"] in ("idx", "npz", "keras")
    assert stored["size"] == len(data.test) == 10_000

    model = keras.saving.load_model(MODELS_DIR / committed_metrics["model"]["file"])
    evaluation = evaluate_model(model, data.test.images, data.test.labels)

    assert evaluation.correct == round(stored["accuracy"] * stored["size"])
    assert evaluation.accuracy == stored["accuracy"]
    assert evaluation.confusion_matrix.tolist() == stored["confusion_matrix"]
    for key in ("precision_macro", "recall_macro", "f1_macro", "loss"):
        assert getattr(evaluation, key) == pytest.approx(stored[key], abs=MACRO_TOLERANCE), key
    for computed, recorded in zip(evaluation.per_class, stored["per_class"], strict=True):
        assert computed.support == recorded["support"]
        assert computed.f1 == pytest.approx(recorded["f1"], abs=MACRO_TOLERANCE)


def test_committed_metrics_name_the_data_files_used(committed_metrics: dict[str, Any]) -> None:
    data_path = _mnist_path()
    folder = data_path if data_path.is_dir() else data_path.parent
    present = {
        name: digest
        for name, digest in committed_metrics["data"]["files"].items()
        if (folder / name).is_file()
    }
    if not present:
        pytest.skip(f"{data_path} holds MNIST in another form than the files recorded")
    for name, digest in present.items():
        assert sha256_of_file(folder / name) == digest, name


def test_committed_metrics_meet_targets(committed_metrics: dict[str, Any]) -> None:
    test = committed_metrics["test"]
    assert committed_metrics["training"]["profile"] == "full"
    for key in ("accuracy", "precision_macro", "recall_macro"):
        assert test[key] >= 0.99, key
    realworld = committed_metrics.get("realworld")
    if realworld is not None:
        assert realworld["accuracy"] >= 0.97
    assert committed_metrics["calibration"]["test_ece_after"] <= 0.01
    assert committed_metrics["not_a_digit"]["validation_correct_rejected"] <= 0.02


def test_committed_calibration_equals_a_reevaluation(committed_metrics: dict[str, Any]) -> None:
    data = load_local(_mnist_path())
    calibration = committed_metrics["calibration"]
    model = keras.saving.load_model(MODELS_DIR / committed_metrics["model"]["file"])
    probabilities = predict_probabilities(model, data.test.images)
    calibrated = apply_temperature(probabilities, calibration["temperature"])
    labels = data.test.labels.astype(np.intp)

    assert expected_calibration_error(probabilities, labels) == pytest.approx(
        calibration["test_ece_before"], abs=MACRO_TOLERANCE
    )
    assert expected_calibration_error(calibrated, labels) == pytest.approx(
        calibration["test_ece_after"], abs=MACRO_TOLERANCE
    )
    assert [row["count"] for row in reliability_table(calibrated, labels)] == [
        row["count"] for row in calibration["test_reliability"]
    ]
    rejected = float(
        (calibrated.max(axis=1) < committed_metrics["not_a_digit"]["threshold"]).mean()
    )
    assert rejected == pytest.approx(committed_metrics["not_a_digit"]["test_rejected"], abs=1e-9)


def test_committed_realworld_figure_equals_a_reevaluation(
    committed_metrics: dict[str, Any],
) -> None:
    stored = committed_metrics.get("realworld")
    if stored is None:
        pytest.skip("models/metrics.json holds no real-world development set figure")
    folder = realworld_dir()
    if not (folder / "labels.tsv").is_file():
        pytest.skip(f"the real-world development set is not at {folder}")
    model = keras.saving.load_model(MODELS_DIR / committed_metrics["model"]["file"])
    measured = evaluate_model_on_realworld(model, folder)
    assert measured is not None
    assert (measured["right"], measured["images"]) == (stored["right"], stored["images"])
    assert measured["by_group"] == stored["by_group"]
    assert measured["by_source"] == stored["by_source"]
