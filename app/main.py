"""The application factory: wires settings, lifespan, middleware, error handlers and routes.

Run it with ``mnist-serve`` (see :mod:`app.cli`) or ``uvicorn --factory app.main:create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.api.errors import install_error_handlers
from app.api.lifespan import lifespan
from app.api.middleware import RequestBodyLimitMiddleware, StartupFailureMessageMiddleware
from app.api.routes import health, metrics, model, page, predict
from app.core.config import Settings, get_settings

DESCRIPTION = """\
Recognises a handwritten digit in an image: a photo, a scan, a canvas drawing or an MNIST
digit, in any size, polarity or format Pillow reads. The image is turned into what MNIST looks
like (28 x 28, white ink on black, centred by mass) and classified by a dense network trained
on MNIST. Errors are JSON: `{"error": {"code": "...", "message": "..."}}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. ``settings`` defaults to those read from the environment."""
    settings = settings or get_settings()
    app = FastAPI(
        title="MNIST digit recognition service",
        description=DESCRIPTION,
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_bytes=settings.MAX_UPLOAD_BYTES)
    app.add_middleware(StartupFailureMessageMiddleware)
    for router in (predict.router, metrics.router, model.router, health.router, page.router):
        app.include_router(router)
    return app
