"""The numpy scores, on small hand-made cases whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.evaluate import (
    confusion_matrix,
    cross_entropy,
    evaluate_probabilities,
    scores_from_confusion,
)


def test_confusion_matrix_counts_true_rows_predicted_columns() -> None:
    true = np.array([0, 0, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 2, 2, 0])
    assert confusion_matrix(true, predicted, num_classes=3).tolist() == [
        [1, 1, 0],
        [0, 1, 0],
        [1, 0, 2],
    ]


def test_scores_from_confusion_hand_worked_example() -> None:
    # Class 0: predicted 2 times, right once; class 1: 2 predicted, 1 right; class 2: 2 of 2.
    matrix = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    scores = scores_from_confusion(matrix)
    assert (scores.size, scores.correct) == (6, 4)
    assert scores.accuracy == pytest.approx(4 / 6)
    precision = [1 / 2, 1 / 2, 2 / 2]
    recall = [1 / 2, 1 / 1, 2 / 3]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall, strict=True)]
    assert [c.precision for c in scores.per_class] == pytest.approx(precision)
    assert [c.recall for c in scores.per_class] == pytest.approx(recall)
    assert [c.f1 for c in scores.per_class] == pytest.approx(f1)
    assert [c.support for c in scores.per_class] == [2, 1, 3]
    assert scores.precision_macro == pytest.approx(2 / 3)
    assert scores.recall_macro == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    assert scores.f1_macro == pytest.approx(sum(f1) / 3)


def test_scores_from_confusion_never_predicted_class_scores_zero() -> None:
    # Class 1 is never predicted and class 2 never occurs: their scores are 0, not NaN.
    matrix = np.array([[2, 0, 0], [1, 0, 0], [0, 0, 0]])
    scores = scores_from_confusion(matrix)
    assert [c.precision for c in scores.per_class] == pytest.approx([2 / 3, 0.0, 0.0])
    assert [c.recall for c in scores.per_class] == pytest.approx([1.0, 0.0, 0.0])
    assert not any(math.isnan(c.f1) for c in scores.per_class)


def test_scores_from_confusion_refuses_empty_matrix() -> None:
    with pytest.raises(ValueError, match="nothing to score"):
        scores_from_confusion(np.zeros((3, 3), dtype=np.int64))


def test_evaluate_probabilities_uses_argmax_and_cross_entropy() -> None:
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]], dtype=np.float32)
    true = np.array([0, 1, 2])
    scores = evaluate_probabilities(true, probabilities)
    assert scores.correct == 2
    assert scores.confusion_matrix.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    expected_loss = -(math.log(0.9) + math.log(0.7) + math.log(0.1)) / 3
    assert scores.loss == pytest.approx(expected_loss, rel=1e-6)


def test_cross_entropy_zero_probability_is_clipped_finite() -> None:
    loss = cross_entropy(np.array([1]), np.array([[1.0, 0.0]]))
    assert loss == pytest.approx(-math.log(1e-7))


def test_confusion_matrix_refuses_label_out_of_range() -> None:
    with pytest.raises(ValueError, match="predicted labels must be in 0-9"):
        confusion_matrix(np.array([1]), np.array([10]))
