"""``GET /monitoring/prometheus/metrics``: the service's telemetry for Prometheus to scrape.

The path is TensorFlow Serving's. The metrics are described in
:mod:`app.telemetry.service_metrics`; with ``TELEMETRY_ENABLED=false`` this route is not
installed (404).

The handler is a plain ``def``, so FastAPI runs it in the threadpool: in multiprocess mode a
scrape reads every worker's files, which must not hold up the event loop.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import services_of
from app.telemetry.service_metrics import EXPOSITION_CONTENT_TYPE

PROMETHEUS_PATH: Final = "/monitoring/prometheus/metrics"

router = APIRouter(tags=["monitoring"])

EXPOSITION_EXAMPLE: Final = """\
# HELP mnist_http_requests_total HTTP requests answered, by route, method and status code.
# TYPE mnist_http_requests_total counter
mnist_http_requests_total{method="POST",route="/predict",status="200"} 1523.0
mnist_http_requests_total{method="POST",route="/predict",status="422"} 4.0
# TYPE mnist_http_request_duration_seconds histogram
mnist_http_request_duration_seconds_bucket{le="0.001",route="/predict"} 1490.0
mnist_http_request_duration_seconds_bucket{le="+Inf",route="/predict"} 1527.0
mnist_http_request_duration_seconds_count{route="/predict"} 1527.0
mnist_http_request_duration_seconds_sum{route="/predict"} 1.93
# TYPE mnist_predictions_total counter
mnist_predictions_total{digit="7"} 160.0
# TYPE mnist_model_info gauge
mnist_model_info{name="mnist_dense",sha256="5f237d69efeb..."} 1.0
"""
"""An excerpt of a scrape, for the OpenAPI documentation."""


@router.get(
    PROMETHEUS_PATH,
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {
                EXPOSITION_CONTENT_TYPE: {
                    "schema": {"type": "string"},
                    "example": EXPOSITION_EXAMPLE,
                }
            },
        }
    },
)
def read_prometheus_metrics(request: Request) -> Response:
    """Request counts and latency, predictions by digit, preprocessing and inference time,
    and the model's identity, in Prometheus' text format."""
    metrics = services_of(request.app).telemetry
    if metrics is None:
        # Not reached: the app installs this route only with its telemetry.
        raise RuntimeError("the app has no telemetry")
    return Response(content=metrics.exposition(), media_type=EXPOSITION_CONTENT_TYPE)
