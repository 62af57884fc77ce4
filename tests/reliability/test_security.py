"""Security: the optional API key on the prediction endpoints, CORS only for configured origins,
request IDs in responses, error bodies and log lines, and nothing of the server's internals
(stack traces, file paths, exception text) in any response."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

from app.api.deps import get_classifier
from app.classification import DigitClassifier
from app.core.config import Settings
from app.core.logging import RequestIdLogFilter
from app.core.request_context import REQUEST_ID, acceptable_request_id
from app.main import create_app
from app.startup import decode_limits
from bench.servers import LOOPBACK, ServerProcess
from tests.conftest import client_with

StartService = Callable[..., ServerProcess]

API_KEY: Final = "test-api-key-3f9a0c41d2b7e8a6"
ORIGIN: Final = "https://digits.example"
GENERATED_ID: Final = re.compile(r"[0-9a-f]{32}")


def _digit_png() -> bytes:
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 13:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


DIGIT: Final = _digit_png()


@pytest.fixture(scope="module")
def keyed_client(serving_settings: Settings) -> Iterator[TestClient]:
    """The app with API_KEY set."""
    with client_with(
        serving_settings, {"API_KEY": Settings(API_KEY=API_KEY).API_KEY}
    ) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def cors_client(serving_settings: Settings) -> Iterator[TestClient]:
    """The app with one allowed CORS origin."""
    with client_with(serving_settings, {"CORS_ALLOW_ORIGINS": [ORIGIN]}) as test_client:
        yield test_client


def _predict(client: TestClient, path: str = "/predict", **headers: str) -> httpx.Response:
    if path == "/predict":
        return client.post(path, content=DIGIT, headers={"Content-Type": "image/png", **headers})
    return client.post(path, files=[("file", ("d.png", DIGIT, "image/png"))], headers=headers)


# API key.


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize(
    "supplied",
    [None, "", "wrong-key", API_KEY[:-1], API_KEY + "x", API_KEY.upper()],
    ids=["none", "empty", "wrong", "one-short", "one-long", "other-case"],
)
def test_predict_without_the_right_api_key_is_401(
    keyed_client: TestClient, path: str, supplied: str | None
) -> None:
    headers = {} if supplied is None else {"X-API-Key": supplied}

    response = _predict(keyed_client, path, **headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert "X-API-Key" in error["message"]
    assert API_KEY not in response.text
    assert error["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_predict_with_the_api_key_is_answered(keyed_client: TestClient, path: str) -> None:
    response = _predict(keyed_client, path, **{"X-API-Key": API_KEY})

    assert response.status_code == 200
    body = response.json()
    digit = body["digit"] if path == "/predict" else body["results"][0]["prediction"]["digit"]
    assert digit == 1


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/metrics", "/model", "/", "/openapi.json", "/docs"]
)
def test_open_endpoints_need_no_api_key(keyed_client: TestClient, path: str) -> None:
    assert keyed_client.get(path).status_code == 200


def test_refused_upload_is_read_to_its_end_so_the_client_sees_the_401(
    keyed_client: TestClient,
) -> None:
    chunks = [bytes(65_536)] * 16

    response = keyed_client.post(
        "/predict", content=iter(chunks), headers={"Content-Type": "image/png"}
    )

    assert response.status_code == 401


def test_openapi_declares_the_api_key_only_when_set(
    keyed_client: TestClient, client: TestClient
) -> None:
    keyed = keyed_client.get("/openapi.json").json()
    open_schema = client.get("/openapi.json").json()

    scheme = keyed["components"]["securitySchemes"]["ApiKeyHeader"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    for path in ("/predict", "/predict/batch"):
        operation = keyed["paths"][path]["post"]
        assert operation["security"] == [{"ApiKeyHeader": []}]
        assert "401" in operation["responses"]
        assert "security" not in open_schema["paths"][path]["post"]
    assert "security" not in keyed["paths"]["/healthz"]["get"]
    assert "securitySchemes" not in open_schema.get("components", {})


@pytest.mark.parametrize(
    "key", ["short", "non-ascii-cl\u00e9-0123456789", " padded-key-0123456789 "]
)
def test_weak_or_malformed_api_key_setting_is_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="API_KEY"):
        Settings(API_KEY=key, _env_file=None)  # type: ignore[call-arg]


def test_empty_api_key_setting_means_no_key() -> None:
    assert Settings(API_KEY="", _env_file=None).API_KEY is None  # type: ignore[call-arg]


# CORS.


def test_cors_is_off_by_default(client: TestClient) -> None:
    simple = client.get("/healthz", headers={"Origin": ORIGIN})
    preflight = client.options(
        "/predict",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    assert "access-control-allow-origin" not in simple.headers
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code == 405


def test_cors_allows_a_configured_origin(cors_client: TestClient) -> None:
    simple = _predict(cors_client, **{"Origin": ORIGIN})
    preflight = cors_client.options(
        "/predict",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-api-key",
        },
    )

    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-credentials" not in simple.headers
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()


def test_cors_ignores_other_origins(cors_client: TestClient) -> None:
    simple = cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    preflight = cors_client.options(
        "/predict",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert "access-control-allow-origin" not in simple.headers
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_error_answers_are_readable_by_the_allowed_origin(cors_client: TestClient) -> None:
    response = cors_client.post(
        "/predict", content=b"", headers={"Content-Type": "image/png", "Origin": ORIGIN}
    )

    assert response.status_code == 400
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_cors_oversized_body_is_refused_by_the_body_guard_readably(
    serving_settings: Settings,
) -> None:
    # With CORS on, the body guard is a layer of its own inside CORS (not the request ID's).
    changes = {"CORS_ALLOW_ORIGINS": [ORIGIN], "MAX_UPLOAD_BYTES": 2048}
    with client_with(serving_settings, changes) as test_client:
        response = test_client.post(
            "/predict",
            content=b"\x89PNG" + bytes(4096),
            headers={"Content-Type": "image/png", "Origin": ORIGIN},
        )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.parametrize(
    "origins",
    ["https://a.example/", "a.example", "https://a.example/path", "*,https://a.example", "ftp://x"],
)
def test_malformed_cors_origin_setting_is_refused(origins: str) -> None:
    with pytest.raises(ValidationError, match="CORS_ALLOW_ORIGINS"):
        Settings(CORS_ALLOW_ORIGINS=origins, _env_file=None)  # type: ignore[call-arg]


def test_cors_origins_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://a.example, http://localhost:3000")

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.CORS_ALLOW_ORIGINS == ["https://a.example", "http://localhost:3000"]


# Request IDs.


def test_request_id_is_generated_when_none_is_sent(client: TestClient) -> None:
    first = client.get("/healthz")
    second = client.get("/healthz")

    assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_sane_incoming_request_id_is_kept_everywhere(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b"", headers={"Content-Type": "image/png", "X-Request-ID": "req-42.a"}
    )

    assert response.headers["x-request-id"] == "req-42.a"
    assert response.json()["error"]["request_id"] == "req-42.a"


@pytest.mark.parametrize(
    "incoming",
    [b"", b"has space", b"<script>alert(1)</script>", b"x" * 129, "caf\u00e9".encode(), b'a"b'],
    ids=["empty", "space", "markup", "too-long", "non-ascii", "quote"],
)
def test_request_id_check_refuses_insane_value(incoming: bytes) -> None:
    assert acceptable_request_id(incoming) is None


def test_insane_incoming_request_id_is_never_echoed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})

    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])
    assert "script" not in response.text


def test_log_lines_name_the_request() -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", None, None)
    outside = logging.LogRecord("app", logging.INFO, __file__, 1, "hello", None, None)
    log_filter = RequestIdLogFilter()

    log_filter.filter(outside)
    token = REQUEST_ID.set("req-7")
    try:
        log_filter.filter(record)
    finally:
        REQUEST_ID.reset(token)

    assert record.request_id == "req-7"
    assert outside.request_id == "-"


def test_real_server_access_log_carries_the_request_id(start_service: StartService) -> None:
    server = start_service(LOG_ACCESS="true")

    response = httpx.get(
        f"http://{LOOPBACK}:{server.port}/readyz", headers={"X-Request-ID": "trace-abc-123"}
    )

    assert response.headers["x-request-id"] == "trace-abc-123"
    access_lines = [line for line in server.log_tail(200).splitlines() if "/readyz" in line]
    assert any("[trace-abc-123]" in line and "200" in line for line in access_lines)


# No internals in any response.


class _ExplodingModel:
    """Stands in for the model and fails the way a bug would, naming a server path."""

    short_sha256 = "000000000000"
    digit_threshold = 0.5

    def predict_probabilities(self, digits: object) -> object:
        raise RuntimeError("secret detail in /srv/app/app/inference/dense_network.py line 42")


def test_injected_internal_error_is_a_bare_500_with_the_request_id(
    serving_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(serving_settings)
    exploding = DigitClassifier(_ExplodingModel(), decode_limits(serving_settings))  # type: ignore[arg-type]
    app.dependency_overrides[get_classifier] = lambda: exploding
    with TestClient(app, raise_server_exceptions=False) as test_client:
        with caplog.at_level(logging.ERROR):
            response = test_client.post(
                "/predict",
                content=DIGIT,
                headers={"Content-Type": "image/png", "X-Request-ID": "boom-1"},
            )

    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal server error",
            "request_id": "boom-1",
        }
    }
    assert response.headers["x-request-id"] == "boom-1"
    for secret in ("secret", "/srv", ".py", "Traceback", "RuntimeError"):
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/static/..%2f..%2fapp%2fmain.py"),
        ("GET", "/static/%2e%2e/%2e%2e/models/metrics.json"),
        ("GET", "/../../etc/passwd"),
        ("GET", "/nothing-here"),
        ("PUT", "/predict"),
        ("POST", "/healthz"),
    ],
)
def test_error_answers_hold_no_file_contents_or_server_paths(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path)

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/json"
    text = response.text
    assert str(Path(__file__).resolve().parents[2]) not in text
    for leak in ("def create_app", "sha256", "root:", "Traceback"):
        assert leak not in text
