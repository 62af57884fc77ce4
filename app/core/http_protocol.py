"""Uvicorn's httptools protocol with the two guards it lacks: a time limit and a size limit on
a request's head (request line and headers).

Uvicorn (0.54) times out only idle keep-alive connections. A connection that never finishes its
headers, one byte every few seconds (slowloris), is kept for ever, and httptools buffers a
header of any length. :class:`GuardedHttpToolsProtocol` adds:

* a head deadline, ``REQUEST_HEADER_TIMEOUT_SECONDS`` from the connection's start (or, on a
  kept-alive connection, from the first byte of the next request): past it the client gets
  ``408`` and the connection is closed; a connection that sent nothing at all is just closed;
* a head size limit, :data:`MAX_REQUEST_HEAD_BYTES`: past it, ``431`` and close;
* a JSON error body (with a request ID) where uvicorn answers bytes that are not HTTP with a
  plain-text ``400``.

Bodies are timed by the app (:mod:`app.api.timeouts`). ``mnist-serve`` runs uvicorn with this
class (``http=HTTP_PROTOCOL``); the import string keeps the configuration picklable for
uvicorn's worker processes. Per request it costs one timer armed and cancelled (about 2 µs).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.core.config import get_settings
from app.core.request_context import new_request_id

HTTP_PROTOCOL: Final = "app.core.http_protocol:GuardedHttpToolsProtocol"
"""The import string to hand uvicorn as ``http``."""

MAX_REQUEST_HEAD_BYTES: Final = 64 * 1024
"""Largest request line plus headers accepted (``431`` above); browsers send under 8 KiB."""

logger = logging.getLogger("app.http")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that bounds how long and how large a request head may be."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_timeout_seconds = get_settings().REQUEST_HEADER_TIMEOUT_SECONDS
        self._head_timer: asyncio.TimerHandle | None = None
        self._reading_head = True
        self._request_begun = False
        self._head_bytes = 0
        # Heads and bodies that ended on this connection, to tell which reads were head only.
        self._boundaries = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's head."""
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does, then refuse a head that has grown past the size limit.

        A chunk in which a head or a body ended is not counted (it may hold body bytes), so a
        head can exceed the limit by at most one read (256 KiB) before it is refused.
        """
        boundaries_before = self._boundaries
        super().data_received(data)
        if self._reading_head and self._boundaries == boundaries_before:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEAD_BYTES and not self.transport.is_closing():
                self._refuse(
                    431,
                    "request_header_fields_too_large",
                    f"the request line and headers exceed {MAX_REQUEST_HEAD_BYTES} bytes",
                )

    def on_message_begin(self) -> None:
        """A request starts: on a kept-alive connection, start the clock for its head."""
        super().on_message_begin()
        self._request_begun = True
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        """The head arrived in time: stop the clock, the app takes over."""
        self._cancel_head_timer()
        self._reading_head = False
        self._request_begun = False
        self._head_bytes = 0
        self._boundaries += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The body arrived; what follows on this connection is the next request's head."""
        super().on_message_complete()
        self._reading_head = True
        self._boundaries += 1

    def send_400_response(self, msg: str) -> None:
        """A request that is not valid HTTP: the JSON error body, like every other error."""
        self._refuse(400, "invalid_http_request", "the request is not valid HTTP/1.1")

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        """No complete head in time: 408 if a request had begun, else close quietly."""
        self._head_timer = None
        if self.transport.is_closing() or not self._reading_head:
            return
        if not self._request_begun:
            self.transport.close()
            return
        self._refuse(
            408,
            "request_timeout",
            f"the request headers did not arrive within {self.head_timeout_seconds:g} seconds",
        )

    def _refuse(self, status_code: int, code: str, message: str) -> None:
        """Answer with a JSON error before the app saw the request, and close the connection."""
        self._cancel_head_timer()
        request_id = new_request_id()
        logger.info("%s (%d); request %s; connection closed", message, status_code, request_id)
        body = orjson.dumps({"error": {"code": code, "message": message, "request_id": request_id}})
        head = (
            f"HTTP/1.1 {status_code} {_REASONS[status_code]}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            f"x-request-id: {request_id}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()


_REASONS: Final = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
}
