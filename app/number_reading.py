"""Reading a number: the classifier's predictions for the candidate digits of a
:class:`~app.imaging.number_layout.NumberLayout` turned into one reading.

Each group of ink is read as the chain of its candidate pieces, from its left edge to its right
one, that is most probable: the sum over the chain of each piece's log confidence and a prior
on its shape (:func:`_log_prior`: too wide for one digit, too narrow for any but a 1), found
by dynamic programming over the cut positions. So a cut between touching digits is chosen by
the classifier's confidence in the digits it leaves.

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

if TYPE_CHECKING:
    # The classifier imports this module; its prediction type is only named here.
    from app.classification import DigitPrediction

_SMALLEST_PROBABILITY = 1e-12
"""Confidences are floored at this before their logarithm is taken."""

PIECE_LOG_PRIOR = math.log(0.3)
"""Every piece costs this much (natural log): splitting a group in two must be read about
three times as confidently as keeping it whole. This and the penalties below were chosen on
generated numbers (``bench.number_images``, MNIST test digits), never on the development set."""

WIDE_DIGIT_WIDTH = 1.0
WIDE_PENALTY = 4.0
"""A piece wider than :data:`WIDE_DIGIT_WIDTH` of its line's height costs
:data:`WIDE_PENALTY` (log) per unit of extra width: two touching digits are wider than
one."""

NOT_A_DIGIT_PENALTY = 1.0
"""A piece the classifier does not take for one digit (``is_digit`` false) costs this much
(log), beyond its low confidence."""

NARROW_DIGIT_WIDTH = 0.35
NARROW_PENALTY = 20.0
"""A piece cut out of a group, narrower than :data:`NARROW_DIGIT_WIDTH` of its line's height
and read as another digit than 1, costs :data:`NARROW_PENALTY` (log) per unit of missing
width: only a 1 is that narrow (in MNIST's test split 95 % of the other digits are at least
0.5 as wide as tall), while a sliver of a 0 or an 8 is often read as some digit."""


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
    prior = PIECE_LOG_PRIOR - WIDE_PENALTY * max(0.0, piece.width - WIDE_DIGIT_WIDTH)
    if not prediction.is_digit:
        prior -= NOT_A_DIGIT_PENALTY
    if piece.cut and prediction.digit != 1:
        prior -= NARROW_PENALTY * max(0.0, NARROW_DIGIT_WIDTH - piece.width)
    return prior


def _best_chain(group: InkGroup, predictions: Sequence[DigitPrediction]) -> list[ReadDigit]:
    """The most probable chain of pieces across ``group`` (see the module's docstring)."""
    best = np.full(group.boundaries, -np.inf)
    best[0] = 0.0
    came_from: list[tuple[InkPiece, DigitPrediction] | None] = [None] * group.boundaries
    for piece, prediction in sorted(
        zip(group.pieces, predictions, strict=True), key=lambda pair: pair[0].end
    ):
        if not np.isfinite(best[piece.start]):
            continue
        confidence = max(float(prediction.confidence), _SMALLEST_PROBABILITY)
        score = best[piece.start] + math.log(confidence) + _log_prior(piece, prediction)
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
