"""``POST /predict/batch``: results in the order of the files, a bad file reported in its place
while the others are classified, and request-level errors for the batch as a whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray

from app.api.schemas import BatchPredictionResponse
from app.core.config import Settings
from tests.conftest import client_with

EncodeImage = Callable[..., bytes]
Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]
FilePart = tuple[str, tuple[str, bytes, str]]


def _parts(*uploads: tuple[bytes, str]) -> list[FilePart]:
    return [("file", (f"image{index}", data, kind)) for index, (data, kind) in enumerate(uploads)]


def _error_of(response_json: dict[str, object], code: str) -> None:
    error = response_json["error"]
    assert isinstance(error, dict)
    assert set(response_json) == {"error"}
    assert error == {"code": code, "message": error["message"], "request_id": error["request_id"]}


def test_predict_batch_answers_in_order(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, labels = mnist_sample
    picks = [4999, 0, 2500, 1000, 3000, 1500, 500, 4000, 2000, 3500]  # every digit, shuffled

    response = client.post(
        "/predict/batch", files=_parts(*[(encode(images[i]), "image/png") for i in picks])
    )

    assert response.status_code == 200
    body = BatchPredictionResponse.model_validate(response.json())
    assert [result.index for result in body.results] == list(range(len(picks)))
    assert all(result.status == 200 and result.error is None for result in body.results)
    digits = [result.prediction.digit for result in body.results if result.prediction]
    assert digits == [labels[i] for i in picks]
    assert body.model_sha256 == client.get("/model").json()["sha256"][:12]


def test_predict_batch_reports_bad_files_in_place(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, labels = mnist_sample
    uploads = [
        (encode(images[700]), "image/png"),
        (b"", "image/png"),
        (b"plain text, not a picture", "text/plain"),
        (encode(np.zeros((64, 64), np.uint8)), "image/png"),
        (bytes(range(256)) * 4, "image/jpeg"),
        (encode(images[4200]), "image/png"),
    ]

    response = client.post("/predict/batch", files=_parts(*uploads))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, 200),
        (1, 400),
        (2, 415),
        (3, 422),
        (4, 400),
        (5, 200),
    ]
    assert [r["error"]["code"] for r in results if r["error"]] == [
        "empty_upload",
        "unsupported_media_type",
        "no_digit_found",
        "invalid_image",
    ]
    assert all(r["prediction"] is None for r in results if r["error"])
    assert [results[0]["prediction"]["digit"], results[5]["prediction"]["digit"]] == [
        labels[700],
        labels[4200],
    ]


def test_predict_batch_of_only_bad_files_still_answers_each(client: TestClient) -> None:
    response = client.post("/predict/batch", files=_parts((b"", "image/png"), (b"", "image/png")))

    assert response.status_code == 200
    assert [r["error"]["code"] for r in response.json()["results"]] == ["empty_upload"] * 2


def test_predict_batch_matches_single_predictions(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, _ = mnist_sample
    data = [encode(images[i]) for i in (11, 2222, 3333)]

    batch = client.post("/predict/batch", files=_parts(*[(d, "image/png") for d in data])).json()
    singles = [
        client.post("/predict", files={"file": ("d.png", d, "image/png")}).json() for d in data
    ]

    for result, single in zip(batch["results"], singles, strict=True):
        assert result["prediction"]["digit"] == single["digit"]
        np.testing.assert_allclose(
            result["prediction"]["probabilities"], single["probabilities"], atol=1e-6
        )


@pytest.fixture(scope="module")
def batch_of_three_client(serving_settings: Settings) -> Iterator[TestClient]:
    """The app with MAX_BATCH_FILES = 3."""
    with client_with(serving_settings, {"MAX_BATCH_FILES": 3}) as test_client:
        yield test_client


def test_predict_batch_at_max_files_is_answered(
    batch_of_three_client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, _ = mnist_sample

    response = batch_of_three_client.post(
        "/predict/batch", files=_parts(*[(encode(images[i]), "image/png") for i in range(3)])
    )

    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_predict_batch_over_max_files_is_413(
    batch_of_three_client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, _ = mnist_sample

    response = batch_of_three_client.post(
        "/predict/batch", files=_parts(*[(encode(images[i]), "image/png") for i in range(4)])
    )

    assert response.status_code == 413
    _error_of(response.json(), "too_many_files")
    assert "at most 3" in response.json()["error"]["message"]


def test_predict_batch_without_file_parts_is_422(client: TestClient) -> None:
    response = client.post("/predict/batch", files={"images": ("a.png", b"x", "image/png")})

    assert response.status_code == 422
    _error_of(response.json(), "missing_file")


def test_predict_batch_raw_body_is_415(client: TestClient, encode: EncodeImage) -> None:
    response = client.post(
        "/predict/batch",
        content=encode(np.zeros((28, 28), np.uint8)),
        headers={"Content-Type": "image/png"},
    )

    assert response.status_code == 415
    _error_of(response.json(), "unsupported_media_type")


def test_predict_batch_malformed_multipart_is_400(client: TestClient) -> None:
    response = client.post(
        "/predict/batch",
        content=b"garbage",
        headers={"Content-Type": "multipart/form-data; boundary=q"},
    )

    assert response.status_code == 400
    _error_of(response.json(), "invalid_multipart")
