"""Parting touching digits where they touch (:mod:`app.imaging.touch_points`) and the candidate
pieces it adds to a group (:func:`app.imaging.digit_cuts.group_pieces`), on drawn strokes."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from app.imaging.digit_cuts import group_pieces
from app.imaging.number_layout import Box
from app.imaging.touch_points import touching_parts

HEIGHT = 60
PEN = 7


def ink_of(draw: list[tuple[str, list[tuple[int, int]]]], width: int) -> NDArray[np.float32]:
    """Bright strokes on black: ``("line", points)`` polylines and ``("ring", corners)``
    ellipses."""
    image = Image.new("L", (width, HEIGHT), 0)
    pen = ImageDraw.Draw(image)
    for kind, points in draw:
        if kind == "line":
            pen.line(points, fill=255, width=PEN, joint="curve")
        else:
            pen.ellipse([*points[0], *points[1]], outline=255, width=PEN)
    return np.asarray(image, dtype=np.float32) / 255.0


ZERO_ONE = [
    # A 0 and a 1 written against it: the 1's stroke lies on the 0's right side.
    ("ring", [(4, 3), (36, 56)]),
    ("line", [(40, 4), (40, 56)]),
]
ZERO = [("ring", [(6, 3), (40, 56)])]


def box_of(top: int, left: int, bottom: int, right: int) -> Box:
    return Box(x=left, y=top, width=right - left, height=bottom - top)


def test_two_digits_touching_at_a_point_fall_apart_left_to_right() -> None:
    ink = ink_of(ZERO_ONE, 48)
    parts = touching_parts(ink, HEIGHT)
    assert parts is not None
    assert int(parts.max()) == 1
    # Every stroke pixel is given to a part: the 0 on the left, the 1 on the right.
    assert (parts[ink >= 0.5] >= 0).all()
    assert parts[30, 6] == 0 and parts[5, 20] == 0 and parts[52, 20] == 0
    assert parts[5, 40] == 1 and parts[52, 40] == 1


def test_one_digit_does_not_fall_apart_and_a_narrow_group_is_not_thinned() -> None:
    assert touching_parts(ink_of(ZERO, 46), HEIGHT) is None
    one = ink_of([("line", [(10, 4), (10, 56)])], 20)
    assert touching_parts(one, HEIGHT) is None


def test_group_pieces_offers_the_parts_beside_the_whole_and_the_cuts() -> None:
    ink = ink_of(ZERO_ONE, 48)
    group = group_pieces(ink, float(HEIGHT), box_of)
    assert group is not None
    right_edge = group.boundaries - 1
    assert all(0 <= piece.start < piece.end <= right_edge for piece in group.pieces)
    whole = [piece for piece in group.pieces if not piece.cut]
    assert len(whole) == 1 and (whole[0].start, whole[0].end) == (0, right_edge)
    # The two parts are candidates: one piece from the left edge to a border, the other from
    # that border to the right edge, the first as wide as the 0 and the second as the 1.
    firsts = {piece.end: piece for piece in group.pieces if piece.cut and piece.start == 0}
    pairs = [
        (firsts[piece.start], piece)
        for piece in group.pieces
        if piece.cut and piece.end == right_edge and piece.start in firsts
    ]
    assert any(first.box.width >= 30 and second.box.width <= 10 for first, second in pairs), pairs
