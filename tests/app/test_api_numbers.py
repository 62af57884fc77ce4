"""``POST /predict/number`` through the app (lifespan run, real model, decoder sandbox): real
MNIST digits composed into numbers, the response's schema and boxes, errors and limits."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image
from pydantic import SecretStr

from app.api.schemas import NumberResponse
from app.core.config import Settings
from app.main import create_app
from bench.number_images import NumberImage, compose_number
from tests.conftest import client_with

Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]


def spaced_number(sample: Sample, length: int, seed: int, **options: object) -> NumberImage:
    """A number of ``length`` real MNIST digits with normal gaps (none touching)."""
    images, labels = sample
    generator = np.random.default_rng(seed)
    chosen = generator.choice(len(images), size=length, replace=False)
    return compose_number(
        [images[index] for index in chosen],
        [int(labels[index]) for index in chosen],
        generator,
        gaps=["normal"] * (length - 1),
        **options,  # type: ignore[arg-type]
    )


def post_number(client: TestClient, number: NumberImage) -> dict[str, object]:
    response = client.post(
        "/predict/number", files={"file": ("number", number.data, number.content_type)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_predict_number_reads_spaced_mnist_numbers(
    client: TestClient, mnist_sample: Sample
) -> None:
    numbers = [
        spaced_number(mnist_sample, 2 + seed % 5, seed, style=("canvas", "photo")[seed % 2])
        for seed in range(10)
    ]

    readings = [post_number(client, number)["text"] for number in numbers]

    exact = sum(reading == number.text for reading, number in zip(readings, numbers, strict=True))
    assert exact >= 9, list(zip(readings, [number.text for number in numbers], strict=True))


def test_predict_number_answer_matches_its_schema(client: TestClient, mnist_sample: Sample) -> None:
    body = post_number(client, spaced_number(mnist_sample, 4, 20, style="canvas", lines=2))

    answer = NumberResponse.model_validate(body)
    assert answer.text == "\n".join(line.text for line in answer.lines)
    assert len(answer.lines) == 2
    assert all(line.text == "".join(str(d.digit) for d in line.digits) for line in answer.lines)
    product = float(np.prod([digit.confidence for line in answer.lines for digit in line.digits]))
    assert answer.confidence == pytest.approx(product, rel=1e-5)
    for line in answer.lines:
        for digit in line.digits:
            assert digit.digit == int(np.argmax(digit.probabilities))
            assert sum(digit.probabilities) == pytest.approx(1.0, abs=1e-4)


def test_predict_number_boxes_are_in_upload_pixels(
    client: TestClient, mnist_sample: Sample
) -> None:
    number = spaced_number(
        mnist_sample, 5, 30, style="photo", digit_height=100, canvas_size=(1600, 1000)
    )
    ink = np.asarray(Image.open(io.BytesIO(number.data)).convert("L")) < 128
    columns = np.flatnonzero(ink.any(axis=0))
    rows = np.flatnonzero(ink.any(axis=1))

    body = NumberResponse.model_validate(post_number(client, number))

    boxes = [digit.box for digit in body.lines[0].digits]
    assert len(boxes) == 5
    assert [box.x for box in boxes] == sorted(box.x for box in boxes)
    # The boxes span the ink, in the 1600 x 1000 upload's pixels (within a working pixel).
    tolerance = 8
    assert abs(boxes[0].x - columns[0]) <= tolerance
    assert abs(boxes[-1].x + boxes[-1].width - (columns[-1] + 1)) <= tolerance
    assert abs(min(box.y for box in boxes) - rows[0]) <= tolerance
    assert abs(max(box.y + box.height for box in boxes) - (rows[-1] + 1)) <= tolerance
    for box in boxes:
        assert 50 <= box.height <= 130


def test_predict_number_raw_body_is_read_like_multipart(
    client: TestClient, mnist_sample: Sample
) -> None:
    number = spaced_number(mnist_sample, 3, 40, style="canvas")

    raw = client.post(
        "/predict/number", content=number.data, headers={"Content-Type": number.content_type}
    )

    assert raw.status_code == 200
    assert raw.json() == post_number(client, number)


def test_predict_number_blank_image_is_422(client: TestClient) -> None:
    buffer = io.BytesIO()
    Image.new("L", (600, 200), 255).save(buffer, format="PNG")

    response = client.post(
        "/predict/number", content=buffer.getvalue(), headers={"Content-Type": "image/png"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "no_digit_found"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"", "image/png", 400, "empty_upload"),
        (b"\x89PNG\r\n\x1a\n truncated", "image/png", 400, "invalid_image"),
        (b"not an image at all", "image/png", 415, "unsupported_media_type"),
        (b"hello", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_predict_number_bad_upload_is_json_4xx(
    client: TestClient, content: bytes, content_type: str, status: int, code: str
) -> None:
    response = client.post(
        "/predict/number", content=content, headers={"Content-Type": content_type}
    )

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.fixture(scope="module")
def few_digits_client(serving_settings: Settings) -> Iterator[TestClient]:
    """The app with MAX_DIGITS_PER_IMAGE=3."""
    with client_with(serving_settings, {"MAX_DIGITS_PER_IMAGE": 3}) as test_client:
        yield test_client


def test_predict_number_past_max_digits_is_422(
    few_digits_client: TestClient, mnist_sample: Sample
) -> None:
    number = spaced_number(mnist_sample, 6, 50, style="canvas")

    response = few_digits_client.post(
        "/predict/number", content=number.data, headers={"Content-Type": number.content_type}
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "too_many_digits"


def test_predict_number_within_max_digits_is_read(
    few_digits_client: TestClient, mnist_sample: Sample
) -> None:
    number = spaced_number(mnist_sample, 3, 51, style="canvas")

    body = post_number(few_digits_client, number)

    assert len(str(body["text"])) == 3


def test_predict_number_is_documented_in_openapi(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/predict/number"]["post"]

    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NumberResponse"
    }
    assert {"400", "413", "415", "422"} <= set(operation["responses"])
    assert "multipart/form-data" in operation["requestBody"]["content"]


def test_predict_number_needs_the_api_key_when_one_is_set(
    serving_settings: Settings, mnist_sample: Sample
) -> None:
    key = "number-reading-key-0123456789"
    settings = serving_settings.model_copy(update={"API_KEY": SecretStr(key)})
    number = spaced_number(mnist_sample, 2, 60, style="canvas")
    headers = {"Content-Type": number.content_type}

    with TestClient(create_app(settings)) as keyed:
        refused = keyed.post("/predict/number", content=number.data, headers=headers)
        answered = keyed.post(
            "/predict/number", content=number.data, headers={**headers, "X-API-Key": key}
        )

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert answered.status_code == 200
