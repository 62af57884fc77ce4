"""The application factory: wires settings, lifespan, middleware, error handlers and routes.

Run it with ``mnist-serve`` (see :mod:`app.cli`), which serves :func:`create_served_app`, or
``uvicorn --factory app.main:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.api.errors import install_error_handlers
from app.api.lifespan import lifespan
from app.api.middleware import RequestBodyLimitMiddleware, StartupFailureMessageMiddleware
from app.api.request_id import RequestIdMiddleware
from app.api.routes import health, metrics, model, page, predict, prometheus
from app.api.security import ApiKeyMiddleware, document_api_key, install_cors
from app.api.timeouts import RequestBodyTimeoutMiddleware
from app.core.config import Settings, get_settings
from app.imaging.decode_gate import DecodeGate
from app.telemetry.request_recorder import RequestRecorder
from app.telemetry.service_metrics import ServiceMetrics

DESCRIPTION = """\
Recognises a handwritten digit in an image: a photo, a scan, a canvas drawing or an MNIST
digit, in any size, polarity or format Pillow reads. The image is turned into what MNIST looks
like (28 x 28, white ink on black, centred by mass) and classified by a dense network trained
on MNIST. Errors are JSON: `{"error": {"code": "...", "message": "...", "request_id": "..."}}`;
every response carries its request ID in the `X-Request-ID` header.
"""


def create_app(settings: Settings | None = None, *, server_times_bodies: bool = False) -> FastAPI:
    """Build the app. ``settings`` defaults to those read from the environment.

    ``server_times_bodies`` says that the HTTP server enforces ``REQUEST_BODY_TIMEOUT_SECONDS``
    itself (``mnist-serve``'s protocol, :mod:`app.core.http_protocol`), so the app's own
    body-deadline middleware is left out; with any other server it must stay False.
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="MNIST digit recognition service",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry hooks are off: the service exports Prometheus
        # metrics instead, and looking for an OpenTelemetry provider costs ~5 µs per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.decode_gate = DecodeGate(
        max_concurrent=settings.MAX_CONCURRENT_DECODES, wait_seconds=settings.DECODE_WAIT_SECONDS
    )
    install_error_handlers(app)
    # Middleware, innermost first (each add_middleware wraps the ones added before it): the API
    # key is checked inside the body limits, so a refused body is bounded; the body deadline
    # bounds even the reading of a too-large body; CORS sits outside them, so a browser can
    # read their errors; every response gets its request ID.
    if settings.API_KEY is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.API_KEY.get_secret_value())
        document_api_key(app)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_bytes=settings.MAX_UPLOAD_BYTES)
    if not server_times_bodies:
        app.add_middleware(
            RequestBodyTimeoutMiddleware, timeout_seconds=settings.REQUEST_BODY_TIMEOUT_SECONDS
        )
    install_cors(app, settings.CORS_ALLOW_ORIGINS)
    app.add_middleware(StartupFailureMessageMiddleware)
    # The request ID layer, outermost, also reports every answer to the telemetry (errors of
    # the other middleware included).
    recorder: RequestRecorder | None = None
    if settings.TELEMETRY_ENABLED:
        app.state.telemetry = ServiceMetrics()
        recorder = RequestRecorder(app.state.telemetry)
        app.include_router(prometheus.router)
    app.add_middleware(RequestIdMiddleware, recorder=recorder)
    for router in (predict.router, metrics.router, model.router, health.router, page.router):
        app.include_router(router)
    predict.install_fast_routes(app)
    return app


def create_served_app() -> FastAPI:
    """The app as ``mnist-serve`` runs it, behind its own HTTP protocol
    (:class:`~app.core.http_protocol.GuardedHttpToolsProtocol`).

    That protocol times request bodies as well as heads, without a timer per request, so the
    app's body-deadline layer, which costs about 12 µs of CPU per request (an
    ``asyncio.timeout_at`` per read and a wrapped ``send``), is left out.
    """
    return create_app(server_times_bodies=True)
