"""The not-a-digit verdict: several digits, sure answers, two-way doubts and spread belief."""

from __future__ import annotations

import numpy as np
import pytest

from app.verdict import AMBIGUOUS_PAIR_MASS, judge


def _probabilities(**digits: float) -> np.ndarray:
    """Probabilities with the named digits (d0 ... d9) set and the rest spread evenly."""
    values = np.zeros(10, dtype=np.float32)
    for name, value in digits.items():
        values[int(name[1:])] = value
    rest = 1.0 - values.sum()
    values[values == 0] = rest / np.count_nonzero(values == 0)
    return values


def test_a_sure_answer_is_a_digit() -> None:
    verdict = judge(_probabilities(d7=0.97), threshold=0.8, separate_digits=1)
    assert verdict.is_digit and verdict.reason is None


def test_digit_sized_pieces_side_by_side_are_several_digits_however_sure() -> None:
    verdict = judge(_probabilities(d1=0.99), threshold=0.8, separate_digits=2)
    assert not verdict.is_digit and verdict.reason == "several_digits"


def test_two_digits_sharing_the_belief_is_low_confidence() -> None:
    verdict = judge(_probabilities(d4=0.5, d9=0.45), threshold=0.8, separate_digits=1)
    assert not verdict.is_digit and verdict.reason == "low_confidence"


def test_belief_spread_over_many_digits_is_not_a_digit() -> None:
    verdict = judge(_probabilities(d7=0.3, d1=0.2), threshold=0.8, separate_digits=1)
    assert not verdict.is_digit and verdict.reason == "not_a_digit"
    assert 0.5 < AMBIGUOUS_PAIR_MASS


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.9])
def test_the_threshold_decides_between_digit_and_doubt(threshold: float) -> None:
    verdict = judge(_probabilities(d3=0.6, d5=0.35), threshold=threshold, separate_digits=1)
    assert verdict.is_digit == (0.6 >= threshold)
