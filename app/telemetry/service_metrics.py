"""The service's Prometheus metrics, and how they are collected in one or several processes.

One :class:`ServiceMetrics` per app, in its own registry, so that several apps in one process
(tests) never share counts. With several worker processes, ``prometheus_client``'s
multiprocess mode is used: when ``PROMETHEUS_MULTIPROC_DIR`` names a folder (``mnist-serve``
makes one when it starts more than one worker), every worker writes its values there and a
scrape of any worker reads them all, see :meth:`ServiceMetrics.exposition`.

Exported (all prefixed ``mnist_``):

* ``http_requests_total{route, method, status}`` and
  ``http_request_duration_seconds{route}`` (histogram), for every HTTP request. ``route`` is
  the endpoint's path, or ``other`` for paths the service does not serve, so scanners cannot
  blow up the number of series (see :class:`app.telemetry.request_recorder.RequestRecorder`).
* ``predictions_total{digit}``: digits answered, by ``POST /predict`` and ``/predict/batch``.
* ``preprocessing_duration_seconds`` (per image: decoding and preprocessing) and
  ``inference_duration_seconds`` (per forward pass of the network, one per request or batch).
* ``model_info{name, sha256}`` (value 1) and ``model_loaded_timestamp_seconds``.

Every value goes to ``prometheus_client`` when it is observed, through its public API only
(``labels``, ``inc``, ``observe``, ``set``): nothing is buffered, so a scrape of any worker shows
every worker's requests as soon as they are answered, and nothing depends on
``prometheus_client``'s internals. The children that ``labels`` returns are kept in a dictionary
per metric, which spares each request ``labels``' argument conversion and lock; their number is
bounded by that of the series. docs/performance.md gives what this costs per request.
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
    :class:`app.inference.upload_classifier.PipelineObserver`).

    Its methods are called from the event loop (requests) and from threadpool threads
    (predictions); ``prometheus_client``'s metrics are thread-safe, and the dictionaries of
    children are only read and filled (a race fills an entry twice with the same child, since
    ``labels`` returns one child per label values).

    Whether it runs in multiprocess mode is decided when it is created, as
    ``prometheus_client`` decides where its values live when it is imported: set
    ``PROMETHEUS_MULTIPROC_DIR`` before either. In that mode there is one app per process: two
    instances in one process would overwrite each other's values in the same file.
    """

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
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        """The request counter's and latency histogram's children, by (route, method, status)."""
        self._digit_series: dict[int, Counter] = {}
        """The prediction counter's children, by digit."""
        directory = multiprocess_dir()
        self._scraped = self.registry
        """What a scrape reads: this registry, or in multiprocess mode every worker's files."""
        if directory is not None:
            self._scraped = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(self._scraped, path=directory)  # type: ignore[no-untyped-call]

    def set_model(self, model: ServingModel) -> None:
        """Record the model this process serves."""
        self.model_info.labels(model.archive.model_name, model.sha256).set(1)
        self.model_loaded.set(model.loaded_at.timestamp())

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        series = self._request_series.get((route, method, status))
        if series is None:
            series = self._request_series[(route, method, status)] = (
                self.requests.labels(route, method, str(status)),
                self.request_duration.labels(route),
            )
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
            self._digit_counter(digit).inc()

    def observe_prediction(
        self, preprocessing_seconds: float, inference_seconds: float, digit: int
    ) -> None:
        """Record one image's preprocessing and inference times and its digit (the
        single-image path: the three calls above in one)."""
        self.preprocessing_duration.observe(preprocessing_seconds)
        self.inference_duration.observe(inference_seconds)
        self._digit_counter(digit).inc()

    def _digit_counter(self, digit: int) -> Counter:
        """The prediction counter of ``digit``."""
        counter = self._digit_series.get(digit)
        if counter is None:
            counter = self._digit_series[digit] = self.predictions.labels(str(digit))
        return counter

    def exposition(self) -> bytes:
        """The text exposition of the metrics: this app's, or in multiprocess mode every
        worker's (read from the files in ``PROMETHEUS_MULTIPROC_DIR``, so this reads files)."""
        return generate_latest(self._scraped)


def forget_this_process() -> None:
    """In multiprocess mode, drop this worker's live gauges (call it when the worker stops)."""
    directory = multiprocess_dir()
    if directory is not None:
        prometheus_multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]
