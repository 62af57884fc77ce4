"""Confidence that means what it says, and the operating point of the "not a digit" verdict.

* :func:`fit_temperature`: temperature scaling (one number T; the served probabilities are
  ``softmax(logits / T)``), fitted by minimising the negative log-likelihood on held-out
  digits. It changes no answer, only how sure each answer claims to be.
* :func:`expected_calibration_error` and :func:`reliability_table`: how far the stated
  confidence is from the accuracy actually reached, over equal-width confidence bins.
* :func:`rejection_threshold`: the confidence below which an image is not taken for a digit,
  chosen so that a stated share of correctly read held-out digits falls below it.
* :func:`auroc`: how well confidence separates two groups (correct digits against non-digits).

All work on probabilities; log-probabilities stand in for logits (softmax is unchanged by a
shift, so ``softmax(log(p) / T) == softmax(logits / T)``).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

CALIBRATION_BINS: Final = 15
"""Equal-width confidence bins of the expected calibration error (as usually reported)."""

TEMPERATURE_RANGE: Final = (0.25, 8.0)
"""The temperatures searched."""

_LOG_FLOOR: Final = 1e-30


def log_probabilities(probabilities: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
    """Natural logarithms of ``probabilities`` (floored at 1e-30), as float64."""
    return np.log(np.clip(probabilities.astype(np.float64), _LOG_FLOOR, 1.0))


def apply_temperature(
    probabilities: NDArray[np.floating[Any]], temperature: float
) -> NDArray[np.float64]:
    """Probabilities as temperature ``temperature`` would have made them, rows summing to 1."""
    scaled = log_probabilities(probabilities) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    result: NDArray[np.float64] = exponentials / exponentials.sum(axis=1, keepdims=True)
    return result


def negative_log_likelihood(
    probabilities: NDArray[np.floating[Any]], labels: NDArray[np.integer[Any]]
) -> float:
    """Mean negative log-probability of the true labels."""
    chosen = probabilities[np.arange(len(labels)), labels.astype(np.intp)]
    return float(-log_probabilities(chosen).mean())


def fit_temperature(
    probabilities: NDArray[np.floating[Any]], labels: NDArray[np.integer[Any]]
) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``: a coarse
    logarithmic grid, then a golden-section search around its best point."""
    if len(labels) == 0:
        raise ValueError("fitting a temperature needs at least one labelled example")

    def loss(temperature: float) -> float:
        return negative_log_likelihood(apply_temperature(probabilities, temperature), labels)

    grid = np.geomspace(*TEMPERATURE_RANGE, num=41)
    losses = [loss(float(value)) for value in grid]
    best = int(np.argmin(losses))
    low, high = float(grid[max(0, best - 1)]), float(grid[min(len(grid) - 1, best + 1)])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(40):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if loss(left) <= loss(right):
            high = right
        else:
            low = left
    return round((low + high) / 2.0, 4)


def reliability_table(
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.integer[Any]],
    bins: int = CALIBRATION_BINS,
) -> list[dict[str, float | int]]:
    """For each equal-width bin of confidence (the top probability) that holds answers: its
    bounds, how many answers, their mean confidence and their accuracy."""
    confidence = probabilities.max(axis=1).astype(np.float64)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds confidences in (edges[i], edges[i + 1]]; a confidence of 0 goes to bin 0.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows: list[dict[str, float | int]] = []
    for bin_index in range(bins):
        members = index == bin_index
        count = int(members.sum())
        if count:
            rows.append(
                {
                    "low": round(float(edges[bin_index]), 4),
                    "high": round(float(edges[bin_index + 1]), 4),
                    "count": count,
                    "confidence": float(confidence[members].mean()),
                    "accuracy": float(correct[members].mean()),
                }
            )
    return rows


def expected_calibration_error(
    probabilities: NDArray[np.floating[Any]],
    labels: NDArray[np.integer[Any]],
    bins: int = CALIBRATION_BINS,
) -> float:
    """The answers' share-weighted mean gap between confidence and accuracy over the bins."""
    rows = reliability_table(probabilities, labels, bins)
    total = sum(int(row["count"]) for row in rows)
    if total == 0:
        return 0.0
    gaps = (
        int(row["count"]) * abs(float(row["confidence"]) - float(row["accuracy"])) for row in rows
    )
    return float(sum(gaps) / total)


def rejection_threshold(confidence_of_correct: NDArray[np.floating[Any]], rate: float) -> float:
    """The confidence below which ``rate`` of these correctly read digits fall (rounded down
    to 4 decimals, so that no more than that share is rejected)."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"a false rejection rate must be in [0, 1), got {rate}")
    if confidence_of_correct.size == 0:
        raise ValueError("choosing a threshold needs correctly read digits")
    value = float(np.quantile(confidence_of_correct.astype(np.float64), rate, method="lower"))
    return float(np.floor(value * 10_000) / 10_000)


def auroc(positives: NDArray[np.floating[Any]], negatives: NDArray[np.floating[Any]]) -> float:
    """Area under the ROC curve of a score that should be higher for ``positives``: the chance
    that a random positive scores above a random negative (ties count half)."""
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("AUROC needs at least one positive and one negative")
    scores = np.concatenate([positives, negatives]).astype(np.float64)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    # Tied scores share their mean rank.
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if end - start > 1:
            ranks[order[start:end]] = (start + 1 + end) / 2.0
    positive_rank_sum = ranks[: positives.size].sum()
    count = positives.size * negatives.size
    return float((positive_rank_sum - positives.size * (positives.size + 1) / 2.0) / count)
