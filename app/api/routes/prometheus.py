"""``GET /monitoring/prometheus/metrics``: the service's telemetry for Prometheus to scrape.

The path is TensorFlow Serving's. The metrics are described in
:mod:`app.telemetry.service_metrics`; with ``TELEMETRY_ENABLED=false`` this route is not
installed (404).
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.telemetry.service_metrics import EXPOSITION_CONTENT_TYPE, ServiceMetrics

PROMETHEUS_PATH: Final = "/monitoring/prometheus/metrics"

router = APIRouter(tags=["monitoring"])


@router.get(
    PROMETHEUS_PATH,
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {EXPOSITION_CONTENT_TYPE: {"schema": {"type": "string"}}},
        }
    },
)
def read_prometheus_metrics(request: Request) -> Response:
    """Request counts and latency, predictions by digit, preprocessing and inference time,
    and the model's identity, in Prometheus' text format."""
    metrics: ServiceMetrics = request.app.state.telemetry
    return Response(content=metrics.exposition(), media_type=EXPOSITION_CONTENT_TYPE)
