"""The service's Prometheus metrics: each observation shows in the next scrape with the names,
labels and buckets dashboards rely on; several worker processes add up in multiprocess mode;
and the ``route`` label only takes the paths the app serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient
from starlette.types import Scope

from app.api.request_id import RequestIdMiddleware
from app.telemetry.request_recorder import RequestRecorder
from app.telemetry.service_metrics import (
    MULTIPROCESS_DIR_VARIABLE,
    OTHER_ROUTE,
    ServiceMetrics,
    forget_this_process,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(exposition: bytes) -> Samples:
    """Every sample of an exposition but the ``_created`` ones, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def test_help_and_type_lines_are_those_dashboards_know() -> None:
    metrics = ServiceMetrics()
    metrics.observe_request("/predict", "POST", 200, 0.001)
    metrics.observe_prediction(0.0001, 0.00002, 3)

    # Each counter and histogram also has a ``_created`` series, as prometheus_client writes it.
    lines = [
        line
        for line in metrics.exposition().decode().splitlines()
        if line.startswith("#") and "_created" not in line
    ]

    assert lines == [
        "# HELP mnist_http_requests_total HTTP requests answered, by route, method and status "
        "code.",
        "# TYPE mnist_http_requests_total counter",
        "# HELP mnist_http_request_duration_seconds Time from a request reaching the app to its "
        "response's last byte, by route.",
        "# TYPE mnist_http_request_duration_seconds histogram",
        "# HELP mnist_predictions_total Digits answered by POST /predict and /predict/batch, "
        "by digit.",
        "# TYPE mnist_predictions_total counter",
        "# HELP mnist_preprocessing_duration_seconds Decoding and preprocessing of one uploaded "
        "image into the 28 x 28 model input.",
        "# TYPE mnist_preprocessing_duration_seconds histogram",
        "# HELP mnist_inference_duration_seconds One forward pass of the network (one image, or "
        "a whole batch).",
        "# TYPE mnist_inference_duration_seconds histogram",
        "# HELP mnist_model_info The served model: its name and the SHA-256 of its file (value 1).",
        "# TYPE mnist_model_info gauge",
        "# HELP mnist_model_loaded_timestamp_seconds When the served model was loaded (Unix "
        "time; the latest among live workers).",
        "# TYPE mnist_model_loaded_timestamp_seconds gauge",
    ]


def _bucket_bounds(samples: Samples, metric: str, **labels: str) -> list[str]:
    label_set = set(labels.items())
    return [
        dict(key_labels)["le"]
        for name, key_labels in samples
        if name == f"{metric}_bucket" and label_set <= set(key_labels)
    ]


def test_histogram_buckets_are_those_dashboards_know() -> None:
    metrics = ServiceMetrics()
    metrics.observe_request("/predict", "POST", 200, 0.001)
    metrics.observe_prediction(0.0001, 0.00002, 3)

    samples = _parse(metrics.exposition())

    assert _bucket_bounds(samples, "mnist_http_request_duration_seconds", route="/predict") == [
        "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
        "1.0", "2.5", "5.0", "10.0", "+Inf",
    ]  # fmt: skip
    assert _bucket_bounds(samples, "mnist_preprocessing_duration_seconds") == [
        "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
        "0.05", "0.1", "0.25", "1.0", "+Inf",
    ]  # fmt: skip
    assert _bucket_bounds(samples, "mnist_inference_duration_seconds") == [
        "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
        "0.01", "0.05", "+Inf",
    ]  # fmt: skip


def test_requests_are_counted_by_route_method_and_status_and_timed_by_route() -> None:
    metrics = ServiceMetrics()
    # On a bound (counted in that bucket, as Prometheus does), between two, above them all.
    for seconds in (0.0005, 0.0007, 0.003, 20.0):
        metrics.observe_request("/predict", "POST", 200, seconds)
    metrics.observe_request("/predict", "POST", 400, 0.0002)
    metrics.observe_request(OTHER_ROUTE, "GET", 404, 0.0001)

    samples = _parse(metrics.exposition())

    requests = "mnist_http_requests_total"
    assert _value(samples, requests, route="/predict", method="POST", status="200") == 4
    assert _value(samples, requests, route="/predict", method="POST", status="400") == 1
    assert _value(samples, requests, route="other", method="GET", status="404") == 1
    assert len([name for name, _ in samples if name == requests]) == 3
    duration = "mnist_http_request_duration_seconds"
    cumulative = {"0.0005": 2, "0.001": 3, "0.0025": 3, "0.005": 4, "10.0": 4, "+Inf": 5}
    for bound, count in cumulative.items():
        assert _value(samples, f"{duration}_bucket", route="/predict", le=bound) == count
    assert _value(samples, f"{duration}_count", route="/predict") == 5
    assert _value(samples, f"{duration}_sum", route="/predict") == pytest.approx(20.0044)
    assert _value(samples, f"{duration}_count", route="other") == 1


