"""Shared fixtures of the training tests: tiny IDX data sets written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from training.datasets import IDX_FILE_STEMS
from training.idx_files import write_idx

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The project's root folder (where pyproject.toml is)."""


def random_digits(count: int, seed: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Return ``count`` random 28 x 28 uint8 images and labels 0-9 (every digit present)."""
    random = np.random.default_rng(seed)
    images = random.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    return images, labels


def write_idx_folder(
    folder: Path, *, compress: bool, train_count: int = 30, test_count: int = 20
) -> Path:
    """Write the four MNIST IDX files of a tiny random data set into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for split, count, seed in (("train", train_count, 1), ("test", test_count, 2)):
        images, labels = random_digits(count, seed)
        write_idx(
            folder / f"{IDX_FILE_STEMS[f'{split}_images']}{suffix}", images, compress=compress
        )
        write_idx(
            folder / f"{IDX_FILE_STEMS[f'{split}_labels']}{suffix}", labels, compress=compress
        )
    return folder


@pytest.fixture
def idx_folder(tmp_path: Path) -> Path:
    """A folder holding a tiny, valid, gzip-compressed MNIST in IDX format."""
    return write_idx_folder(tmp_path / "mnist", compress=True)
