"""``GET /monitoring/prometheus/metrics``: Prometheus telemetry that moves with the traffic,
parses with ``prometheus_client``'s own parser, can be switched off, and adds up every worker
of a multi-worker ``mnist-serve``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from prometheus_client.parser import text_string_to_metric_families

from app.api.deps import services_of
from app.core.config import Settings
from bench.servers import LOOPBACK, ServerProcess, mnist_serve_spec
from tests.conftest import EncodeImage, client_with

METRICS_PATH = "/monitoring/prometheus/metrics"
START_TIMEOUT_SECONDS = 60.0
RECORDING_GRACE_SECONDS = 2.0
"""How long a scrape may lag the last answer: a worker records a request right after writing
its response's last byte, so a client can get ahead of it by a moment."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(client: TestClient | httpx.Client) -> Samples:
    response = client.get(METRICS_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return _parse(response.text)


def _value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def _requests(samples: Samples, route: str, status: str, method: str = "POST") -> float:
    return _value(samples, "mnist_http_requests_total", route=route, method=method, status=status)


@pytest.fixture(scope="module")
def digit_png(
    mnist_sample: tuple[NDArray[np.uint8], NDArray[np.int64]], encode: EncodeImage
) -> bytes:
    images, _ = mnist_sample
    return encode(images[0])


def test_prometheus_metrics_move_after_a_prediction(client: TestClient, digit_png: bytes) -> None:
    before = _scrape(client)

    answer = client.post("/predict", files={"file": ("d.png", digit_png, "image/png")}).json()

    after = _scrape(client)
    assert _requests(after, "/predict", "200") == _requests(before, "/predict", "200") + 1
    digit = str(answer["digit"])
    assert _value(after, "mnist_predictions_total", digit=digit) == (
        _value(before, "mnist_predictions_total", digit=digit) + 1
    )
    for stage in ("preprocessing", "inference"):
        name = f"mnist_{stage}_duration_seconds_count"
        assert _value(after, name) == _value(before, name) + 1
        assert _value(after, f"mnist_{stage}_duration_seconds_sum") > 0
    latency_count = "mnist_http_request_duration_seconds_count"
    assert _value(after, latency_count, route="/predict") == (
        _value(before, latency_count, route="/predict") + 1
    )


def test_prometheus_metrics_count_a_batch_once_per_forward_pass(
    client: TestClient, digit_png: bytes
) -> None:
    before = _scrape(client)
    files = [("file", (f"d{index}.png", digit_png, "image/png")) for index in range(3)]

    response = client.post("/predict/batch", files=files)

    after = _scrape(client)
    assert response.status_code == 200
    assert (
        _requests(after, "/predict/batch", "200") == _requests(before, "/predict/batch", "200") + 1
    )
    predictions = "mnist_predictions_total"
    assert sum(_value(after, predictions, digit=str(d)) for d in range(10)) == (
        sum(_value(before, predictions, digit=str(d)) for d in range(10)) + 3
    )
    preprocessing = "mnist_preprocessing_duration_seconds_count"
    assert _value(after, preprocessing) == _value(before, preprocessing) + 3
    inference = "mnist_inference_duration_seconds_count"
    assert _value(after, inference) == _value(before, inference) + 1


def test_prometheus_metrics_count_errors_by_status(client: TestClient) -> None:
    before = _scrape(client)

    client.post("/predict", content=b"", headers={"Content-Type": "image/png"})
    client.get("/no/such/path")

    after = _scrape(client)
    assert _requests(after, "/predict", "400") == _requests(before, "/predict", "400") + 1
    assert _requests(after, "other", "404", method="GET") == (
        _requests(before, "other", "404", method="GET") + 1
    )


def test_prometheus_metrics_label_every_served_path_by_itself(client: TestClient) -> None:
    before = _scrape(client)

    # Served through included routers; the static asset's route has a path parameter, so it
    # is one series named by its template, whatever the asset.
    client.get("/healthz")
    client.get("/static/no-such-asset.js")
    client.get("/static/another-missing.css")

    after = _scrape(client)
    assert _requests(after, "/healthz", "200", method="GET") == (
        _requests(before, "/healthz", "200", method="GET") + 1
    )
    static = "/static/{asset_name}"
    assert _requests(after, static, "404", method="GET") == (
        _requests(before, static, "404", method="GET") + 2
    )
    assert _requests(after, METRICS_PATH, "200", method="GET") >= 1


def test_prometheus_metrics_name_the_served_model(client: TestClient) -> None:
    assert isinstance(client.app, FastAPI)
    model = services_of(client.app).model
    assert model is not None

    samples = _scrape(client)

    info = _value(samples, "mnist_model_info", name=model.archive.model_name, sha256=model.sha256)
    assert info == 1
    loaded_at = _value(samples, "mnist_model_loaded_timestamp_seconds")
    assert loaded_at == pytest.approx(model.loaded_at.timestamp())


def test_telemetry_disabled_has_no_endpoint_and_still_predicts(
    serving_settings: Settings, digit_png: bytes
) -> None:
    with client_with(serving_settings, {"TELEMETRY_ENABLED": False}) as quiet_client:
        scrape = quiet_client.get(METRICS_PATH)
        answer = quiet_client.post(
            "/predict", content=digit_png, headers={"Content-Type": "image/png"}
        )

    assert scrape.status_code == 404
    assert answer.status_code == 200


@pytest.fixture(scope="module")
def two_worker_server(
    committed_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``mnist-serve --workers 2`` on a free port; its URL."""
    spec = mnist_serve_spec(
        "mnist-serve with two workers", model_dir=committed_model_dir, WEB_CONCURRENCY="2"
    )
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with ServerProcess(spec, cwd=committed_model_dir, log_path=log_path) as server:
        server.wait_ready(timeout_s=START_TIMEOUT_SECONDS)
        yield f"http://{LOOPBACK}:{server.port}"


def test_prometheus_metrics_add_up_every_worker(two_worker_server: str, digit_png: bytes) -> None:
    requests = 12
    # A new connection per request, so that the kernel spreads them over both workers.
    for _ in range(requests):
        response = httpx.post(
            f"{two_worker_server}/predict",
            content=digit_png,
            headers={"Content-Type": "image/png"},
        )
        assert response.status_code == 200

    with httpx.Client(base_url=two_worker_server) as scraper:
        # Each worker writes every request to the shared files as it answers it: allow for the
        # last one's few instructions, then check that every scrape sees them all.
        deadline = time.monotonic() + RECORDING_GRACE_SECONDS
        while _requests(_scrape(scraper), "/predict", "200") < requests:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        scrapes = [_scrape(scraper) for _ in range(4)]

    for samples in scrapes:
        assert _requests(samples, "/predict", "200") == requests
        assert (
            sum(_value(samples, "mnist_predictions_total", digit=str(d)) for d in range(10))
            == requests
        )
