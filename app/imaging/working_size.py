"""How far a large image may be shrunk before any per-pixel work, and still keep its digit.

Every step after decoding costs time in proportion to the pixel count, so a big upload is reduced
first: by JPEG draft decoding (DCT scaling, almost free) and by box averaging. A digit may be a
small part of a big photo, though, so the reduced image keeps its longest side at or above
:data:`WORKING_MIN_SIDE`: a digit that fills a tenth of the frame still spans about 25 pixels
there, more than the 20 pixels it will finally be drawn with.
"""

from __future__ import annotations

WORKING_MIN_SIDE = 256
"""The longest side of the image the preprocessing works on is never reduced below this."""


def working_size(size: tuple[int, int], side: int = WORKING_MIN_SIDE) -> tuple[int, int]:
    """The size (width, height) to which an image of ``size`` is shrunk before per-pixel work:
    the longest side becomes ``side`` (by default :data:`WORKING_MIN_SIDE`), the aspect ratio
    is kept, and an image that is already small keeps its size.

    >>> working_size((900, 600)), working_size((28, 28))
    ((256, 171), (28, 28))
    """
    width, height = size
    longest = max(width, height)
    if longest <= side:
        return size
    scale = side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def reduction_factor(size: tuple[int, int], min_side: int = WORKING_MIN_SIDE) -> int:
    """The integer factor by which an image of ``size`` (width, height) may be shrunk.

    The result keeps the longest side at or above ``min_side`` (by default
    :data:`WORKING_MIN_SIDE`); it is 1 for an image that is already small.

    >>> reduction_factor((900, 600)), reduction_factor((28, 28))
    (3, 1)
    """
    return max(1, max(size) // min_side)
