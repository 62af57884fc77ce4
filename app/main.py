"""The application factory: wires settings, services, lifespan, middleware, errors and routes.

Run it with ``mnist-serve`` (see :mod:`app.cli`) or any ASGI server:
``uvicorn --factory app.main:create_app``.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from app.api.body_guard import BodyLimits, RequestBodyGuardMiddleware
from app.api.deps import Services
from app.api.errors import install_error_handlers
from app.api.inference_protocol.schemas import PROTOCOL_UNAUTHORIZED_RESPONSE
from app.api.lifespan import StartupFailureMessageMiddleware, lifespan
from app.api.request_id import RequestIdMiddleware
from app.api.routes import (
    evaluation,
    health,
    inference_protocol,
    model,
    numbers,
    page,
    predict,
    prometheus,
)
from app.api.schemas import UNAUTHORIZED_RESPONSE
from app.api.security import api_key_dependency, install_cors
from app.core.config import Settings, get_settings
from app.telemetry.request_recorder import RequestRecorder
from app.telemetry.service_metrics import ServiceMetrics

DESCRIPTION = """\
Recognises a handwritten digit in an image: a photo, a scan, a canvas drawing or an MNIST
digit, in any size, polarity or format Pillow reads. The image is turned into what MNIST looks
like (28 x 28, white ink on black, centred by mass) and classified by a dense network trained
on MNIST. Errors are JSON: `{"error": {"code": "...", "message": "...", "request_id": "..."}}`;
every response carries its request ID in the `X-Request-ID` header. The same model also speaks
the Open Inference Protocol (KServe V2) under `/v2`, whose errors are `{"error": "<message>"}`.
"""


_NO_OPENTELEMETRY: Final[TelemetryConfig] = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. ``settings`` defaults to those read from the environment."""
    settings = settings or get_settings()
    app = FastAPI(
        title="MNIST digit recognition service",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
        # The service's telemetry is its Prometheus metrics. FastAPI's native OpenTelemetry
        # instrumentation stays idle without an OpenTelemetry SDK (none is installed), yet it
        # looks up the global providers on every request: switched off.
        telemetry=_NO_OPENTELEMETRY,
    )
    services = Services(settings=settings)
    app.state.services = services
    install_error_handlers(app)
    if settings.API_KEY is None:
        app.include_router(predict.router)
        app.include_router(numbers.router)
        app.include_router(inference_protocol.infer_router)
    else:
        api_key = api_key_dependency(settings.API_KEY.get_secret_value())
        for upload_router in (predict.router, numbers.router):
            app.include_router(
                upload_router, dependencies=[api_key], responses={401: UNAUTHORIZED_RESPONSE}
            )
        app.include_router(
            inference_protocol.infer_router,
            dependencies=[api_key],
            responses={401: PROTOCOL_UNAUTHORIZED_RESPONSE},
        )
    for router in (
        evaluation.router,
        model.router,
        health.router,
        page.router,
        inference_protocol.router,
    ):
        app.include_router(router)
    # Middleware, innermost first (each add_middleware wraps the ones added before it). The
    # body guard runs in the outermost layer, the request ID's, unless CORS is on: then it is a
    # layer inside CORS, so that a browser can read its errors.
    body_limits = BodyLimits(
        max_body_bytes=settings.MAX_UPLOAD_BYTES,
        timeout_seconds=settings.REQUEST_BODY_TIMEOUT_SECONDS,
    )
    guard_in_request_id = not settings.CORS_ALLOW_ORIGINS
    if not guard_in_request_id:
        app.add_middleware(RequestBodyGuardMiddleware, limits=body_limits)
        install_cors(app, settings.CORS_ALLOW_ORIGINS)
    app.add_middleware(StartupFailureMessageMiddleware)
    # The request ID layer, outermost, also reports every answer to the telemetry (errors of
    # the other middleware included).
    recorder: RequestRecorder | None = None
    if settings.TELEMETRY_ENABLED:
        services.telemetry = ServiceMetrics()
        recorder = RequestRecorder(services.telemetry)
        app.include_router(prometheus.router)
    app.add_middleware(
        RequestIdMiddleware,
        recorder=recorder,
        body_limits=body_limits if guard_in_request_id else None,
    )
    return app
