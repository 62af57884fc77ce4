"""``GET /metrics``, ``GET /model``, ``GET /healthz``, ``GET /readyz`` and the OpenAPI docs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.info_schemas import EvaluationResponse, ModelResponse
from app.core.config import Settings
from app.main import create_app
from app.model_contract import EVALUATION_FILENAME, MODEL_FILENAME
from tests.conftest import client_with


@pytest.fixture(scope="module")
def stored_metrics(committed_model_dir: Path) -> dict[str, Any]:
    metrics: dict[str, Any] = json.loads(
        (committed_model_dir / EVALUATION_FILENAME).read_text(encoding="utf-8")
    )
    return metrics


def test_get_metrics_returns_stored_scores_and_model_identity(
    client: TestClient, stored_metrics: dict[str, Any], committed_model_dir: Path
) -> None:
    response = client.get("/metrics")

    assert response.status_code == 200
    body = response.json()
    EvaluationResponse.model_validate(body)
    for field in ("size", "accuracy", "precision_macro", "recall_macro", "f1_macro", "loss"):
        assert body["test"][field] == stored_metrics["test"][field]
    assert body["test"]["per_class"] == stored_metrics["test"]["per_class"]
    assert body["test"]["confusion_matrix"] == stored_metrics["test"]["confusion_matrix"]
    assert (
        body["model"]["sha256"]
        == hashlib.sha256((committed_model_dir / MODEL_FILENAME).read_bytes()).hexdigest()
    )
    assert body["model"]["name"] == stored_metrics["model"]["name"]
    assert body["digit_confidence_threshold"] == pytest.approx(
        stored_metrics["not_a_digit"]["threshold"]
    )


def test_get_metrics_shows_the_threshold_the_setting_puts_in_use(
    serving_settings: Settings,
) -> None:
    with client_with(serving_settings, {"DIGIT_CONFIDENCE_THRESHOLD": 0.5}) as test_client:
        body = test_client.get("/metrics").json()
    assert body["digit_confidence_threshold"] == 0.5


def test_get_model_describes_the_network(
    client: TestClient, stored_metrics: dict[str, Any]
) -> None:
    response = client.get("/model")

    assert response.status_code == 200
    body = ModelResponse.model_validate(response.json())
    assert body.sha256 == stored_metrics["model"]["sha256"]
    assert body.input_shape == [28, 28, 1]
    assert body.classes == list(range(10))
    assert body.parameters == stored_metrics["model"]["parameters"] == 109_386
    assert [(layer.units, layer.activation) for layer in body.layers] == [
        (128, "relu"),
        (64, "relu"),
        (10, "softmax"),
    ]
    assert body.training_versions == stored_metrics["versions"]
    assert response.json()["trained_at"][:19] == stored_metrics["training"]["trained_at"][:19]
    assert {"python", "numpy"} <= set(body.serving_versions)


def test_get_healthz_is_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_get_readyz_is_ready_with_model_identity(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model_sha256": client.get("/model").json()["sha256"][:12],
    }


def test_get_readyz_is_503_before_startup_and_after_shutdown(serving_settings: Settings) -> None:
    app = create_app(serving_settings)
    before = TestClient(app).get("/readyz")  # no `with`: the lifespan has not run
    with TestClient(app) as running:
        during = running.get("/readyz")
    after = TestClient(app).get("/readyz")

    assert during.status_code == 200
    for response in (before, after):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_ready"


def test_predict_without_loaded_model_is_503(serving_settings: Settings) -> None:
    response = TestClient(create_app(serving_settings)).post(
        "/predict", content=b"x", headers={"Content-Type": "image/png"}
    )

    assert response.status_code == 503
    assert response.json() == {
        "error": {
            "code": "model_unavailable",
            "message": "the model is not available",
            "request_id": response.headers["x-request-id"],
        }
    }


def test_openapi_documents_every_endpoint_with_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def has_example(content: dict[str, Any]) -> bool:
        if "example" in content or "examples" in content:
            return True
        reference = content.get("schema", {}).get("$ref", "")
        return bool(reference) and "examples" in components[reference.rsplit("/", 1)[-1]]

    expected = {
        ("post", "/predict"),
        ("post", "/predict/batch"),
        ("get", "/metrics"),
        ("get", "/model"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/monitoring/prometheus/metrics"),
    }
    documented = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert expected <= documented
    for method, path in expected:
        operation = schema["paths"][path][method]
        assert operation.get("description"), (method, path)
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                assert has_example(content), (method, path, status, media_type)


def test_openapi_documents_multipart_and_raw_request_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    predict_body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    batch_body = schema["paths"]["/predict/batch"]["post"]["requestBody"]["content"]

    assert predict_body["multipart/form-data"]["schema"]["required"] == ["file"]
    assert "image/png" in predict_body and "image/jpeg" in predict_body
    assert all(content.get("examples") for content in predict_body.values())
    assert batch_body["multipart/form-data"]["schema"]["properties"]["file"]["type"] == "array"
    assert batch_body["multipart/form-data"]["examples"]
    error_schema = schema["paths"]["/predict"]["post"]["responses"]["422"]["content"]
    assert error_schema["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_docs_page_is_served(client: TestClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    assert "swagger" in response.text.lower()
