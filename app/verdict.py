"""Whether an image shows one handwritten digit: the ``is_digit`` and ``reason`` of an answer.

The network always answers one of ten digits; the verdict says whether to believe it:

* ``several_digits``: the preprocessing found digit-sized pieces of ink side by side
  (:mod:`app.imaging.layout`), so the image is a number, not a digit;
* otherwise, if the calibrated confidence (the top probability; the model was trained to spread
  its belief evenly over the ten digits on what is not a digit, and its temperature was fitted
  on held-out digits) is below the threshold chosen on validation data and stored with the
  model (``metrics.json``, ``not_a_digit.threshold``; ``DIGIT_CONFIDENCE_THRESHOLD`` overrides
  it):

  * ``low_confidence`` when two digits share almost all the belief
    (:data:`AMBIGUOUS_PAIR_MASS`): a digit, but which one is unclear, "a 4 or a 9?";
  * ``not_a_digit`` when the belief is spread wider: a letter, a symbol, a scribble.

>>> judge(np.array([0.02, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.48]), 0.6, 1).reason
'low_confidence'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

Reason = Literal["not_a_digit", "several_digits", "low_confidence"]

AMBIGUOUS_PAIR_MASS: Final = 0.8
"""An unsure answer is ``low_confidence`` (a digit, but which?) when the two most probable
digits hold at least this much of the belief, ``not_a_digit`` otherwise."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the image shows one digit, and if not, why not."""

    is_digit: bool
    reason: Reason | None


DIGIT: Final = Verdict(is_digit=True, reason=None)


def judge(probabilities: NDArray[np.float32], threshold: float, separate_digits: int) -> Verdict:
    """The verdict on one image: its calibrated ``probabilities`` (shape (10,)), the model's
    confidence ``threshold`` and the digit-sized pieces the preprocessing found side by side."""
    if separate_digits >= 2:
        return Verdict(is_digit=False, reason="several_digits")
    top_two = np.partition(probabilities, -2)[-2:]
    if float(top_two[1]) >= threshold:
        return DIGIT
    if float(top_two.sum()) >= AMBIGUOUS_PAIR_MASS:
        return Verdict(is_digit=False, reason="low_confidence")
    return Verdict(is_digit=False, reason="not_a_digit")
