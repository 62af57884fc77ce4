"""Reading a number: the classifier's predictions for the candidate digits of a
:class:`~app.imaging.number_layout.NumberLayout` turned into one reading.

Each group of ink is read as the chain of its candidate pieces, from its left edge to its right
one, that is most probable: the sum over the chain of each piece's log confidence (softened,
:data:`READING_SHARPNESS`) and a prior on its shape (:func:`_log_prior`: too narrow for any but a
1), less a cost for every cut of a group too narrow to hold two digits (:data:`SPLIT_WIDTH`),
found by dynamic programming over the cut positions. So a cut between touching digits is
chosen by the classifier's confidence in the digits it leaves.

The whole reading's confidence is the product of its digits' confidences: the probability
that every digit is right, were the digits' errors independent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.errors import NoDigitFoundError, TooManyDigitsError
from app.imaging.number_layout import Box, InkGroup, InkPiece, NumberLayout
from app.inference.dense_network import stable_softmax

if TYPE_CHECKING:
    # The classifier imports this module; its prediction type is only named here.
    from app.classification import DigitPrediction

_SMALLEST_PROBABILITY = 1e-12
"""Probabilities are floored at this before their logarithm is taken."""

READING_SHARPNESS = 0.35
"""Each piece's probabilities are raised to this power and renormalised before their log is
taken: the reader weighs the classifier's confidence at a temperature 1 / 0.35 times the
calibrated one. The calibration was fitted on lone digits; a pair of touching digits read as
one, or a piece cut out of a pair, is outside what the network was trained on, and there its
confidence is least trustworthy. At the calibrated temperature a touching "21" read as a 2
with confidence 0.97 beat its two pieces read at 1.00 each plus the cost of the cut; softened,
the difference between a sure and an almost sure piece counts for more. This and the
constants below were chosen on generated numbers, touching pairs and single digits of MNIST
*training* digits (``bench.number_images`` with other seeds than the benchmark's), and checked
on a second draw of them, never on the test split the benchmark reads nor on the development
set: 0.35 read 5 points more touching pairs, about 1 point more numbers and as many single
digits as 1.0 (the calibrated probabilities); 0.25 to 0.5 did about as well."""

NARROW_DIGIT_WIDTH = 0.35
NARROW_PENALTY = 5.0
"""A piece cut out of a group, narrower than :data:`NARROW_DIGIT_WIDTH` of its line's height
and read as another digit than 1, costs :data:`NARROW_PENALTY` (log) per unit of missing
width: only a 1 is that narrow (in MNIST's test split 95 % of the other digits are at least
0.5 as wide as tall), while a sliver of a 0 or an 8 is often read as some digit."""

SPLIT_WIDTH = 0.8
SPLIT_PENALTY = 1.0
"""Every cut of a group narrower than :data:`SPLIT_WIDTH` of its line's height costs
:data:`SPLIT_PENALTY` (log) per unit of missing width: two touching digits are seldom
narrower than a digit is tall (MNIST's median width is 0.8 of the height). Pieces themselves
cost nothing, and a piece the classifier does not take for a digit costs only its softened
confidence: on generated numbers any cost per piece (favouring fewer digits) lost more
touching pairs than it saved single digits, and a further cost for a piece not taken for a
digit (1.0 before the softening) lost a point of touching pairs once the confidences were
softened."""


@dataclass(frozen=True, slots=True)
class ReadDigit:
    """One digit of a reading: the classifier's prediction and where the digit is (in the
    uploaded image's pixels)."""

    prediction: DigitPrediction
    box: Box


@dataclass(frozen=True, slots=True)
class NumberReading:
    """A number read from an image: its lines, top to bottom, each a row of digits, left to
    right."""

    lines: tuple[tuple[ReadDigit, ...], ...]

    @property
    def text(self) -> str:
        """The digits, one line of text per line of writing, joined by newlines."""
        return "\n".join(line_text(line) for line in self.lines)

    @property
    def confidence(self) -> float:
        """The product of the digits' confidences (the chance that all are right, were their
        errors independent)."""
        return math.prod(
            float(digit.prediction.confidence) for line in self.lines for digit in line
        )


def line_text(line: Sequence[ReadDigit]) -> str:
    """One line's digits as text."""
    return "".join(str(digit.prediction.digit) for digit in line)


def choose_reading(
    layout: NumberLayout, predictions: Sequence[DigitPrediction], max_digits: int
) -> NumberReading:
    """The reading of ``layout`` given the predictions of its pieces (in layout order: line by
    line, group by group, piece by piece).

    Raises :class:`~app.errors.TooManyDigitsError` past ``max_digits`` digits and
    :class:`~app.errors.NoDigitFoundError` when no group can be read.
    """
    remaining = iter(predictions)
    lines: list[tuple[ReadDigit, ...]] = []
    for line in layout.lines:
        digits: list[ReadDigit] = []
        for group in line:
            group_predictions = [next(remaining) for _ in group.pieces]
            digits.extend(_best_chain(group, group_predictions))
        if digits:
            lines.append(tuple(digits))
    count = sum(len(line) for line in lines)
    if count == 0:
        raise NoDigitFoundError("no digit found: the image holds no readable digit")
    if count > max_digits:
        raise TooManyDigitsError(
            f"the image holds {count} digits, more than the {max_digits} allowed "
            "(MAX_DIGITS_PER_IMAGE); send one number"
        )
    return NumberReading(lines=tuple(lines))


def _log_prior(piece: InkPiece, prediction: DigitPrediction) -> float:
    """How plausible the piece's shape is for the digit it is read as (natural log)."""
    if piece.cut and prediction.digit != 1:
        return -NARROW_PENALTY * max(0.0, NARROW_DIGIT_WIDTH - piece.width)
    return 0.0


def _log_confidence(prediction: DigitPrediction) -> float:
    """The log of the piece's probability of its digit, softened by :data:`READING_SHARPNESS`:
    ``log(p_d ** s / sum_k p_k ** s)``, the softmax of ``s * log(p)``."""
    probabilities = np.maximum(prediction.probabilities, np.float32(_SMALLEST_PROBABILITY))
    softened = stable_softmax(np.float32(READING_SHARPNESS) * np.log(probabilities))
    return math.log(float(softened[prediction.digit]))


def _best_chain(group: InkGroup, predictions: Sequence[DigitPrediction]) -> list[ReadDigit]:
    """The most probable chain of pieces across ``group`` (see the module's docstring)."""
    best = np.full(group.boundaries, -np.inf)
    best[0] = 0.0
    came_from: list[tuple[InkPiece, DigitPrediction] | None] = [None] * group.boundaries
    group_width = max((piece.width for piece in group.pieces if not piece.cut), default=0.0)
    split_cost = SPLIT_PENALTY * max(0.0, SPLIT_WIDTH - group_width)
    for piece, prediction in sorted(
        zip(group.pieces, predictions, strict=True), key=lambda pair: pair[0].end
    ):
        if not np.isfinite(best[piece.start]):
            continue
        score = best[piece.start] + _log_confidence(prediction) + _log_prior(piece, prediction)
        if piece.end < group.boundaries - 1:
            score -= split_cost
        if score > best[piece.end]:
            best[piece.end] = score
            came_from[piece.end] = (piece, prediction)
    chain: list[ReadDigit] = []
    position = group.boundaries - 1
    while position > 0:
        step = came_from[position]
        if step is None:
            return []
        piece, prediction = step
        chain.append(ReadDigit(prediction=prediction, box=piece.box))
        position = piece.start
    return chain[::-1]
