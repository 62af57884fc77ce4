"""Every way a request can be wrong gets its 4xx and the JSON error body, never a 500, a hang or
a stack trace; the service keeps serving afterwards."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from app.api.deps import get_classifier
from app.classification import DigitClassifier
from app.core.config import Settings
from app.imaging.decode import is_cheap_upload
from app.main import create_app
from app.startup import decode_limits
from tests.conftest import client_with

EncodeImage = Callable[..., bytes]
Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]

SMALL_LIMIT = 64 * 1024


def assert_error(response: Any, status_code: int, code: str) -> str:
    """Check the status and that the body is exactly ``{"error": {"code", "message",
    "request_id"}}``, the ID also in the ``X-Request-ID`` header; return the message."""
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    assert "Traceback" not in response.text
    assert "/work/" not in response.text and ".py" not in response.text
    return message


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header declares ``width`` x ``height`` grey pixels: a
    decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def small_limit_client(serving_settings: Settings) -> Iterator[TestClient]:
    """The app with MAX_UPLOAD_BYTES = 64 KiB."""
    with client_with(serving_settings, {"MAX_UPLOAD_BYTES": SMALL_LIMIT}) as test_client:
        yield test_client


# 400


@pytest.mark.parametrize("as_multipart", [True, False])
def test_predict_empty_upload_is_400(client: TestClient, as_multipart: bool) -> None:
    if as_multipart:
        response = client.post("/predict", files={"file": ("empty.png", b"", "image/png")})
    else:
        response = client.post("/predict", content=b"", headers={"Content-Type": "image/png"})

    message = assert_error(response, 400, "empty_upload")
    assert "empty" in message


def test_predict_undecodable_bytes_is_400(client: TestClient) -> None:
    garbage = bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8))

    response = client.post("/predict", files={"file": ("photo.jpg", garbage, "image/jpeg")})

    assert_error(response, 400, "invalid_image")


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_predict_truncated_image_is_400(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage, image_format: str
) -> None:
    images, _ = mnist_sample
    big = np.kron(images[10], np.ones((8, 8), dtype=np.uint8))
    data = encode(big, image_format)

    response = client.post("/predict", files={"file": ("cut", data[: len(data) // 2], "image/png")})

    assert_error(response, 400, "invalid_image")


def test_predict_text_file_named_png_is_refused(client: TestClient) -> None:
    response = client.post(
        "/predict", files={"file": ("digit.png", b"hello, I am text\n" * 10, "image/png")}
    )

    assert response.status_code in (400, 415)
    assert_error(response, response.status_code, response.json()["error"]["code"])


def test_predict_malformed_multipart_is_400(client: TestClient) -> None:
    response = client.post(
        "/predict",
        content=b"this is not multipart at all",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )

    assert_error(response, 400, "invalid_multipart")


def test_predict_multipart_without_boundary_is_400(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b"--x--", headers={"Content-Type": "multipart/form-data"}
    )

    assert_error(response, 400, "invalid_multipart")


# 415


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/json", "application/pdf", "text/html; charset=utf-8"],
)
def test_predict_raw_body_with_non_image_type_is_415(client: TestClient, content_type: str) -> None:
    response = client.post("/predict", content=b'{"a": 1}', headers={"Content-Type": content_type})

    message = assert_error(response, 415, "unsupported_media_type")
    assert content_type.split(";")[0] in message


def test_predict_raw_body_without_content_type_is_415(client: TestClient) -> None:
    response = client.post("/predict", content=b"\x89PNG")

    assert_error(response, 415, "unsupported_media_type")


def test_predict_multipart_part_with_non_image_type_is_415(client: TestClient) -> None:
    response = client.post("/predict", files={"file": ("notes.txt", b"1 2 3", "text/plain")})

    assert_error(response, 415, "unsupported_media_type")


def test_predict_svg_upload_is_415(client: TestClient) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><text>7</text></svg>'

    response = client.post("/predict", content=svg, headers={"Content-Type": "image/svg+xml"})

    assert_error(response, 415, "unsupported_media_type")


# 422


def test_predict_multipart_without_file_field_is_422(
    client: TestClient, encode: EncodeImage
) -> None:
    response = client.post(
        "/predict", files={"image": ("d.png", encode(np.zeros((28, 28), np.uint8)), "image/png")}
    )

    message = assert_error(response, 422, "missing_file")
    assert "'file'" in message


def test_predict_file_field_as_text_value_is_422(client: TestClient) -> None:
    response = client.post(
        "/predict", data={"file": "not-a-file"}, files={"other": ("x.png", b"x", "image/png")}
    )

    assert_error(response, 422, "missing_file")


@pytest.mark.parametrize("shade", [0, 255, 128])
def test_predict_blank_image_is_422(client: TestClient, encode: EncodeImage, shade: int) -> None:
    blank = np.full((280, 280), shade, dtype=np.uint8)

    response = client.post("/predict", files={"file": ("blank.png", encode(blank), "image/png")})

    message = assert_error(response, 422, "no_digit_found")
    assert "digit" in message


def test_predict_bad_query_parameter_is_422(client: TestClient, encode: EncodeImage) -> None:
    response = client.post(
        "/predict?include_input=perhaps",
        content=encode(np.zeros((28, 28), np.uint8)),
        headers={"Content-Type": "image/png"},
    )

    message = assert_error(response, 422, "validation_error")
    assert "include_input" in message
    assert "perhaps" not in message


# 413


def test_predict_body_over_limit_by_content_length_is_413(small_limit_client: TestClient) -> None:
    response = small_limit_client.post(
        "/predict", content=b"\x00" * (SMALL_LIMIT + 1), headers={"Content-Type": "image/png"}
    )

    message = assert_error(response, 413, "payload_too_large")
    assert str(SMALL_LIMIT) in message


def test_predict_multipart_over_limit_is_413(small_limit_client: TestClient) -> None:
    response = small_limit_client.post(
        "/predict", files={"file": ("huge.png", b"\x00" * (2 * SMALL_LIMIT), "image/png")}
    )

    assert_error(response, 413, "payload_too_large")


def test_predict_body_at_limit_is_read(small_limit_client: TestClient) -> None:
    response = small_limit_client.post(
        "/predict", content=b"\x00" * SMALL_LIMIT, headers={"Content-Type": "image/png"}
    )

    # Within the limit the body is decoded (and here found not to be an image).
    assert_error(response, 400, "invalid_image")


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"\x00" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("multipart", [False, True])
def test_predict_chunked_body_over_limit_is_413(
    small_limit_client: TestClient, multipart: bool
) -> None:
    if multipart:
        boundary = "b0undary"
        preamble = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        body: Iterator[bytes] = iter([preamble, *_chunks(4 * SMALL_LIMIT)])
        content_type = f"multipart/form-data; boundary={boundary}"
    else:
        body = _chunks(4 * SMALL_LIMIT)
        content_type = "image/png"

    response = small_limit_client.post(
        "/predict", content=body, headers={"Content-Type": content_type}
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")
    assert response.headers["connection"] == "close"


def test_predict_pixel_bomb_is_413(client: TestClient) -> None:
    bomb = png_declaring(50_000, 50_000)
    assert len(bomb) < 200

    response = client.post("/predict", files={"file": ("bomb.png", bomb, "image/png")})

    assert_error(response, 413, "image_too_large")


def test_predict_with_two_files_is_413(client: TestClient, encode: EncodeImage) -> None:
    data = encode(np.zeros((28, 28), np.uint8))

    response = client.post(
        "/predict",
        files=[("file", ("a.png", data, "image/png")), ("file", ("b.png", data, "image/png"))],
    )

    message = assert_error(response, 413, "too_many_files")
    assert "/predict/batch" in message


# Routing errors and the unexpected


def test_unknown_path_is_404_json(client: TestClient) -> None:
    assert_error(client.get("/no/such/thing"), 404, "not_found")


def test_wrong_method_is_405_json(client: TestClient) -> None:
    response = client.get("/predict")

    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_unexpected_exception_is_500_json_without_details(
    serving_settings: Settings, encode: EncodeImage
) -> None:
    class ExplodingModel:
        short_sha256 = "000000000000"
        digit_threshold = 0.5

        def predict_probabilities(self, digits: object) -> object:
            raise RuntimeError("secret internal detail at /srv/app/internal.py")

    app = create_app(serving_settings)
    exploding = DigitClassifier(ExplodingModel(), decode_limits(serving_settings))  # type: ignore[arg-type]
    app.dependency_overrides[get_classifier] = lambda: exploding
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.post(
            "/predict",
            content=encode(np.eye(28, dtype=np.uint8) * 255),
            headers={"Content-Type": "image/png"},
        )

    message = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text
    assert message == "internal server error"


def test_service_keeps_serving_after_errors(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, labels = mnist_sample
    for bad in (b"", b"\x89PNG\r\n\x1a\n", png_declaring(60_000, 60_000)):
        assert (
            client.post("/predict", content=bad, headers={"Content-Type": "image/png"}).status_code
            < 500
        )

    response = client.post("/predict", files={"file": ("d.png", encode(images[4321]), "image/png")})

    assert response.status_code == 200
    assert response.json()["digit"] == labels[4321]


# Where the work runs


def test_cheap_uploads_are_only_small_verified_png(
    serving_settings: Settings, encode: EncodeImage
) -> None:
    limit = serving_settings.INLINE_MAX_PIXELS
    small_png = encode(np.zeros((28, 28), np.uint8))
    large_png = encode(np.zeros((400, 400), np.uint8))
    small_jpeg = encode(np.zeros((28, 28), np.uint8), "JPEG")
    corrupt_png = small_png[:-12] + bytes(12)

    assert is_cheap_upload(small_png, max_pixels=limit)
    assert not is_cheap_upload(large_png, max_pixels=limit)
    assert not is_cheap_upload(png_declaring(50_000, 50_000), max_pixels=limit)
    assert not is_cheap_upload(small_jpeg, max_pixels=limit)
    assert not is_cheap_upload(small_png[:20], max_pixels=limit)
    assert not is_cheap_upload(corrupt_png, max_pixels=limit)
    assert not is_cheap_upload(small_png, max_pixels=0)


def test_png_with_compressed_text_is_not_cheap(encode: EncodeImage) -> None:
    from PIL import PngImagePlugin

    metadata = PngImagePlugin.PngInfo()
    metadata.add_text("comment", "x" * 10_000, zip=True)
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(buffer, format="PNG", pnginfo=metadata)

    assert not is_cheap_upload(buffer.getvalue(), max_pixels=40_000)
