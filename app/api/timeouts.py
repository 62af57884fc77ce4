"""Slow clients: a request body must arrive in full within ``REQUEST_BODY_TIMEOUT_SECONDS``.

Uvicorn waits for a request body as long as the client keeps the connection open, so a client
that sends its headers and then trickles the body a byte at a time (a "slow POST" or slowloris
attack on the body) would hold a connection, a task and a partly read body for ever. This
middleware gives the whole body one deadline, counted from when the request reaches the app;
past it, the read stops and the request is answered ``408`` with the JSON error body, and the
connection is closed. (Headers that trickle are the edge's business.)

Behind the edge (nginx, ``deploy/nginx``) bodies reach the app only once complete, so there
this deadline never fires; it keeps the app safe under any ASGI server run without the edge.
Only requests that announce a body (``Content-Length`` above 0 or ``Transfer-Encoding``) are
timed; pure ASGI, one ``asyncio.timeout_at`` per read of the body.
"""

from __future__ import annotations

import asyncio
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import answer_errors_before_response
from app.errors import RequestTimeoutError

_CONTENT_LENGTH: Final = b"content-length"
_TRANSFER_ENCODING: Final = b"transfer-encoding"


class RequestBodyTimeoutMiddleware:
    """Answer ``408`` when a request's body has not fully arrived ``timeout_seconds`` after the
    request reached the app.

    The :class:`~app.errors.RequestTimeoutError` is raised from ``receive``, so inside a route
    the app's exception handler answers it; a read outside a route is answered here.
    """

    def __init__(self, app: ASGIApp, *, timeout_seconds: float) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _announces_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        body_complete = False

        async def timed_receive() -> Message:
            nonlocal body_complete
            if body_complete:
                # After the body, a read only waits for the client to disconnect: not timed.
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the request body did not arrive within {self.timeout_seconds:g} seconds"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_complete = True
            return message

        await answer_errors_before_response(
            self.app, scope, timed_receive, send, RequestTimeoutError
        )


def _announces_body(scope: Scope) -> bool:
    """Whether the request says a body follows: a non-zero ``Content-Length`` or a
    ``Transfer-Encoding``."""
    for name, value in scope["headers"]:
        if name == _CONTENT_LENGTH:
            return value.strip() not in (b"0", b"")
        if name == _TRANSFER_ENCODING:
            return True
    return False