def test_predictions_are_counted_by_digit_and_stages_timed() -> None:
    metrics = ServiceMetrics()
    metrics.observe_prediction(0.0004, 0.00002, 7)
    metrics.observe_preprocessing(0.002)
    metrics.observe_preprocessing(0.00004)
    metrics.observe_inference(0.0003)
    metrics.count_predictions([7, 1, 1])

    samples = _parse(metrics.exposition())

    predictions = "mnist_predictions_total"
    assert _value(samples, predictions, digit="7") == 2
    assert _value(samples, predictions, digit="1") == 2
    # Only digits answered have a series, as before.
    assert _value(samples, predictions, digit="0") is None
    preprocessing = "mnist_preprocessing_duration_seconds"
    assert _value(samples, f"{preprocessing}_count") == 3
    assert _value(samples, f"{preprocessing}_sum") == pytest.approx(0.00244)
    assert _value(samples, f"{preprocessing}_bucket", le="5e-05") == 1
    assert _value(samples, f"{preprocessing}_bucket", le="0.0005") == 2
    assert _value(samples, f"{preprocessing}_bucket", le="0.0025") == 3
    inference = "mnist_inference_duration_seconds"
    assert _value(samples, f"{inference}_count") == 2
    assert _value(samples, f"{inference}_bucket", le="2.5e-05") == 1
    assert _value(samples, f"{inference}_bucket", le="0.00025") == 1
    assert _value(samples, f"{inference}_bucket", le="0.0005") == 2


def test_each_instance_counts_alone() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.observe_request("/predict", "POST", 200, 0.001)
    first.observe_request("/predict", "POST", 200, 0.001)
    second.observe_request("/predict", "POST", 200, 0.001)

    labels = {"route": "/predict", "method": "POST", "status": "200"}
    assert _value(_parse(first.exposition()), "mnist_http_requests_total", **labels) == 2
    assert _value(_parse(second.exposition()), "mnist_http_requests_total", **labels) == 1


