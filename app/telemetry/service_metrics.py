"""The service's Prometheus metrics, and how they are collected in one or several processes.

One :class:`ServiceMetrics` per app, in its own registry, so that several apps in one process
(tests) never share counts. With several worker processes, ``prometheus_client``'s
multiprocess mode is used: when ``PROMETHEUS_MULTIPROC_DIR`` names a folder (``mnist-serve``
makes one when it starts more than one worker), every worker writes its values there and a
scrape of any worker reads them all, see :func:`exposition`.

Exported (all prefixed ``mnist_``):

* ``http_requests_total{route, method, status}`` and
  ``http_request_duration_seconds{route}`` (histogram), for every HTTP request. ``route`` is
  the endpoint's path, or ``other`` for paths the service does not serve, so scanners cannot
  blow up the number of series.
* ``predictions_total{digit}``: digits answered, by ``POST /predict`` and ``/predict/batch``.
* ``preprocessing_duration_seconds`` (per image: decoding and preprocessing) and
  ``inference_duration_seconds`` (per forward pass of the network, one per request or batch).
* ``model_info{name, sha256}`` (value 1) and ``model_loaded_timestamp_seconds``.

The per-request cost is a few dictionary lookups and four or five ``observe``/``inc`` calls of
well under a microsecond each (about 1.5 µs each in multiprocess mode, which writes to a
memory-mapped file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from app.inference.serving_model import ServingModel

MULTIPROCESS_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
EXPOSITION_CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
OTHER_ROUTE: Final = "other"
"""The ``route`` label of requests to paths the service does not serve."""

_REQUEST_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_PREPROCESSING_BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
_INFERENCE_BUCKETS: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
)  # fmt: skip


def multiprocess_dir() -> str | None:
    """The folder of ``prometheus_client``'s multiprocess mode, when it is on."""
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


class ServiceMetrics:
    """The metrics of one app; also the observer of its prediction pipeline (see
    :class:`app.inference.upload_classifier.PipelineObserver`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mnist_http_requests",
            "HTTP requests answered, by route, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "mnist_http_request_duration_seconds",
            "Time from a request reaching the app to its response's last byte, by route.",
            ["route"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mnist_predictions",
            "Digits answered by POST /predict and /predict/batch, by digit.",
            ["digit"],
            registry=self.registry,
        )
        self.preprocessing_duration = Histogram(
            "mnist_preprocessing_duration_seconds",
            "Decoding and preprocessing of one uploaded image into the 28 x 28 model input.",
            buckets=_PREPROCESSING_BUCKETS,
            registry=self.registry,
        )
        self.inference_duration = Histogram(
            "mnist_inference_duration_seconds",
            "One forward pass of the network (one image, or a whole batch).",
            buckets=_INFERENCE_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "mnist_model_info",
            "The served model: its name and the SHA-256 of its file (value 1).",
            ["name", "sha256"],
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        self.model_loaded = Gauge(
            "mnist_model_loaded_timestamp_seconds",
            "When the served model was loaded (Unix time; the latest among live workers).",
            multiprocess_mode="livemax",
            registry=self.registry,
        )
        # Label children are looked up once and kept: ``labels()`` costs about 0.7 µs a call.
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._digit_counters = [self.predictions.labels(str(digit)) for digit in range(10)]

    def set_model(self, model: ServingModel) -> None:
        """Record the model this process serves."""
        self.model_info.labels(model.archive.model_name, model.sha256).set(1)
        self.model_loaded.set(model.loaded_at.timestamp())

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.requests.labels(route, method, str(status)),
                self.request_duration.labels(route),
            )
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_preprocessing(self, seconds: float) -> None:
        """Record the decoding and preprocessing time of one image."""
        self.preprocessing_duration.observe(seconds)

    def observe_inference(self, seconds: float) -> None:
        """Record the time of one forward pass."""
        self.inference_duration.observe(seconds)

    def count_predictions(self, digits: Iterable[int]) -> None:
        """Count the digits answered."""
        for digit in digits:
            self._digit_counters[digit].inc()

    def exposition(self) -> bytes:
        """The text exposition of the metrics: this app's, or in multiprocess mode every
        worker's (from the files in ``PROMETHEUS_MULTIPROC_DIR``)."""
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def forget_this_process() -> None:
    """In multiprocess mode, drop this worker's live gauges (call it when the worker stops)."""
    if multiprocess_dir() is not None:
        prometheus_multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
