"""Request IDs: every request gets one, every response and error body carries it.

A client may send its own ``X-Request-ID`` (letters, digits and ``._:/+=@-``, at most 128
characters), for instance one its proxy or tracing system made up; any other value, or none,
is replaced by a fresh random ID. The ID is answered in the ``X-Request-ID`` response header,
in every error body (``{"error": {"code", "message", "request_id"}}``) and in the log lines
written while the request is handled (see :mod:`app.core.logging`), so a user's report can be
matched to the server's log.

Pure ASGI, like the other middleware here: per request it reads one header, sets a context
variable and adds one response header. Being the outermost layer, it also hands
every response's status and duration to the service's telemetry, when that is on (a
:class:`ResponseRecorder`), and may hold request bodies to their limits
(:func:`app.api.body_guard.call_with_body_limits`), which saves each of them a middleware layer
of its own.
"""

from __future__ import annotations

from time import perf_counter
from typing import Final, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.body_guard import BodyLimits, call_with_body_limits
from app.core.request_context import REQUEST_ID, acceptable_request_id, new_request_id

REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID_HEADER_KEY: Final = b"x-request-id"
_SERVER_ERROR: Final = 500


class ResponseRecorder(Protocol):
    """What is told about every HTTP response (the service's telemetry)."""

    def record_response(self, scope: Scope, status: int, seconds: float) -> None:
        """The request of ``scope`` was answered with ``status`` (500 if the app raised),
        ``seconds`` after it reached the app."""


class RequestIdMiddleware:
    """Give each HTTP request an ID (the client's, if sane) and answer it in a header.

    Install it outermost among the app's middleware so that every response passing through the
    others carries the header. Responses to unexpected exceptions are sent by Starlette's
    ``ServerErrorMiddleware``, outside all user middleware; the 500 handler adds the header
    itself (:func:`app.api.errors.handle_unexpected_error`). ``recorder``, if given, is told
    every request's status and duration (from here to the end of its response), errors of the
    other middleware included; a request whose app raises counts as 500, what the client gets.
    ``body_limits``, if given, are applied to every request's body here (see
    :mod:`app.api.body_guard`), with the request ID already set for their errors.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        recorder: ResponseRecorder | None = None,
        body_limits: BodyLimits | None = None,
    ) -> None:
        self.app = app
        self.recorder = recorder
        self.body_limits = body_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: str | None = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER_KEY:
                request_id = acceptable_request_id(value)
                break
        if request_id is None:
            request_id = new_request_id()
        # Not reset afterwards on purpose: the request's task ends with the request, and the
        # 500 handler, which runs outside this middleware, still needs the ID.
        REQUEST_ID.set(request_id)
        header = (_REQUEST_ID_HEADER_KEY, request_id.encode("ascii"))
        status: int | None = None  # The response's, once it has started.

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        recorder = self.recorder
        started = perf_counter() if recorder is not None else 0.0
        try:
            if self.body_limits is None:
                await self.app(scope, receive, send_with_request_id)
            else:
                await call_with_body_limits(
                    self.app,
                    scope,
                    receive,
                    send_with_request_id,
                    self.body_limits,
                    lambda: status is not None,
                )
        finally:
            if recorder is not None:
                recorder.record_response(
                    scope, _SERVER_ERROR if status is None else status, perf_counter() - started
                )
