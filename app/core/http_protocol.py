"""Uvicorn's httptools protocol with the guards it lacks: time limits on a request's head
(request line and headers) and body, and a size limit on its head.

Uvicorn (0.54) times out only idle keep-alive connections. A connection that never finishes its
headers, one byte every few seconds (slowloris), or that sends its headers and then trickles
its body (a "slow POST"), is kept for ever, and httptools buffers a header of any length.
:class:`GuardedHttpToolsProtocol` adds:

* a head deadline, ``REQUEST_HEADER_TIMEOUT_SECONDS`` from the connection's start (or, on a
  kept-alive connection, from the first byte of the next request): past it the client gets
  ``408`` and the connection is closed; a connection that sent nothing at all is just closed;
* a body deadline, ``REQUEST_BODY_TIMEOUT_SECONDS`` from the end of the head: past it the app's
  next read of the body raises :class:`~app.errors.RequestTimeoutError`, which the app answers
  as every other error (``408``, JSON with the request's ID, ``Connection: close``); an app
  that does not read again within :data:`BODY_TIMEOUT_ANSWER_GRACE_SECONDS`, or that has
  answered already, has its connection closed;
* a head size limit, :data:`MAX_REQUEST_HEAD_BYTES`: past it, ``431`` and close;
* a JSON error body (with a request ID) where uvicorn answers bytes that are not HTTP with a
  plain-text ``400``;
* a graceful shutdown that does not cut off a request already on its way. Uvicorn's own
  ``shutdown()`` closes every connection without a request being handled, including one whose
  request head is half-way through arriving and one accepted a moment before the signal whose
  request has not arrived yet: their clients see the connection dropped. Here a connection
  whose request has begun finishes that request (then closes), a freshly accepted connection
  gets :data:`SHUTDOWN_FIRST_REQUEST_GRACE_SECONDS` for its request to begin, and only an idle
  kept-alive connection is closed at once.

What no protocol class can help: connections the kernel has completed but the server has not
yet accepted when uvicorn closes its listening socket are reset by the kernel. Behind a load
balancer that is avoided by taking the instance out of rotation before signalling it (the
Kubernetes manifest's ``preStop`` pause, deploy/k8s/deployment.yaml).

``mnist-serve`` runs uvicorn with this class (``http=HTTP_PROTOCOL``) and the app built by
:func:`app.main.create_served_app`, which leaves out the app's own body-deadline middleware
(:mod:`app.api.timeouts`, for other servers); the import string keeps the configuration
picklable for uvicorn's worker processes.

The clocks cost next to nothing per request: a timer is armed only when a head or a body is
still incomplete after the bytes received so far have been parsed, which a request that
arrives in one piece never is (apart from the first head of a connection, timed from its
start). The body deadline reaches the app through a thin wrapper of the request's ``receive``,
made per request and kept by nobody but the request's task. Fed a raw-body ``POST /predict`` in
process, this class costs 11.1 µs of CPU per request against uvicorn's own 9.8 µs; the app's
body-deadline middleware it replaces cost 12-14 µs (``asyncio.timeout_at`` per read and a
wrapped ``send``). Storing the wrapper on the request's cycle instead would make a reference
cycle per request, left to the cyclic garbage collector: about 8 µs more per request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import orjson
from uvicorn._types import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    HTTPScope,
)
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from app.core.config import get_settings
from app.core.request_context import new_request_id
from app.errors import RequestTimeoutError

HTTP_PROTOCOL: Final = "app.core.http_protocol:GuardedHttpToolsProtocol"
"""The import string to hand uvicorn as ``http``."""

MAX_REQUEST_HEAD_BYTES: Final = 64 * 1024
"""Largest request line plus headers accepted (``431`` above); browsers send under 8 KiB."""

SHUTDOWN_FIRST_REQUEST_GRACE_SECONDS: Final = 1.0
"""At shutdown, how long a connection accepted just before, with nothing received yet, may take
to begin its request (a client sends it right after connecting, well within this)."""

BODY_TIMEOUT_ANSWER_GRACE_SECONDS: Final = 1.0
"""After a body deadline, how long the app has to answer before the connection is closed (an
app that is reading the body answers at once)."""

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
        settings = get_settings()
        self.head_timeout_seconds = settings.REQUEST_HEADER_TIMEOUT_SECONDS
        self.body_timeout_seconds = settings.REQUEST_BODY_TIMEOUT_SECONDS
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started_at = 0.0
        # Between a head's end and its body's end this is False: the body is being read.
        self._reading_head = True
        self._request_begun = False
        self._head_bytes = 0
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_started_at = 0.0
        # The request whose body missed its deadline: its next read raises RequestTimeoutError.
        self._timed_out_cycle: RequestResponseCycle | None = None
        # Each request's app gets a receive that raises RequestTimeoutError after its deadline.
        self._inner_app = self.app
        self.app = self._serve_with_body_deadline
        # Heads and bodies that ended on this connection, to tell which reads were head only.
        self._boundaries = 0
        # Set by shutdown(): the request under way or about to begin is this connection's last.
        self._last_request = False
        self._shutdown_grace_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's head."""
        super().connection_made(transport)
        self._head_started_at = self.loop.time()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timers with the connection."""
        self._cancel_head_timer()
        self._cancel_body_timer()
        if self._shutdown_grace_timer is not None:
            self._shutdown_grace_timer.cancel()
            self._shutdown_grace_timer = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server is stopping (its listening socket is already closed): let the request on
        this connection that is being handled, or has begun arriving, or is about to arrive on
        a fresh connection, be answered, then close; close an idle kept-alive connection now.

        Uvicorn then waits, up to ``SHUTDOWN_TIMEOUT_SECONDS``, until every connection has
        closed. The head and body time limits still apply to the requests finishing here.
        """
        if self.transport.is_closing():
            return
        self._last_request = True
        if self.cycle is not None and not self.cycle.response_complete:
            # A request is being handled: it is answered with "Connection: close".
            state = "finishing the request being handled"
            self.cycle.keep_alive = False
        elif self._request_begun:
            # Its head is arriving: on_headers_complete turns keep-alive off.
            state = "finishing the request whose head is arriving"
        elif self.cycle is None:
            state = "waiting for the first request of a connection accepted just before"
            self._shutdown_grace_timer = self.loop.call_later(
                SHUTDOWN_FIRST_REQUEST_GRACE_SECONDS, self._close_if_no_request
            )
        else:
            state = "closing an idle kept-alive connection"
            self.transport.close()
        logger.debug("shutdown: connection from %s: %s", _address(self.client), state)

    def _close_if_no_request(self) -> None:
        """The shutdown grace of a fresh connection is over: close it unless a request began."""
        self._shutdown_grace_timer = None
        if self.cycle is None and not self._request_begun and not self.transport.is_closing():
            logger.info(
                "shutdown: closed the connection from %s, which sent no request within %g s",
                _address(self.client),
                SHUTDOWN_FIRST_REQUEST_GRACE_SECONDS,
            )
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does; then refuse a head that has grown past the size limit, and
        start the clock of a head or body that is still incomplete.

        A chunk in which a head or a body ended is not counted (it may hold body bytes), so a
        head can exceed the limit by at most one read (256 KiB) before it is refused.
        """
        boundaries_before = self._boundaries
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._reading_head:
            if self._boundaries == boundaries_before:
                self._head_bytes += len(data)
                if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
                    self._refuse(
                        431,
                        "request_header_fields_too_large",
                        f"the request line and headers exceed {MAX_REQUEST_HEAD_BYTES} bytes",
                    )
                    return
            if self._request_begun and self._head_timer is None:
                self._arm_head_timer()
        elif self._body_timer is None:
            self._body_timer = self.loop.call_at(
                self._body_started_at + self.body_timeout_seconds, self._body_timed_out
            )

    def on_message_begin(self) -> None:
        """A request starts: on a kept-alive connection, its head's clock starts now."""
        super().on_message_begin()
        self._request_begun = True
        if self._head_timer is None:
            self._head_started_at = self.loop.time()

    def on_headers_complete(self) -> None:
        """The head arrived in time: stop its clock, start the body's; the app takes over."""
        self._cancel_head_timer()
        self._reading_head = False
        self._request_begun = False
        self._head_bytes = 0
        self._boundaries += 1
        self._body_started_at = self.loop.time()
        super().on_headers_complete()
        if self._last_request and self.cycle is not None:
            # The server is stopping: answer this request with "Connection: close".
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        """The body arrived; what follows on this connection is the next request's head."""
        super().on_message_complete()
        self._cancel_body_timer()
        self._reading_head = True
        self._boundaries += 1

    def send_400_response(self, msg: str) -> None:
        """A request that is not valid HTTP: the JSON error body, like every other error."""
        self._refuse(400, "invalid_http_request", "the request is not valid HTTP/1.1")

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_at(
            self._head_started_at + self.head_timeout_seconds, self._head_timed_out
        )

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

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    async def _serve_with_body_deadline(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Run the app on one request with a ``receive`` that raises
        :class:`RequestTimeoutError` once the request's body has missed its deadline (checked
        after each read, which the deadline wakes up).

        ``receive`` is the bound method of the request's cycle, which names the request even
        when, pipelined, it runs after the next one's head has arrived. Neither the cycle nor
        anything else keeps the wrapper, so it goes with the request (no reference cycle).
        """
        cycle = getattr(receive, "__self__", None)

        async def receive_within_deadline() -> ASGIReceiveEvent:
            message = await receive()
            if self._timed_out_cycle is cycle:
                raise RequestTimeoutError(
                    f"the request body did not arrive within {self.body_timeout_seconds:g} seconds"
                )
            return message

        await self._inner_app(scope, receive_within_deadline, send)

    def _body_timed_out(self) -> None:
        """The body did not arrive in time: the app's read of it raises, so the app answers
        408; if it has answered already, or does not answer soon, the connection is closed."""
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or self._reading_head or cycle is None:
            return
        logger.info(
            "the request body from %s did not arrive within %g seconds",
            _address(self.client),
            self.body_timeout_seconds,
        )
        if cycle.response_started:
            # Answered without waiting for the body: the connection cannot carry on.
            self.transport.close()
            return
        self._timed_out_cycle = cycle
        cycle.message_event.set()
        self._body_timer = self.loop.call_later(
            BODY_TIMEOUT_ANSWER_GRACE_SECONDS, self._close_after_body_timeout
        )

    def _close_after_body_timeout(self) -> None:
        """The app did not answer the late body in time: close the connection."""
        self._body_timer = None
        if not self.transport.is_closing():
            self.transport.close()

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


def _address(client: tuple[str, int] | None) -> str:
    """``host:port`` of a connection's client, as uvicorn's access log writes it."""
    return f"{client[0]}:{client[1]}" if client else "an unknown client"


_REASONS: Final = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
}
