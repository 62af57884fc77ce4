"""Synthetic not-a-digit images for outlier exposure: drawn, preprocessed, seeded, cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.imaging.preprocess import is_mnist_format
from training.cache import CACHE_ENVIRONMENT_VARIABLE
from training.datasets import DigitSet
from training.outliers import GLYPHS, render_outlier, render_outliers

Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]


def test_glyphs_leave_out_letters_written_like_digits() -> None:
    for lookalike in "OoIlSsZzBbgq|/":
        assert lookalike not in GLYPHS


def test_every_drawing_has_ink(mnist_sample: Sample) -> None:
    images, _ = mnist_sample
    for seed in range(60):
        drawing = np.asarray(render_outlier(np.random.default_rng(seed), images[:5]))
        assert int(drawing.max()) - int(drawing.min()) > 100, seed


def test_outliers_are_preprocessed_seeded_and_cached(
    mnist_sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENVIRONMENT_VARIABLE, str(tmp_path))
    images, labels = mnist_sample
    digits = DigitSet(images=images[:200], labels=labels[:200].astype(np.uint8))
    first = render_outliers(digits, 24, seed=5)
    assert first.dtype == np.uint8 and first.shape[1:] == (28, 28)
    assert 20 <= len(first) <= 24
    assert all(is_mnist_format(image) for image in first)
    assert len(list(tmp_path.glob("outliers-*.npz"))) == 1
    np.testing.assert_array_equal(render_outliers(digits, 24, seed=5), first)
    for cached in tmp_path.glob("outliers-*.npz"):
        cached.unlink()
    np.testing.assert_array_equal(render_outliers(digits, 24, seed=5), first)
    assert not np.array_equal(render_outliers(digits, 24, seed=6)[:20], first[:20])
