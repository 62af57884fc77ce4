"""What the segmentation of a number hands to the classifier: where the digits may be, already
drawn as 28 x 28 MNIST digits, line by line.

These are plain, picklable values: the segmentation runs in a decoder process of the sandbox
(:mod:`app.imaging.sandbox`) and the worker, which holds the model, decides among the ways of
cutting touching digits apart (:mod:`app.number_reading`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in the uploaded image's pixels: left, top, width and height."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class InkPiece:
    """The ink between two of a group's cut positions, drawn as one 28 x 28 digit."""

    start: int
    """Index of the position where the piece begins (0: the group's left edge)."""
    end: int
    """Index of the position where it ends (``boundaries - 1``: the group's right edge)."""
    digit_image: NDArray[np.uint8]
    box: Box
    width: float
    """The piece's ink width as a fraction of its line's digit height."""
    cut: bool
    """Whether the piece was cut out of a wider group (not the whole group)."""


@dataclass(frozen=True, slots=True)
class InkGroup:
    """One group of ink in a line: one digit, or several digits that touch.

    ``boundaries`` is the number of positions between candidate digits, the two edges
    included: 0 is the left edge, ``boundaries - 1`` the right one, and the others are cut
    paths (:mod:`app.imaging.digit_cuts`) or borders between the parts of a group parted where
    its digits touch (:mod:`app.imaging.touch_points`). ``pieces`` are the candidate digits
    between two positions (the whole group, from 0 to ``boundaries - 1``, always among them
    when it can be drawn), each ending at a higher position than it starts. Reading the group
    means choosing a chain of pieces from the left edge to the right one.
    """

    boundaries: int
    pieces: tuple[InkPiece, ...]


@dataclass(frozen=True, slots=True)
class NumberLayout:
    """The groups of ink of an image, line by line from top to bottom, each line left to
    right."""

    lines: tuple[tuple[InkGroup, ...], ...]

    @property
    def piece_count(self) -> int:
        """How many candidate digits the layout holds (the classifier reads each)."""
        return sum(len(group.pieces) for line in self.lines for group in line)
