"""Loading the served model with its metrics, the start-up self-test, and classifying uploads."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.classification import DigitClassifier, DigitPrediction
from app.errors import EmptyUploadError, InvalidImageError, ModelLoadError, NoDigitFoundError
from app.imaging.structure import DecodeLimits
from app.inference.dense_network import DenseNetwork
from app.inference.self_test import SELF_TEST_DIGIT, render_self_test_png, run_self_test
from app.inference.serving_model import ServingModel, load_serving_model
from app.model_contract import EVALUATION_FILENAME, MODEL_FILENAME

LIMITS = DecodeLimits(max_pixels=40_000_000)

EncodeImage = Callable[..., bytes]


@pytest.fixture(scope="module")
def serving_model(committed_model_dir: Path) -> ServingModel:
    return load_serving_model(committed_model_dir)


@pytest.fixture()
def model_copy(committed_model_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the committed model folder."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in (MODEL_FILENAME, EVALUATION_FILENAME):
        shutil.copy(committed_model_dir / name, folder / name)
    return folder


def _edit_metrics(folder: Path, **changes: object) -> None:
    path = folder / EVALUATION_FILENAME
    metrics = json.loads(path.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        section, field = dotted.split("__")
        metrics[section][field] = value
    path.write_text(json.dumps(metrics), encoding="utf-8")


def test_load_serving_model_reads_model_and_metrics(
    serving_model: ServingModel, committed_model_dir: Path
) -> None:
    stored = json.loads((committed_model_dir / EVALUATION_FILENAME).read_text(encoding="utf-8"))

    assert serving_model.sha256 == stored["model"]["sha256"]
    assert serving_model.short_sha256 == stored["model"]["sha256"][:12]
    assert serving_model.evaluation.test.accuracy == stored["test"]["accuracy"]
    assert serving_model.archive.parameter_count == stored["model"]["parameters"]


def test_load_serving_model_refuses_missing_metrics(model_copy: Path) -> None:
    (model_copy / EVALUATION_FILENAME).unlink()

    with pytest.raises(ModelLoadError, match="metrics file .* does not exist"):
        load_serving_model(model_copy)


def test_load_serving_model_refuses_metrics_of_another_model(model_copy: Path) -> None:
    _edit_metrics(model_copy, model__sha256="0" * 64)

    with pytest.raises(ModelLoadError, match="the metrics are not this model's"):
        load_serving_model(model_copy)


def test_load_serving_model_refuses_metrics_that_break_the_schema(model_copy: Path) -> None:
    _edit_metrics(model_copy, test__accuracy=1.7)

    with pytest.raises(ModelLoadError, match=r"test\.accuracy"):
        load_serving_model(model_copy)


def test_load_serving_model_refuses_metrics_that_are_not_json(model_copy: Path) -> None:
    (model_copy / EVALUATION_FILENAME).write_text("{truncated", encoding="utf-8")

    with pytest.raises(ModelLoadError, match="is not valid"):
        load_serving_model(model_copy)


def test_load_serving_model_refuses_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_serving_model(tmp_path)


def test_run_self_test_passes_on_committed_model(serving_model: ServingModel) -> None:
    run_self_test(serving_model, LIMITS)

    prediction = DigitClassifier(serving_model, LIMITS).classify(render_self_test_png())
    assert prediction.digit == SELF_TEST_DIGIT


def test_run_self_test_fails_on_a_network_with_blank_weights(serving_model: ServingModel) -> None:
    # All-zero weights give equal probabilities, so argmax says 0 for every image.
    network = serving_model.network
    blank_output = dataclasses.replace(
        network.output_layer,
        kernel=np.zeros_like(network.output_layer.kernel),
        bias=np.zeros_like(network.output_layer.bias),
    )
    broken = dataclasses.replace(
        serving_model, network=DenseNetwork(network.hidden_layers, blank_output)
    )

    with pytest.raises(ModelLoadError, match="self-test failed: a drawn 1 was classified as 0"):
        run_self_test(broken, LIMITS)


def test_classify_upload_recognises_real_digits(
    serving_model: ServingModel,
    mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]],
    encode: EncodeImage,
) -> None:
    images, labels = mnist_sample
    picks = range(0, len(images), 50)

    predictions = [
        DigitClassifier(serving_model, LIMITS).classify(encode(images[index])) for index in picks
    ]

    correct = sum(p.digit == labels[index] for p, index in zip(predictions, picks, strict=True))
    assert correct / len(predictions) >= 0.97
    assert all(p.model_input.shape == (28, 28) for p in predictions)
    assert all(p.confidence == p.probabilities.max() for p in predictions)


def test_classify_uploads_keeps_order_and_reports_errors_in_place(
    serving_model: ServingModel,
    mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]],
    encode: EncodeImage,
) -> None:
    images, labels = mnist_sample
    uploads = [
        encode(images[0]),
        b"",
        encode(images[1500]),
        b"GIF89a-but-not-really",
        encode(np.zeros((28, 28), dtype=np.uint8)),
        encode(images[4999]),
    ]

    outcomes = DigitClassifier(serving_model, LIMITS).classify_many(uploads)

    assert [type(outcome) for outcome in outcomes] == [
        DigitPrediction,
        EmptyUploadError,
        DigitPrediction,
        InvalidImageError,
        NoDigitFoundError,
        DigitPrediction,
    ]
    digits = [o.digit for o in outcomes if isinstance(o, DigitPrediction)]
    assert digits == [labels[0], labels[1500], labels[4999]]


def test_classify_uploads_with_only_bad_uploads_returns_only_errors(
    serving_model: ServingModel,
) -> None:
    outcomes = DigitClassifier(serving_model, LIMITS).classify_many([b"", bytes(range(256))])

    assert [o.code for o in outcomes if not isinstance(o, DigitPrediction)] == [
        "empty_upload",
        "invalid_image",
    ]
