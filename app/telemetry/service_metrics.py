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

Requests and predictions are recorded into plain in-process counters (a dictionary lookup, a
bisection and a few additions under a lock per call) and added to ``prometheus_client``'s metrics
in bulk once a second, before each scrape and at shutdown (:meth:`ServiceMetrics.flush`). Called
once per value, ``prometheus_client`` costs about 1 µs an ``observe``, and in multiprocess mode
about 1.5 µs more for its memory-mapped file write; a scrape of one worker therefore shows the
other workers' values as they were at their last flush, at most a second old.
"""

from __future__ import annotations

import asyncio
import os
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
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
FLUSH_INTERVAL_SECONDS: Final = 1.0
"""How often each worker adds what it recorded to the ``prometheus_client`` metrics."""

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


class _PendingHistogram:
    """Observations of one histogram series not yet added to ``prometheus_client``: a count per
    bucket (the first whose upper bound is at least the value, as Prometheus counts them) and
    their sum."""

    __slots__ = ("bucket_counts", "total", "upper_bounds")

    def __init__(self, upper_bounds: tuple[float, ...]) -> None:
        self.upper_bounds = upper_bounds
        self.bucket_counts = [0] * (len(upper_bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation (the last bucket is ``+Inf``)."""
        self.bucket_counts[bisect_left(self.upper_bounds, seconds)] += 1
        self.total += seconds

    def take(self) -> tuple[list[int], float] | None:
        """The bucket counts and sum observed since the last call, or None if nothing was."""
        if not any(self.bucket_counts):
            return None
        taken = (self.bucket_counts, self.total)
        self.bucket_counts = [0] * len(self.bucket_counts)
        self.total = 0.0
        return taken


def add_to_histogram(histogram: Histogram, bucket_counts: Sequence[int], total: float) -> None:
    """Add pre-counted observations to one ``histogram`` series (no labels left to fill): as
    many as ``bucket_counts[i]`` values in its bucket ``i`` (non-cumulative, ``+Inf`` last), all
    of them summing to ``total``.

    ``prometheus_client`` has no public way to do this, so this function (and only this one)
    uses its internals: a histogram child keeps one value per bucket in ``_buckets`` and one for
    the sum in ``_sum``, in single- and multiprocess mode alike.
    ``tests/app/test_telemetry_flush.py`` compares its exposition with the same values observed
    one by one, so a ``prometheus_client`` upgrade that changes them fails that test.
    """
    buckets = histogram._buckets  # Internal: see the docstring.
    if len(bucket_counts) != len(buckets):
        raise ValueError(f"{len(bucket_counts)} bucket counts for {len(buckets)} buckets")
    histogram._sum.inc(total)
    for bucket, count in zip(buckets, bucket_counts, strict=True):
        if count:
            bucket.inc(count)


class _PendingRequests:
    """Requests of one (route, method, status) not yet added to ``prometheus_client``."""

    __slots__ = ("count", "durations")

    def __init__(self, durations: _PendingHistogram) -> None:
        self.count = 0
        self.durations = durations
        """Shared by every series of the same route (the latency histogram is by route)."""