def test_observations_from_many_threads_are_all_counted() -> None:
    metrics = ServiceMetrics()
    threads, per_thread = 4, 5_000
    start = threading.Barrier(threads)

    def record() -> None:
        start.wait()
        for index in range(per_thread):
            metrics.observe_request("/predict", "POST", 200 + index % 2, 0.001)
            metrics.observe_prediction(0.0001, 0.00002, index % 10)

    workers = [threading.Thread(target=record) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    samples = _parse(metrics.exposition())
    total = threads * per_thread
    requests = "mnist_http_requests_total"
    for status in ("200", "201"):
        labels = {"route": "/predict", "method": "POST", "status": status}
        assert _value(samples, requests, **labels) == total / 2
    assert _value(samples, "mnist_http_request_duration_seconds_count", route="/predict") == total
    predictions = [_value(samples, "mnist_predictions_total", digit=str(d)) for d in range(10)]
    assert sum(count or 0 for count in predictions) == total
    assert _value(samples, "mnist_inference_duration_seconds_count") == total


def test_forget_this_process_is_harmless_in_one_process() -> None:
    forget_this_process()


# A worker of a multi-process server, stand-in: it answers one JSON line per command read.
_WORKER_SCRIPT = """
import datetime, json, sys, types
from app.telemetry.service_metrics import ServiceMetrics, forget_this_process

metrics = ServiceMetrics()
for line in sys.stdin:
    command, *arguments = json.loads(line)
    answer = "ok"
    if command == "model":
        name, sha256, loaded_at = arguments
        metrics.set_model(types.SimpleNamespace(
            archive=types.SimpleNamespace(model_name=name), sha256=sha256,
            loaded_at=datetime.datetime.fromtimestamp(loaded_at, datetime.timezone.utc)))
    elif command == "traffic":
        digit, count = arguments
        for _ in range(count):
            metrics.observe_request("/predict", "POST", 200, 0.003)
            metrics.observe_prediction(0.0002, 0.00003, digit)
    elif command == "scrape":
        answer = metrics.exposition().decode()
    elif command == "forget":
        forget_this_process()
    print(json.dumps(answer), flush=True)
"""


class _Worker:
    """A process running :data:`_WORKER_SCRIPT` in multiprocess mode."""

    def __init__(self, directory: Path) -> None:
        environment = {**os.environ, MULTIPROCESS_DIR_VARIABLE: str(directory)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_SCRIPT],
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.stopped = False

    def ask(self, *command: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the worker died"
        return json.loads(line)

    def scrape(self) -> Samples:
        answer: str = self.ask("scrape")
        return _parse(answer.encode())

    def stop(self) -> int:
        """End the worker (its input ends); its exit status."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stopped = True
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=30)
        finally:
            self.process.stdout.close()


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[_Worker, _Worker]]:
    """Two live worker processes sharing one empty ``PROMETHEUS_MULTIPROC_DIR``."""
    workers = (_Worker(tmp_path), _Worker(tmp_path))
    try:
        yield workers
    finally:
        for worker in workers:
            if not worker.stopped:
                worker.stop()


def test_a_scrape_of_either_worker_adds_up_both_at_once(
    two_workers: tuple[_Worker, _Worker],
) -> None:
    first, second = two_workers
    first.ask("traffic", 3, 5)
    second.ask("traffic", 4, 2)

    # Nothing waits for a flush: every observation is in the files when the call returns.
    for samples in (first.scrape(), second.scrape()):
        requests = {"route": "/predict", "method": "POST", "status": "200"}
        assert _value(samples, "mnist_http_requests_total", **requests) == 7
        assert _value(samples, "mnist_http_request_duration_seconds_count", route="/predict") == 7
        assert _value(samples, "mnist_http_request_duration_seconds_bucket", route="/predict",
                      le="0.0025") == 0  # fmt: skip
        assert _value(samples, "mnist_http_request_duration_seconds_bucket", route="/predict",
                      le="0.005") == 7  # fmt: skip
        assert _value(samples, "mnist_predictions_total", digit="3") == 5
        assert _value(samples, "mnist_predictions_total", digit="4") == 2
        assert _value(samples, "mnist_preprocessing_duration_seconds_count") == 7
        assert _value(samples, "mnist_inference_duration_seconds_sum") == pytest.approx(0.00021)

    first.ask("traffic", 3, 1)
    assert _value(second.scrape(), "mnist_predictions_total", digit="3") == 6


def test_a_stopped_worker_keeps_its_counts_but_not_its_model(
    two_workers: tuple[_Worker, _Worker],
) -> None:
    first, second = two_workers
    first.ask("model", "mnist_dense", "aaaa", 1_000.0)
    second.ask("model", "mnist_dense", "bbbb", 2_000.0)
    first.ask("traffic", 5, 3)

    samples = second.scrape()
    assert _value(samples, "mnist_model_info", name="mnist_dense", sha256="aaaa") == 1
    assert _value(samples, "mnist_model_info", name="mnist_dense", sha256="bbbb") == 1
    assert _value(samples, "mnist_model_loaded_timestamp_seconds") == 2_000.0

    first.ask("forget")
    assert first.stop() == 0

    samples = second.scrape()
    assert _value(samples, "mnist_predictions_total", digit="5") == 3
    assert _value(samples, "mnist_model_info", name="mnist_dense", sha256="aaaa") is None
    assert _value(samples, "mnist_model_info", name="mnist_dense", sha256="bbbb") == 1


async def _mounted(scope: Scope, receive: Any, send: Any) -> None:
    """A mounted app that answers every request with 200."""
    await PlainTextResponse("")(scope, receive, send)


class _Recorded(ServiceMetrics):
    """Metrics that keep the requests a :class:`RequestRecorder` told them about."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[tuple[str, str, int, float]] = []

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.recorded.append((route, method, status, seconds))


def _recorded_app(metrics: ServiceMetrics) -> RequestIdMiddleware:
    """A Starlette app with fixed, parametrised and mounted routes, behind the request-ID layer
    that reports every response to a :class:`RequestRecorder`."""

    async def endpoint(request: Any) -> PlainTextResponse:
        return PlainTextResponse("")

    routes: list[BaseRoute] = [
        Route("/predict", endpoint, methods=["GET", "POST"]),
        Route("/healthz", endpoint),
        Route("/items/{item_id}", endpoint),
        Mount("/static", app=_mounted),
    ]
    return RequestIdMiddleware(Starlette(routes=routes), recorder=RequestRecorder(metrics))


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/predict", "/predict"),
        ("/healthz", "/healthz"),
        # A parametrised route is one series, named by its template.
        ("/items/42", "/items/{item_id}"),
        ("/items/43", "/items/{item_id}"),
        ("/static/app.js", "/static"),
        ("/static/css/page.css", "/static"),
        # Lookalikes and unknown paths would each make a series.
        ("/predict/", OTHER_ROUTE),
        ("/staticfile", OTHER_ROUTE),
        ("/wp-login.php", OTHER_ROUTE),
    ],
)
def test_route_label_is_the_matched_route_or_other(path: str, route: str) -> None:
    metrics = _Recorded()
    with TestClient(_recorded_app(metrics)) as client:
        client.get(path, follow_redirects=False)

    assert [(label, method) for label, method, _, _ in metrics.recorded] == [(route, "GET")]
