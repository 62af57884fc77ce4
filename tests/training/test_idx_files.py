"""The IDX reader: good files, compressed or not, and every kind of damage named by file."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from training.datasets import IDX_FILE_STEMS, load_idx_folder
from training.idx_files import DatasetError, read_idx_images, read_idx_labels, write_idx


def _images(count: int = 3, side: int = 28) -> np.ndarray:
    """Return ``count`` distinct images with a recognisable pixel pattern."""
    return (np.arange(count * side * side) % 251).astype(np.uint8).reshape(count, side, side)


@pytest.mark.parametrize("compress", [True, False])
def test_read_images_returns_stored_pixels(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / ("images.gz" if compress else "images")
    images = _images()
    write_idx(path, images, compress=compress)
    read = read_idx_images(path)
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, images)


@pytest.mark.parametrize("compress", [True, False])
def test_read_labels_returns_stored_digits(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / "labels.gz"
    labels = np.array([7, 0, 9, 3], dtype=np.uint8)
    write_idx(path, labels, compress=compress)
    np.testing.assert_array_equal(read_idx_labels(path), labels)


def test_read_images_written_by_hand_matches_published_layout(tmp_path: Path) -> None:
    # The header bytes written here by hand follow the published MNIST description.
    path = tmp_path / "hand-made-idx3-ubyte"
    pixels = bytes(index % 256 for index in range(2 * 28 * 28))
    path.write_bytes(struct.pack(">IIII", 0x00000803, 2, 28, 28) + pixels)
    read = read_idx_images(path)
    assert read.shape == (2, 28, 28)
    assert read[0, 0, 5] == 5
    assert read[1, 0, 0] == (28 * 28) % 256


def test_read_images_truncated_names_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, _images(), compress=False)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: truncated IDX file"):
        read_idx_images(path)


def test_read_images_truncated_header_names_file(tmp_path: Path) -> None:
    path = tmp_path / "short-images"
    path.write_bytes(struct.pack(">II", 0x00000803, 5))
    with pytest.raises(DatasetError, match=r"short-images: truncated IDX header"):
        read_idx_images(path)


def test_read_images_empty_file_names_file(tmp_path: Path) -> None:
    path = tmp_path / "empty-images"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty-images: truncated IDX file \(0 bytes"):
        read_idx_images(path)


def test_read_images_truncated_gzip_names_file(tmp_path: Path) -> None:
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(path, _images(), compress=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(
        DatasetError, match=r"t10k-images-idx3-ubyte.gz: the gzip stream is damaged"
    ):
        read_idx_images(path)


def test_read_images_extra_bytes_names_file(tmp_path: Path) -> None:
    path = tmp_path / "padded-images"
    write_idx(path, _images(), compress=False)
    path.write_bytes(path.read_bytes() + b"\x00" * 7)
    with pytest.raises(DatasetError, match=r"padded-images: 7 unexpected bytes"):
        read_idx_images(path)


def test_read_images_given_label_file_reports_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(path, np.zeros(4, dtype=np.uint8), compress=True)
    with pytest.raises(
        DatasetError, match=r"train-labels-idx1-ubyte.gz: wrong magic number 0x00000801"
    ):
        read_idx_images(path)


def test_read_labels_not_idx_reports_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("7,2,1,0,4\n")
    with pytest.raises(DatasetError, match=r"labels.txt: wrong magic number"):
        read_idx_labels(path)


def test_read_images_wrong_shape_names_file(tmp_path: Path) -> None:
    path = tmp_path / "small-images.gz"
    write_idx(path, _images(side=27), compress=True)
    with pytest.raises(DatasetError, match=r"small-images.gz: images are 27x27 pixels"):
        read_idx_images(path)


def test_read_labels_out_of_range_names_file(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    write_idx(path, np.array([1, 10], dtype=np.uint8), compress=False)
    with pytest.raises(DatasetError, match=r"labels: label 10 is not a digit"):
        read_idx_labels(path)


def test_read_images_missing_file_names_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"absent-images: cannot read the file"):
        read_idx_images(tmp_path / "absent-images")


@pytest.mark.parametrize("compress", [True, False])
def test_load_idx_folder_reads_all_four_files(tmp_path: Path, compress: bool) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    train_images, test_images = _images(5), _images(2)
    write_idx(
        folder / f"{IDX_FILE_STEMS['train_images']}{'.gz' * compress}",
        train_images,
        compress=compress,
    )
    write_idx(
        folder / f"{IDX_FILE_STEMS['train_labels']}{'.gz' * compress}",
        np.arange(5, dtype=np.uint8),
        compress=compress,
    )
    write_idx(
        folder / f"{IDX_FILE_STEMS['test_images']}{'.gz' * compress}",
        test_images,
        compress=compress,
    )
    write_idx(
        folder / f"{IDX_FILE_STEMS['test_labels']}{'.gz' * compress}",
        np.array([8, 9], dtype=np.uint8),
        compress=compress,
    )
    data = load_idx_folder(folder)
    assert data.source == "idx"
    np.testing.assert_array_equal(data.train.images, train_images)
    np.testing.assert_array_equal(data.test.labels, [8, 9])
    assert sorted(data.files) == sorted(path.name for path in folder.iterdir())
    assert all(len(digest) == 64 for digest in data.files.values())


def test_load_idx_folder_count_mismatch_names_both_files(idx_folder: Path) -> None:
    labels_path = idx_folder / f"{IDX_FILE_STEMS['test_labels']}.gz"
    write_idx(labels_path, np.zeros(19, dtype=np.uint8), compress=True)
    with pytest.raises(DatasetError) as raised:
        load_idx_folder(idx_folder)
    message = str(raised.value)
    assert "t10k-images-idx3-ubyte.gz holds 20 images" in message
    assert "t10k-labels-idx1-ubyte.gz holds 19 labels" in message


def test_load_idx_folder_missing_file_says_how_to_fix(idx_folder: Path) -> None:
    (idx_folder / f"{IDX_FILE_STEMS['train_labels']}.gz").unlink()
    with pytest.raises(DatasetError, match=r"no train-labels-idx1-ubyte.gz .*--data PATH"):
        load_idx_folder(idx_folder)


def test_write_idx_compressed_is_plain_gzip(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    write_idx(path, np.array([1, 2], dtype=np.uint8), compress=True)
    assert gzip.decompress(path.read_bytes()) == struct.pack(">II", 0x801, 2) + b"\x01\x02"
