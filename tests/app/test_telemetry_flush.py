"""Telemetry recorded in process and flushed in bulk exposes exactly what ``prometheus_client``
shows for the same values observed one by one, in single- and multiprocess mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client import values as prometheus_values
from prometheus_client.parser import text_string_to_metric_families

from app.telemetry.service_metrics import (
    MULTIPROCESS_DIR_VARIABLE,
    ServiceMetrics,
    add_to_histogram,
)

BUCKETS = (0.001, 0.01, 0.1, 1.0)
# Values on, below and above the bounds, the +Inf bucket included.
VALUES = (0.0, 0.0005, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.1, 0.999, 1.0, 2.5, 30.0)


def _histogram_exposition(*, bulk: bool) -> bytes:
    registry = CollectorRegistry()
    histogram = Histogram("duration_seconds", "Durations.", ["route"], buckets=BUCKETS,
                          registry=registry)  # fmt: skip
    series = histogram.labels("/predict")
    if bulk:
        bucket_counts = [0] * (len(BUCKETS) + 1)
        for value in VALUES:
            index = next((i for i, bound in enumerate(BUCKETS) if value <= bound), len(BUCKETS))
            bucket_counts[index] += 1
        add_to_histogram(series, bucket_counts, sum(VALUES))
    else:
        for value in VALUES:
            series.observe(value)
    return b"\n".join(
        line for line in generate_latest(registry).splitlines() if b"_created" not in line
    )


def test_add_to_histogram_matches_one_by_one_observations() -> None:
    assert _histogram_exposition(bulk=True) == _histogram_exposition(bulk=False)


def test_add_to_histogram_refuses_wrong_bucket_count() -> None:
    histogram = Histogram("refused_seconds", "Durations.", buckets=BUCKETS,
                          registry=CollectorRegistry())  # fmt: skip

    with pytest.raises(ValueError, match="bucket counts"):
        add_to_histogram(histogram, [1, 2], 0.5)


def _record_traffic(metrics: ServiceMetrics) -> None:
    for index, value in enumerate(VALUES):
        metrics.observe_request("/predict", "POST", 200 if index % 3 else 400, value / 100)
        if index % 2:
            # The single-image path records all three at once.
            metrics.observe_prediction(value / 1000, value / 10000, index % 10)
        else:
            metrics.observe_preprocessing(value / 1000)
            metrics.observe_inference(value / 10000)
            metrics.count_predictions((index % 10,))
    metrics.observe_request("other", "GET", 404, 0.002)


def _observed_one_by_one() -> ServiceMetrics:
    """The same traffic, written straight to ``prometheus_client`` as before bulk flushing."""
    metrics = ServiceMetrics()
    for index, value in enumerate(VALUES):
        status = "200" if index % 3 else "400"
        metrics.requests.labels("/predict", "POST", status).inc()
        metrics.request_duration.labels("/predict").observe(value / 100)
        metrics.preprocessing_duration.observe(value / 1000)
        metrics.inference_duration.observe(value / 10000)
        metrics.predictions.labels(str(index % 10)).inc()
    metrics.requests.labels("other", "GET", "404").inc()
    metrics.request_duration.labels("other").observe(0.002)
    return metrics


def _without_created(exposition: bytes) -> list[bytes]:
    return [line for line in exposition.splitlines() if b"_created" not in line]


def test_flushed_service_metrics_expose_the_same_as_direct_observations() -> None:
    flushed = ServiceMetrics()
    _record_traffic(flushed)
    flushed.flush()

    direct = _observed_one_by_one()

    assert _without_created(generate_latest(flushed.registry)) == _without_created(
        generate_latest(direct.registry)
    )


def test_exposition_flushes_what_was_recorded_first() -> None:
    metrics = ServiceMetrics()
    metrics.observe_request("/predict", "POST", 200, 0.003)

    exposition = metrics.exposition()

    assert b'mnist_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in (
        exposition
    )


def test_flush_twice_adds_only_what_is_new() -> None:
    metrics = ServiceMetrics()
    _record_traffic(metrics)
    metrics.flush()
    _record_traffic(metrics)
    metrics.flush()
    metrics.flush()

    doubled = ServiceMetrics()
    _record_traffic(doubled)
    _record_traffic(doubled)
    doubled.flush()

    # Sums are added in another order, so they may differ in their last bits.
    assert _samples(metrics) == pytest.approx(_samples(doubled), rel=1e-12)


def _samples(metrics: ServiceMetrics) -> dict[str, float]:
    """Every sample but the ``_created`` ones, keyed by its exposition line's name and labels."""
    text = generate_latest(metrics.registry).decode()
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_multiprocess_flush_matches_direct_observations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expositions = []
    for name, build in (("flushed", None), ("direct", _observed_one_by_one)):
        directory = tmp_path / name
        directory.mkdir()
        monkeypatch.setenv(MULTIPROCESS_DIR_VARIABLE, str(directory))
        prometheus_values.ValueClass = prometheus_values.get_value_class()
        if build is None:
            metrics = ServiceMetrics()
            _record_traffic(metrics)
            metrics.flush()
        else:
            build()
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
        expositions.append(generate_latest(registry))
    monkeypatch.delenv(MULTIPROCESS_DIR_VARIABLE)
    prometheus_values.ValueClass = prometheus_values.get_value_class()

    assert expositions[0] == expositions[1]
    assert b"mnist_preprocessing_duration_seconds_count 12.0" in expositions[0]
