"""Pure-ASGI middleware: the request body size limit, and a quiet start-up failure.

Both are pure ASGI middleware (Starlette's documented pattern), which wrap the ASGI callables
directly instead of costing a task and a stream per request as ``BaseHTTPMiddleware`` does.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import services_of
from app.api.errors import answer_errors_before_response, send_error
from app.errors import DigitServiceError, PayloadTooLargeError

_CONTENT_LENGTH: Final = b"content-length"

DRAIN_LIMIT_FACTOR: Final = 4
"""Bodies up to this many times the limit are read to their end (and dropped) before the 413."""


class RequestBodyLimitMiddleware:
    """Refuse request bodies larger than ``max_body_bytes`` with 413, never holding more.

    A request that declares a larger ``Content-Length`` is refused before its body reaches
    the app. A body without ``Content-Length`` (chunked transfer) is counted as it streams in;
    at the first byte past the limit, it stops reaching the app and the request is answered
    413. Either way at most ``max_body_bytes`` of a body are ever held, so this runs before any
    multipart parsing. (With a ``Content-Length`` within the limit, the server itself never
    delivers more than that many bytes, so such bodies are not counted again.)

    Most clients send their whole body before they read the answer. Closing the connection on
    a client that is still sending makes its kernel report a reset connection instead of the
    413, so what remains of a body up to ``DRAIN_LIMIT_FACTOR`` times the limit (20 MiB by
    default: a too-large photo) is read and dropped first, within the body deadline
    (``REQUEST_BODY_TIMEOUT_SECONDS``, :class:`~app.api.timeouts.RequestBodyTimeoutMiddleware`);
    a larger body is refused at once. Behind the edge (nginx) a body over the edge's own limit
    never reaches the app; this keeps the app safe when it is run without one.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._drain_max_bytes = DRAIN_LIMIT_FACTOR * max_body_bytes

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"the request body is larger than the limit of {self.max_body_bytes} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared_length = _declared_content_length(scope)
        if declared_length is not None:
            if declared_length > self.max_body_bytes:
                if declared_length <= self._drain_max_bytes:
                    await _drain_quietly(receive, max_bytes=declared_length)
                await send_error(send, self._too_large())
                return
            await self.app(scope, receive, send)
            return

        received_bytes = 0

        async def counting_receive() -> Message:
            nonlocal received_bytes
            message = await receive()
            if message["type"] == "http.request":
                received_bytes += len(message.get("body", b""))
                if received_bytes > self.max_body_bytes:
                    if message.get("more_body", False):
                        await _drain_quietly(
                            receive, max_bytes=self._drain_max_bytes - received_bytes
                        )
                    raise self._too_large()
            return message

        # Inside a route the app's own handler answers the 413; one raised by a body read
        # outside a route is answered by this call.
        await answer_errors_before_response(
            self.app, scope, counting_receive, send, PayloadTooLargeError
        )


async def discard_request_body(receive: Receive, *, max_bytes: int | None = None) -> None:
    """Read what is left of the request body and drop it, stopping at its end, when the client
    disconnects, or after ``max_bytes``. Errors of a wrapped ``receive`` (too slow, too large)
    propagate."""
    discarded = 0
    while max_bytes is None or discarded <= max_bytes:
        message = await receive()
        if message["type"] != "http.request":
            return
        discarded += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _drain_quietly(receive: Receive, *, max_bytes: int) -> None:
    """:func:`discard_request_body`, ending early and silently on a too-slow body."""
    try:
        await discard_request_body(receive, max_bytes=max_bytes)
    except DigitServiceError:
        return


def _declared_content_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` as an int, or None when it has none."""
    for name, value in scope["headers"]:
        if name == _CONTENT_LENGTH:
            try:
                return int(value)
            except ValueError:
                # The HTTP server refuses malformed lengths before the app sees them; treat
                # one that slipped through as absent, so the body is counted instead.
                return None
    return None


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
