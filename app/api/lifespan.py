"""Start-up and shutdown of each worker: load the model, prove it works, then (and only then)
serve.

A model that is missing, unreadable, truncated or of another architecture stops start-up with
one log line (:func:`app.startup.load_checked_model`); uvicorn then exits with a non-zero
status. The service never serves without a model.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import services_of
from app.classification import DigitClassifier
from app.errors import ModelLoadError
from app.imaging.pipeline import prepare_upload
from app.imaging.sandbox import DecodeSandbox
from app.imaging.structure import DecodeLimits
from app.inference.dense_network import use_single_threaded_blas
from app.inference.self_test import render_self_test_png
from app.startup import REFUSAL, decode_limits, load_checked_model
from app.telemetry.service_metrics import forget_this_process

logger = logging.getLogger("app.startup")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load and self-test the model, give the app its classifier and mark it ready; on
    shutdown, mark it not ready first.

    The work is synchronous on purpose: nothing is served until it is done.
    """
    services = services_of(app)
    settings = services.settings
    use_single_threaded_blas()
    try:
        model = load_checked_model(settings)
    except ModelLoadError:
        services.startup_failure_logged = True
        raise
    limits = decode_limits(settings)
    sandbox = DecodeSandbox(
        limits,
        processes=settings.MAX_CONCURRENT_DECODES,
        memory_bytes=settings.DECODE_MEMORY_MB << 20,
        cpu_seconds=settings.DECODE_CPU_SECONDS,
        timeout_seconds=settings.DECODE_TIMEOUT_SECONDS,
        wait_seconds=settings.DECODE_WAIT_SECONDS,
    )
    try:
        await _check_sandbox(sandbox, limits)
    except ModelLoadError:
        sandbox.close()
        services.startup_failure_logged = True
        raise
    services.classifier = DigitClassifier(
        model,
        limits,
        inline_max_pixels=settings.INLINE_MAX_PIXELS,
        sandbox=sandbox,
        observer=services.telemetry,
        digit_threshold=settings.DIGIT_CONFIDENCE_THRESHOLD,
    )
    if services.telemetry is not None:
        services.telemetry.set_model(model)
    services.ready = True
    logger.info(
        "serving model %s (sha256 %s, test accuracy %.4f) from %s",
        model.archive.model_name,
        model.short_sha256,
        model.evaluation.test.accuracy,
        settings.MODEL_DIR,
    )
    # What start-up made (modules, the app, the model) lives as long as the process: moved out
    # of the cyclic garbage collector's view, it is not scanned again by every full collection.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        # From here on the app is shutting down: /readyz answers 503.
        services.ready = False
        sandbox.close()
        if services.telemetry is not None:
            forget_this_process()


async def _check_sandbox(sandbox: DecodeSandbox, limits: DecodeLimits) -> None:
    """Prepare the self-test digit in a decoder process as well as here; refuse to start
    (with one log line) unless the two agree."""
    drawing = render_self_test_png()
    try:
        in_sandbox = await sandbox.prepare(drawing)
    except Exception as error:
        logger.critical("%s: the image decoder processes do not work: %r", REFUSAL, error)
        raise ModelLoadError("the image decoder processes do not work") from error
    if not np.array_equal(in_sandbox.pixels, prepare_upload(drawing, limits)):
        logger.critical("%s: the image decoder processes prepare digits differently", REFUSAL)
        raise ModelLoadError("the image decoder processes prepare digits differently")


class StartupFailureMessageMiddleware:
    """Keep a refused start-up to the one log line the lifespan already wrote.

    When the lifespan fails, Starlette hands the server the full traceback, which uvicorn logs.
    For a failure the lifespan has explained itself (it sets the app's
    ``Services.startup_failure_logged``) this drops that traceback, so the log says why the
    service did not start in one line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        application = scope.get("app")

        async def quiet_send(message: Message) -> None:
            if (
                message["type"] == "lifespan.startup.failed"
                and isinstance(application, FastAPI)
                and services_of(application).startup_failure_logged
            ):
                message = {"type": "lifespan.startup.failed", "message": ""}
            await send(message)

        await self.app(scope, receive, quiet_send)
