"""Request bodies the app will read: at most ``MAX_UPLOAD_BYTES``, in full within
``REQUEST_BODY_TIMEOUT_SECONDS``, under any ASGI server.

In every deployment the edge (nginx, ``deploy/nginx``) already refuses larger bodies and hands
the app only complete ones; this pure ASGI middleware keeps the app safe when it runs without the
edge (``./scripts/serve``, ``uvicorn --factory app.main:create_app``) and answers in the
service's own JSON error shape:

* A request that declares a larger ``Content-Length`` is refused with 413 before its body reaches
  the app. A body without ``Content-Length`` (chunked) is counted as it streams in, and refused
  at the first byte past the limit. Either way at most ``max_body_bytes`` of a body are held.
* Once a request has reached the app, its whole body must arrive within ``timeout_seconds``: a
  read still waiting at the deadline raises :class:`~app.errors.RequestTimeoutError` (408), so a
  client that trickles its body (a "slow POST") cannot hold a connection and a task for ever.
  Only requests that announce a body (``Content-Length`` above 0 or ``Transfer-Encoding``) are
  timed. The deadlines of all reads waiting on an event loop are watched by one timer, which
  looks for late ones every :data:`DEADLINE_CHECK_SECONDS` (so a late body is refused up to
  that much after its deadline): a timer armed and cancelled for every read would cost more
  than reading a body that has already arrived, as almost every body has.

Most clients send their whole body before they read the answer, and closing the connection on a
client that is still sending makes its kernel report a reset instead of the 413. So what remains
of a body up to :data:`DRAIN_LIMIT_FACTOR` times the limit is read and dropped first, within the
deadline; a larger one is refused at once. The errors are raised from ``receive``: inside a
route the app's exception handlers answer them, and a read outside a route is answered here.

The guard is :func:`call_with_body_limits`. Without CORS it runs inside the outermost layer,
:class:`~app.api.request_id.RequestIdMiddleware`, which saves a layer per request; with CORS it
is a layer of its own, :class:`RequestBodyGuardMiddleware`, inside ``CORSMiddleware``, so that
a browser can read its errors.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import send_error
from app.errors import DigitServiceError, PayloadTooLargeError, RequestTimeoutError

DRAIN_LIMIT_FACTOR: Final = 4
"""Bodies up to this many times the limit are read to their end (and dropped) before the 413."""

DEADLINE_CHECK_SECONDS: Final = 0.1
"""How often the body reads waiting on an event loop are checked against their deadlines."""

_CONTENT_LENGTH: Final = b"content-length"
_TRANSFER_ENCODING: Final = b"transfer-encoding"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """How large a request body may be, and how long after the request reached the app it may
    take to arrive."""

    max_body_bytes: int
    timeout_seconds: float

    def too_large(self) -> PayloadTooLargeError:
        """The 413 of a body over the limit."""
        return PayloadTooLargeError(
            f"the request body is larger than the limit of {self.max_body_bytes} bytes"
        )

    @property
    def drain_bytes(self) -> int:
        """Bodies up to this size are read to their end (and dropped) before the 413."""
        return DRAIN_LIMIT_FACTOR * self.max_body_bytes


async def call_with_body_limits(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    limits: BodyLimits,
    response_started: Callable[[], bool],
) -> None:
    """Run ``app`` on an HTTP request whose body is held to ``limits``.

    A limit's error that escapes ``app`` before its response has started (``response_started``
    says whether ``send`` has started one) is answered here with the JSON error; after, it is
    raised again.
    """
    declared_length, announces_body = _body_headers(scope)
    if not announces_body:
        await app(scope, receive, send)
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.timeout_seconds
    read_deadlines = _read_deadlines(loop)
    body_complete = False
    received_bytes = 0

    async def timed_receive() -> Message:
        nonlocal body_complete
        if body_complete:
            # After the body, a read only waits for the client to disconnect: not timed.
            return await receive()
        try:
            message = await read_deadlines.read(loop, receive, deadline)
        except TimeoutError:
            raise RequestTimeoutError(
                f"the request body did not arrive within {limits.timeout_seconds:g} seconds"
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_complete = True
        return message

    async def counting_receive() -> Message:
        nonlocal received_bytes
        message = await timed_receive()
        if message["type"] == "http.request":
            received_bytes += len(message.get("body", b""))
            if received_bytes > limits.max_body_bytes:
                if message.get("more_body", False):
                    await _drain(timed_receive, limits.drain_bytes - received_bytes)
                raise limits.too_large()
        return message

    if declared_length is not None and declared_length > limits.max_body_bytes:
        if declared_length <= limits.drain_bytes:
            await _drain(timed_receive, declared_length)
        await send_error(scope, send, limits.too_large())
        return
    # With a declared length the server never delivers more than that many bytes.
    guarded_receive = timed_receive if declared_length is not None else counting_receive
    try:
        await app(scope, guarded_receive, send)
    except DigitServiceError as error:
        # Raised by a read outside a route (inside one, the app's handlers answer it).
        if response_started():
            raise
        await send_error(scope, send, error)


class RequestBodyGuardMiddleware:
    """Refuse bodies over ``limits.max_body_bytes`` (413) and bodies not complete
    ``limits.timeout_seconds`` after the request reached the app (408):
    :func:`call_with_body_limits` as a layer of its own."""

    def __init__(self, app: ASGIApp, *, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await call_with_body_limits(
            self.app, scope, receive, tracking_send, self.limits, lambda: started
        )


class _ReadDeadlines:
    """The body reads waiting on one event loop, each with its deadline, and whether the one
    timer that cancels those still waiting past it is armed.

    It keeps no reference to its loop (nor the timer's handle, which has one), so that the
    table of the loops' deadlines, keyed weakly by loop, lets a finished loop go.
    """

    def __init__(self) -> None:
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer_armed = False

    async def read(
        self, loop: asyncio.AbstractEventLoop, receive: Receive, deadline: float
    ) -> Message:
        """``await receive()`` on ``loop``; raises :class:`TimeoutError` if it still waits at
        ``deadline`` (in loop time). One read at a time per task, as ASGI apps read bodies."""
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover - ASGI servers run every request in a task
            async with asyncio.timeout_at(deadline):
                return await receive()
        self._waiting[task] = deadline
        if not self._timer_armed:
            loop.call_later(DEADLINE_CHECK_SECONDS, self._check)
            self._timer_armed = True
        try:
            return await receive()
        except asyncio.CancelledError:
            # Ours (the deadline) unless the task was also cancelled by someone else.
            if task in self._expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            del self._waiting[task]
            self._expired.discard(task)

    def _check(self) -> None:
        """Cancel the reads past their deadline; look again later while any read waits."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, deadline in self._waiting.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer_armed = bool(self._waiting)
        if self._timer_armed:
            loop.call_later(DEADLINE_CHECK_SECONDS, self._check)


_DEADLINES_BY_LOOP: Final[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ReadDeadlines]] = (
    weakref.WeakKeyDictionary()
)


def _read_deadlines(loop: asyncio.AbstractEventLoop) -> _ReadDeadlines:
    """The body reads' deadlines of ``loop``."""
    deadlines = _DEADLINES_BY_LOOP.get(loop)
    if deadlines is None:
        deadlines = _DEADLINES_BY_LOOP[loop] = _ReadDeadlines()
    return deadlines


async def _drain(receive: Receive, max_bytes: int) -> None:
    """Read and drop what is left of a body, up to ``max_bytes``; stop silently at its end, when
    the client disconnects, or when the deadline passes."""
    drained = 0
    try:
        while drained <= max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
    except DigitServiceError:
        return


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The request's ``Content-Length`` (None without one, or a malformed one, which is then
    counted as it streams) and whether it announces a body at all."""
    declared: int | None = None
    announces = False
    for name, value in scope["headers"]:
        if name == _CONTENT_LENGTH:
            try:
                declared = int(value)
            except ValueError:
                declared = None
            announces = announces or value.strip() not in (b"0", b"")
        elif name == _TRANSFER_ENCODING:
            announces = True
    return declared, announces
