"""Choosing a reading among a group's candidate pieces (:mod:`app.number_reading`), on
hand-made predictions: which chain wins is decided by the pieces' softened confidences, the
narrow-piece prior and the cost of cutting a narrow group."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.classification import DigitPrediction
from app.errors import NoDigitFoundError, TooManyDigitsError
from app.imaging.number_layout import Box, InkGroup, InkPiece, NumberLayout
from app.number_reading import choose_reading

BLANK = np.zeros((28, 28), dtype=np.uint8)


def predicted(digit: int, confidence: float, *, is_digit: bool = True) -> DigitPrediction:
    """A prediction of ``digit`` with ``confidence``, the rest spread evenly."""
    probabilities = np.full(10, (1.0 - confidence) / 9, dtype=np.float32)
    probabilities[digit] = confidence
    return DigitPrediction(
        digit=digit,
        probabilities=probabilities,
        model_input=BLANK,
        is_digit=is_digit,
        reason=None if is_digit else "low_confidence",
    )


def piece(start: int, end: int, width: float, *, cut: bool = True) -> InkPiece:
    return InkPiece(
        start=start,
        end=end,
        digit_image=BLANK,
        box=Box(x=start * 10, y=0, width=max(1, round(width * 10)), height=10),
        width=width,
        cut=cut,
    )


def two_piece_group(whole_width: float) -> InkGroup:
    """A group with one candidate cut: the whole, its left piece and its right piece."""
    return InkGroup(
        boundaries=3,
        pieces=(
            piece(0, 2, whole_width, cut=False),
            piece(0, 1, whole_width * 0.7),
            piece(1, 2, whole_width * 0.3),
        ),
    )


def read(group: InkGroup, predictions: list[DigitPrediction], max_digits: int = 8) -> str:
    return choose_reading(NumberLayout(lines=((group,),)), predictions, max_digits).text


def test_a_pair_read_as_one_digit_almost_surely_is_still_cut_when_both_pieces_are_sure() -> None:
    # A touching "21" that the network also reads, whole, as a 2 at 0.97: the two sure pieces
    # win once the confidences are softened (at the calibrated ones the cut's cost decided).
    group = two_piece_group(whole_width=0.95)
    assert read(group, [predicted(2, 0.97), predicted(2, 0.999), predicted(1, 0.999)]) == "21"


def test_a_sure_digit_is_not_cut_into_doubtful_pieces() -> None:
    group = two_piece_group(whole_width=0.9)
    assert read(group, [predicted(0, 0.999), predicted(6, 0.8), predicted(1, 0.7)]) == "0"


def test_a_narrow_cut_out_piece_read_as_another_digit_than_1_is_unlikely() -> None:
    group = InkGroup(
        boundaries=3,
        pieces=(piece(0, 2, 0.8, cut=False), piece(0, 1, 0.7), piece(1, 2, 0.1)),
    )
    # A sliver of an 8 read as a 3 with the same confidence as a sliver read as a 1.
    assert read(group, [predicted(8, 0.95), predicted(3, 0.999), predicted(3, 0.999)]) == "8"
    assert read(group, [predicted(8, 0.95), predicted(3, 0.999), predicted(1, 0.999)]) == "31"


def test_the_reading_confidence_is_the_product_of_the_digits_calibrated_confidences() -> None:
    group = two_piece_group(whole_width=1.4)
    predictions = [predicted(4, 0.1, is_digit=False), predicted(4, 0.99), predicted(7, 0.98)]
    reading = choose_reading(NumberLayout(lines=((group,),)), predictions, 8)
    assert reading.text == "47"
    assert math.isclose(reading.confidence, 0.99 * 0.98, rel_tol=1e-6)


def test_too_many_digits_and_no_digit_are_input_errors() -> None:
    group = two_piece_group(whole_width=1.4)
    predictions = [predicted(4, 0.1, is_digit=False), predicted(4, 0.99), predicted(7, 0.98)]
    with pytest.raises(TooManyDigitsError):
        choose_reading(NumberLayout(lines=((group,),)), predictions, 1)
    with pytest.raises(NoDigitFoundError):
        choose_reading(NumberLayout(lines=((InkGroup(boundaries=2, pieces=()),),)), [], 8)
