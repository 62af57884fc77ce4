"""The page's number mode and its honest verdicts, in headless Chromium against the real service:
a number written with the mouse is read back with a box per digit, and a letter drawn in
single-digit mode is called what it is, not a digit."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.e2e.test_page import Point, draw_with_mouse, shown_digit, shown_percentages

pytestmark = pytest.mark.browser

CELL_WIDTH = 0.14
"""A digit's width on the wide number pad, as a fraction of the pad's width."""


def in_cell(index: int, stroke: list[Point]) -> list[Point]:
    """A stroke drawn in a digit's unit cell, placed as the ``index``-th digit of a number on
    the wide pad (cells 0.22 of the width apart, 0.7 of the height tall)."""
    centre = 0.16 + 0.22 * index
    return [(centre + (u - 0.5) * CELL_WIDTH, 0.15 + v * 0.7) for u, v in stroke]


TWO: list[Point] = [
    (0.1, 0.25),
    (0.3, 0.04),
    (0.7, 0.04),
    (0.9, 0.25),
    (0.85, 0.45),
    (0.1, 0.96),
    (0.95, 0.96),
]
ZERO: list[Point] = [
    (0.5 + 0.45 * math.sin(2 * math.pi * step / 32), 0.5 - 0.47 * math.cos(2 * math.pi * step / 32))
    for step in range(33)
]
SIX: list[Point] = [
    (0.8, 0.04),
    (0.45, 0.2),
    (0.15, 0.55),
    (0.15, 0.8),
    (0.45, 0.97),
    (0.8, 0.85),
    (0.85, 0.65),
    (0.55, 0.5),
    (0.2, 0.62),
]
LETTER_X: list[list[Point]] = [[(0.25, 0.2), (0.75, 0.8)], [(0.75, 0.2), (0.25, 0.8)]]
NOT_A_DIGIT = "This does not look like a digit"


def choose_number_mode(page: Any) -> None:
    page.get_by_label("A number").check()
    page.wait_for_function("() => document.body.dataset.mode === 'number'")


def test_number_mode_reads_2026_written_with_the_mouse(desktop_page: Any) -> None:
    choose_number_mode(desktop_page)
    pad = desktop_page.locator("#pad")
    assert pad.evaluate("canvas => canvas.width / canvas.height") > 2

    strokes = [in_cell(index, stroke) for index, stroke in enumerate([TWO, ZERO, TWO, SIX])]
    draw_with_mouse(desktop_page, strokes)

    assert desktop_page.locator("#result").get_attribute("data-state") == "done"
    assert shown_digit(desktop_page) == "2026"
    digits = desktop_page.locator("#number-digits > li")
    assert digits.count() == 4
    assert [digits.nth(index).inner_text().split(":")[0] for index in range(4)] == list("2026")
    assert "%" in digits.nth(0).inner_text()
    # The boxes are drawn over the pad, one per digit, where the digits were written.
    drawn = desktop_page.locator("#boxes").evaluate(
        """canvas => {
            const context = canvas.getContext('2d');
            const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
            const columns = new Set();
            for (let index = 3; index < data.length; index += 4) {
                if (data[index] > 0) columns.add(((index - 3) / 4) % canvas.width);
            }
            return [...columns].map((column) => column / canvas.width);
        }"""
    )
    for index in range(4):
        centre = 0.16 + 0.22 * index
        assert any(abs(column - centre) < CELL_WIDTH for column in drawn)


def test_number_mode_switches_back_to_one_digit(desktop_page: Any) -> None:
    choose_number_mode(desktop_page)
    desktop_page.get_by_label("One digit").check()

    assert desktop_page.evaluate("() => document.body.dataset.mode") == "digit"
    assert desktop_page.locator("#pad").evaluate("canvas => canvas.width === canvas.height")
    assert desktop_page.locator("#chart").is_visible()


def test_draw_letter_x_says_it_is_not_a_digit(desktop_page: Any) -> None:
    draw_with_mouse(desktop_page, LETTER_X)

    assert desktop_page.locator("#result").get_attribute("data-state") == "done"
    assert NOT_A_DIGIT in desktop_page.locator("#confidence").inner_text()
    assert shown_digit(desktop_page) == "?"
    # The probability bars stay.
    assert sum(shown_percentages(desktop_page)) == pytest.approx(100.0, abs=0.6)


def test_draw_two_digits_in_single_mode_says_several_digits(desktop_page: Any) -> None:
    # A 1 and a 7 side by side on the square pad, each half the pad wide.
    one = [(0.25, 0.25), (0.25, 0.75)]
    seven = [(0.55, 0.25), (0.85, 0.25), (0.68, 0.75)]
    draw_with_mouse(desktop_page, [one, seven])

    assert desktop_page.locator("#result").get_attribute("data-state") == "done"
    assert "This looks like several digits" in desktop_page.locator("#confidence").inner_text()
    assert shown_digit(desktop_page) == "?"
