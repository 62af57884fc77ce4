"""Scores of a classifier on labelled digits, in plain numpy.

The same functions produce the committed ``metrics.json`` and re-check it in the test suite:
accuracy, macro precision/recall/F1, per-class scores and the confusion matrix (rows are the
true digit, columns the predicted one). A class never predicted has precision 0, and a class
absent from the labels has recall 0, as in scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model_contract import NUM_CLASSES, to_model_input

PROBABILITY_FLOOR = 1e-7
"""Smallest probability used in the cross-entropy, as Keras clips it, so the loss stays finite."""

PREDICTION_BATCH_SIZE = 1024
"""Images per forward pass when predicting a whole test split."""


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall and F1 of one digit, and how many test images show that digit."""

    digit: int
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """Scores of a classifier on a labelled set of digits."""

    size: int
    correct: int
    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    loss: float | None
    """Mean cross-entropy of the true class; None when only hard predictions were scored."""
    per_class: list[ClassScores]
    confusion_matrix: NDArray[np.int64]


def confusion_matrix(
    true_labels: NDArray[np.integer[Any]],
    predicted_labels: NDArray[np.integer[Any]],
    num_classes: int = NUM_CLASSES,
) -> NDArray[np.int64]:
    """Count (true, predicted) pairs: entry [t, p] is how many digits t were predicted as p."""
    if true_labels.shape != predicted_labels.shape or true_labels.ndim != 1:
        raise ValueError(
            f"expected two label vectors of equal length, got {true_labels.shape} "
            f"and {predicted_labels.shape}"
        )
    for name, labels in (("true", true_labels), ("predicted", predicted_labels)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} labels must be in 0-{num_classes - 1}")
    pairs = true_labels.astype(np.int64) * num_classes + predicted_labels.astype(np.int64)
    counts = np.bincount(pairs, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _safe_ratio(
    numerators: NDArray[np.int64], denominators: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Divide element-wise, giving 0 where the denominator is 0."""
    result = np.zeros(numerators.shape, dtype=np.float64)
    np.divide(numerators, denominators, out=result, where=denominators > 0)
    return result


def scores_from_confusion(matrix: NDArray[np.int64], loss: float | None = None) -> Evaluation:
    """Derive accuracy, macro and per-class precision/recall/F1 from a confusion matrix."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square confusion matrix, got shape {matrix.shape}")
    total = int(matrix.sum())
    if total == 0:
        raise ValueError("the confusion matrix is empty: there is nothing to score")
    true_positives = np.diag(matrix).astype(np.int64)
    predicted_counts = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = _safe_ratio(true_positives, predicted_counts)
    recall = _safe_ratio(true_positives, support)
    f1 = np.zeros_like(precision)
    both = precision + recall
    np.divide(2 * precision * recall, both, out=f1, where=both > 0)
    per_class = [
        ClassScores(
            digit=digit,
            precision=float(precision[digit]),
            recall=float(recall[digit]),
            f1=float(f1[digit]),
            support=int(support[digit]),
        )
        for digit in range(matrix.shape[0])
    ]
    correct = int(true_positives.sum())
    return Evaluation(
        size=total,
        correct=correct,
        accuracy=correct / total,
        precision_macro=float(precision.mean()),
        recall_macro=float(recall.mean()),
        f1_macro=float(f1.mean()),
        loss=loss,
        per_class=per_class,
        confusion_matrix=matrix,
    )


def cross_entropy(
    true_labels: NDArray[np.integer[Any]], probabilities: NDArray[np.floating[Any]]
) -> float:
    """Mean negative log-probability given to the true class (probabilities clipped at 1e-7)."""
    chosen = probabilities[np.arange(true_labels.shape[0]), true_labels.astype(np.intp)]
    clipped = np.clip(chosen.astype(np.float64), PROBABILITY_FLOOR, 1.0)
    return float(-np.log(clipped).mean())


def evaluate_probabilities(
    true_labels: NDArray[np.integer[Any]], probabilities: NDArray[np.floating[Any]]
) -> Evaluation:
    """Score class probabilities of shape (n, classes) against ``true_labels`` of shape (n,)."""
    if probabilities.ndim != 2 or probabilities.shape[0] != true_labels.shape[0]:
        raise ValueError(
            f"expected probabilities of shape ({true_labels.shape[0]}, classes), "
            f"got {probabilities.shape}"
        )
    predicted = np.argmax(probabilities, axis=1)
    matrix = confusion_matrix(true_labels, predicted, probabilities.shape[1])
    return scores_from_confusion(matrix, loss=cross_entropy(true_labels, probabilities))


def predict_probabilities(model: Any, images: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Run a Keras ``model`` on MNIST-format ``images`` (scaled by ``to_model_input``)."""
    probabilities = model.predict(
        to_model_input(images), batch_size=PREDICTION_BATCH_SIZE, verbose=0
    )
    return np.asarray(probabilities, dtype=np.float32)


def evaluate_model(
    model: Any, images: NDArray[np.uint8], labels: NDArray[np.integer[Any]]
) -> Evaluation:
    """Predict ``images`` with ``model`` and score the predictions against ``labels``."""
    return evaluate_probabilities(labels, predict_probabilities(model, images))
