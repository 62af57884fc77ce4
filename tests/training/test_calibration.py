"""Temperature scaling, calibration error, the rejection threshold and AUROC on data whose
answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import (
    apply_temperature,
    auroc,
    expected_calibration_error,
    fit_temperature,
    rejection_threshold,
    reliability_table,
)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def _calibrated_sample(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): the logits are calibrated as they are."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.5, (size, 10))
    probabilities = _softmax(logits)
    labels = np.array([rng.choice(10, p=row) for row in probabilities])
    return logits, labels


def test_fit_temperature_recovers_the_overconfidence_factor() -> None:
    logits, labels = _calibrated_sample(20_000, seed=1)
    overconfident = _softmax(3.0 * logits).astype(np.float32)
    assert fit_temperature(overconfident, labels) == pytest.approx(3.0, rel=0.05)


def test_fit_temperature_of_calibrated_probabilities_is_one() -> None:
    logits, labels = _calibrated_sample(20_000, seed=2)
    assert fit_temperature(_softmax(logits), labels) == pytest.approx(1.0, rel=0.05)


def test_apply_temperature_keeps_the_answers_and_softens_them() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]])
    softened = apply_temperature(probabilities, 2.0)
    np.testing.assert_allclose(softened.sum(axis=1), 1.0)
    assert (softened.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    assert (softened.max(axis=1) < probabilities.max(axis=1)).all()
    np.testing.assert_allclose(apply_temperature(probabilities, 1.0), probabilities, rtol=1e-6)


def test_calibration_error_is_small_when_confidence_matches_accuracy() -> None:
    logits, labels = _calibrated_sample(20_000, seed=3)
    assert expected_calibration_error(_softmax(logits), labels) < 0.02
    assert expected_calibration_error(_softmax(4.0 * logits), labels) > 0.1


def test_reliability_table_counts_every_answer_once() -> None:
    probabilities = np.array([[0.95, 0.05], [0.55, 0.45], [0.15, 0.85], [0.5, 0.5]])
    labels = np.array([0, 1, 1, 0])
    rows = reliability_table(probabilities, labels, bins=10)
    assert sum(row["count"] for row in rows) == len(labels)
    top = next(row for row in rows if row["low"] == 0.9)
    assert top["count"] == 1 and top["accuracy"] == 1.0
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(
        (0.05 + 0.55 + 0.15 + 0.5) / 4
    )


def test_rejection_threshold_rejects_at_most_the_stated_share() -> None:
    confidences = np.linspace(0.5, 1.0, 1001)
    threshold = rejection_threshold(confidences, 0.02)
    assert (confidences < threshold).mean() <= 0.02
    assert (confidences < threshold + 0.001).mean() > 0.015
    with pytest.raises(ValueError, match="false rejection rate"):
        rejection_threshold(confidences, 1.5)


def test_auroc_of_separated_overlapping_and_tied_scores() -> None:
    assert auroc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auroc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5
    assert auroc(np.array([0.9, 0.4]), np.array([0.5, 0.1])) == 0.75
