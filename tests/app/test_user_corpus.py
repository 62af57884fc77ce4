"""The user-like corpus (bench/user_corpus.py) is reproducible, and digits as users send them are
classified about as well as the plain MNIST digits they were made from; MNIST digits keep their
predictions when they reach the model through the general preprocessing path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from app.imaging.pipeline import prepare_upload
from app.imaging.preprocess import to_mnist_digit
from app.imaging.structure import DecodeLimits
from app.model_contract import to_model_input
from bench.user_corpus import generate, load_digits, read_labels

MODEL_FILE = Path(__file__).resolve().parents[2] / "models" / "mnist_dense.keras"
MAX_PIXELS = 40_000_000
LIMITS = DecodeLimits(max_pixels=MAX_PIXELS)
Predict = Callable[[NDArray[np.uint8]], NDArray[np.intp]]


@pytest.fixture(scope="module")
def predict() -> Predict:
    """The committed Keras model: MNIST-format digits (n, 28, 28) -> predicted digits."""
    if not MODEL_FILE.is_file():
        pytest.skip(f"the committed model {MODEL_FILE.name} does not exist yet")
    keras = pytest.importorskip("keras")
    model = keras.saving.load_model(MODEL_FILE)

    def run(digits: NDArray[np.uint8]) -> NDArray[np.intp]:
        return np.argmax(model.predict(to_model_input(digits), verbose=0), axis=1)

    return run


def test_user_corpus_is_reproducible(tmp_path: Path) -> None:
    first = generate(tmp_path / "first", count=12, split="test", sample=True)
    second = generate(tmp_path / "second", count=12, split="test", sample=True)
    assert first == second
    assert read_labels(tmp_path / "first") == first
    for item in first:
        assert (tmp_path / "first" / item.file_name).read_bytes() == (
            tmp_path / "second" / item.file_name
        ).read_bytes()


def test_mnist_digits_keep_their_predictions_through_the_general_path(
    predict: Predict, mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]]
) -> None:
    images, _ = mnist_sample
    generator = np.random.default_rng(1)
    moved = []
    for image in images:
        canvas = np.full((70, 50), 255, dtype=np.uint8)
        row, column = generator.integers(0, 70 - 28), generator.integers(0, 50 - 28)
        canvas[row : row + 28, column : column + 28] = 255 - image
        moved.append(to_mnist_digit(Image.fromarray(canvas)))
    agreement = np.mean(predict(np.stack(moved)) == predict(images))
    assert agreement >= 0.999


@pytest.mark.slow
def test_user_like_digits_are_classified_about_as_well_as_plain_digits(
    predict: Predict, tmp_path: Path
) -> None:
    corpus = generate(tmp_path, count=300, split="test", sample=True)
    prepared = np.stack(
        [prepare_upload((tmp_path / item.file_name).read_bytes(), LIMITS) for item in corpus]
    )
    labels = np.array([item.digit for item in corpus])
    plain = load_digits("test", sample=True).images[[item.source_index for item in corpus]]
    corpus_accuracy = float(np.mean(predict(prepared) == labels))
    plain_accuracy = float(np.mean(predict(plain) == labels))
    assert corpus_accuracy >= plain_accuracy - 0.03