class ServiceMetrics:
    """The metrics of one app; also the observer of its prediction pipeline (see
    :class:`app.inference.upload_classifier.PipelineObserver`).

    Requests and predictions are counted into plain in-process accumulators under one lock
    (well under a microsecond per request), and :meth:`flush` adds them to the
    ``prometheus_client`` metrics in bulk: every :data:`FLUSH_INTERVAL_SECONDS` (see
    :meth:`run_periodic_flush`), right before each scrape, and when the worker stops. In
    multiprocess mode this replaces a memory-mapped file write per value and request with a
    few per second.
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
        # Everything below is guarded by this lock: the event loop records requests while
        # threadpool threads record predictions and a scrape may flush.
        self._lock = threading.Lock()
        self._pending_requests: dict[tuple[str, str, int], _PendingRequests] = {}
        self._pending_durations: dict[str, _PendingHistogram] = {}
        self._pending_digits = [0] * 10
        self._pending_preprocessing = _PendingHistogram(_PREPROCESSING_BUCKETS)
        self._pending_inference = _PendingHistogram(_INFERENCE_BUCKETS)

    def set_model(self, model: ServingModel) -> None:
        """Record the model this process serves."""
        self.model_info.labels(model.archive.model_name, model.sha256).set(1)
        self.model_loaded.set(model.loaded_at.timestamp())

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        key = (route, method, status)
        with self._lock:
            series = self._pending_requests.get(key)
            if series is None:
                series = self._new_request_series(key)
            series.count += 1
            series.durations.observe(seconds)

    def _new_request_series(self, key: tuple[str, str, int]) -> _PendingRequests:
        """Start accumulating a (route, method, status) series (the lock is held)."""
        durations = self._pending_durations.get(key[0])
        if durations is None:
            durations = _PendingHistogram(_REQUEST_BUCKETS)
            self._pending_durations[key[0]] = durations
        series = _PendingRequests(durations)
        self._pending_requests[key] = series
        return series

    def observe_preprocessing(self, seconds: float) -> None:
        """Record the decoding and preprocessing time of one image."""
        with self._lock:
            self._pending_preprocessing.observe(seconds)

    def observe_inference(self, seconds: float) -> None:
        """Record the time of one forward pass."""
        with self._lock:
            self._pending_inference.observe(seconds)

    def count_predictions(self, digits: Iterable[int]) -> None:
        """Count the digits answered."""
        with self._lock:
            for digit in digits:
                self._pending_digits[digit] += 1

    def observe_prediction(
        self, preprocessing_seconds: float, inference_seconds: float, digit: int
    ) -> None:
        """Record one image's preprocessing and inference times and its digit, under one
        acquisition of the lock (the single-image path, once per request)."""
        with self._lock:
            self._pending_preprocessing.observe(preprocessing_seconds)
            self._pending_inference.observe(inference_seconds)
            self._pending_digits[digit] += 1

    def flush(self) -> None:
        """Add everything recorded since the last flush to the ``prometheus_client`` metrics
        (in multiprocess mode, to this worker's files)."""
        with self._lock:
            requests = [
                (key, series.count)
                for key, series in self._pending_requests.items()
                if series.count
            ]
            for series in self._pending_requests.values():
                series.count = 0
            durations = [
                (route, taken)
                for route, histogram in self._pending_durations.items()
                if (taken := histogram.take()) is not None
            ]
            digits, self._pending_digits = self._pending_digits, [0] * 10
            preprocessing = self._pending_preprocessing.take()
            inference = self._pending_inference.take()
        # The prometheus_client calls run outside the lock, so requests are never held up by
        # a flush's file writes.
        for (route, method, status), count in requests:
            self.requests.labels(route, method, str(status)).inc(count)
        for route, (bucket_counts, total) in durations:
            add_to_histogram(self.request_duration.labels(route), bucket_counts, total)
        for digit, count in enumerate(digits):
            if count:
                self.predictions.labels(str(digit)).inc(count)
        if preprocessing is not None:
            add_to_histogram(self.preprocessing_duration, *preprocessing)
        if inference is not None:
            add_to_histogram(self.inference_duration, *inference)

    async def run_periodic_flush(self, interval_seconds: float = FLUSH_INTERVAL_SECONDS) -> None:
        """Flush every ``interval_seconds`` until cancelled (run it as a task of the worker)."""
        while True:
            await asyncio.sleep(interval_seconds)
            self.flush()

    def exposition(self) -> bytes:
        """The text exposition of the metrics, after a flush of this process's: this app's, or
        in multiprocess mode every worker's (from the files in ``PROMETHEUS_MULTIPROC_DIR``;
        the other workers' values are at most :data:`FLUSH_INTERVAL_SECONDS` old)."""
        self.flush()
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
