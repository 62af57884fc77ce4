"""``POST /predict`` on good images: multipart and raw body, formats, the model-input preview,
and accuracy on real MNIST digits sent as PNG files."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from app.api.schemas import PredictionResponse
from app.core.config import Settings
from app.imaging.pipeline import prepare_upload
from app.imaging.structure import DecodeLimits
from tests.conftest import client_with

EncodeImage = Callable[..., bytes]
Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]

LIMITS = DecodeLimits(max_pixels=40_000_000)


def _post_file(
    client: TestClient, data: bytes, content_type: str = "image/png"
) -> dict[str, object]:
    response = client.post("/predict", files={"file": ("digit.png", data, content_type)})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_predict_multipart_png_answers_digit_confidence_probabilities(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, labels = mnist_sample

    response = client.post(
        "/predict", files={"file": ("seven.png", encode(images[3500]), "image/png")}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = PredictionResponse.model_validate(response.json())
    assert body.digit == labels[3500]
    assert len(body.probabilities) == 10
    assert sum(body.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert body.confidence == max(body.probabilities)
    assert body.probabilities.index(body.confidence) == body.digit
    assert body.input_image is None
    assert body.is_digit is True and body.reason is None
    assert set(response.json()) == {
        "digit",
        "confidence",
        "is_digit",
        "reason",
        "probabilities",
        "model_sha256",
    }


def test_predict_reports_model_identity(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, _ = mnist_sample
    sha256 = client.get("/model").json()["sha256"]

    body = _post_file(client, encode(images[0]))

    assert body["model_sha256"] == sha256[:12]


@pytest.mark.parametrize(
    "content_type", ["image/png", "application/octet-stream", "image/x-anything"]
)
def test_predict_raw_body_answers_like_multipart(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage, content_type: str
) -> None:
    images, _ = mnist_sample
    data = encode(images[1234])

    raw = client.post("/predict", content=data, headers={"Content-Type": content_type})

    assert raw.status_code == 200, raw.text
    assert raw.json() == _post_file(client, data)


@pytest.mark.parametrize(
    ("image_format", "options"),
    [
        ("JPEG", {"quality": 92}),
        ("BMP", {}),
        ("GIF", {}),
        ("WEBP", {"lossless": True}),
        ("TIFF", {}),
    ],
)
def test_predict_accepts_other_formats(
    client: TestClient,
    mnist_sample: Sample,
    encode: EncodeImage,
    image_format: str,
    options: dict[str, object],
) -> None:
    images, labels = mnist_sample
    # A larger rendering, dark ink on white, as a scan would be.
    digit = 255 - np.asarray(
        Image.fromarray(images[2600]).resize((112, 112), Image.Resampling.BILINEAR)
    )

    body = _post_file(
        client, encode(digit, image_format, **options), f"image/{image_format.lower()}"
    )

    assert body["digit"] == labels[2600]


def test_predict_include_input_returns_the_digit_the_model_saw(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, _ = mnist_sample
    data = encode(images[42])

    response = client.post(
        "/predict?include_input=true", files={"file": ("d.png", data, "image/png")}
    )

    assert response.status_code == 200
    preview = Image.open(io.BytesIO(base64.b64decode(response.json()["input_image"])))
    assert preview.format == "PNG"
    assert preview.size == (28, 28)
    assert preview.mode == "L"
    np.testing.assert_array_equal(np.asarray(preview), prepare_upload(data, LIMITS))


def test_predict_include_input_works_on_raw_body(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, _ = mnist_sample

    response = client.post(
        "/predict",
        params={"include_input": "true"},
        content=encode(images[7]),
        headers={"Content-Type": "image/png"},
    )

    assert response.status_code == 200
    assert base64.b64decode(response.json()["input_image"]).startswith(b"\x89PNG")


def test_predict_real_mnist_digits_as_png_at_model_accuracy(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage, committed_model_dir: Path
) -> None:
    images, labels = mnist_sample
    picks = np.arange(0, len(images), 5)  # 1,000 digits, 100 of each class

    predicted = np.array([_post_file(client, encode(images[index]))["digit"] for index in picks])

    accuracy = float(np.mean(predicted == labels[picks]))
    stored_accuracy = client.get("/metrics").json()["test"]["accuracy"]
    assert accuracy >= stored_accuracy - 0.015, (accuracy, stored_accuracy)


@pytest.fixture(scope="module")
def threadpool_client(serving_settings: Settings) -> Iterator[TestClient]:
    """The app with every upload classified in the threadpool (nothing inline)."""
    with client_with(serving_settings, {"INLINE_MAX_PIXELS": 0}) as test_client:
        yield test_client


def test_predict_gives_same_answer_inline_and_in_threadpool(
    client: TestClient, threadpool_client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, _ = mnist_sample
    small_png = encode(images[99])
    large_jpeg = encode(
        np.asarray(Image.fromarray(255 - images[99]).resize((600, 600))), "JPEG", quality=90
    )

    for data in (small_png, large_jpeg):
        inline = client.post("/predict", content=data, headers={"Content-Type": "image/png"})
        offloaded = threadpool_client.post(
            "/predict", content=data, headers={"Content-Type": "image/png"}
        )
        assert inline.status_code == offloaded.status_code == 200
        assert inline.json() == offloaded.json()
