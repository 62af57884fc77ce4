"""Digits typed in fonts for training: drawn, preprocessed, labelled, seeded and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.imaging.preprocess import is_mnist_format
from training.cache import CACHE_ENVIRONMENT_VARIABLE
from training.typed_digits import digit_fonts, render_typed_digits, type_digit


def test_pillows_own_font_draws_the_ten_digits() -> None:
    assert None in digit_fonts()


def test_every_typed_digit_has_ink() -> None:
    for seed in range(30):
        drawing = np.asarray(type_digit(np.random.default_rng(seed), seed % 10))
        assert int(drawing.max()) - int(drawing.min()) > 100, seed


def test_typed_digits_are_balanced_preprocessed_seeded_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENVIRONMENT_VARIABLE, str(tmp_path))
    first = render_typed_digits(20, seed=3)
    assert first.images.dtype == np.uint8 and first.images.shape[1:] == (28, 28)
    assert 18 <= len(first) <= 20 and len(first.labels) == len(first)
    assert set(first.labels.tolist()) == set(range(10))
    assert all(is_mnist_format(image) for image in first.images)
    assert len(list(tmp_path.glob("typed-*.npz"))) == 1
    again = render_typed_digits(20, seed=3)
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert len(render_typed_digits(0, seed=3)) == 0
