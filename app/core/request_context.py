"""The ID of the request being handled, for log lines and error bodies.

:class:`app.api.request_id.RequestIdMiddleware` sets it at the start of every HTTP request; each
request runs in its own asyncio task, and the threadpool copies the context into its threads,
so :func:`current_request_id` names the right request wherever it is called from (a route, an
exception handler, a log call in a worker thread)::

    >>> token = REQUEST_ID.set("3f9a0c41d2b7e8a6")
    >>> current_request_id()
    '3f9a0c41d2b7e8a6'
    >>> REQUEST_ID.reset(token)
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from typing import Final

MAX_REQUEST_ID_LENGTH: Final = 128
"""Longest incoming ``X-Request-ID`` that is kept; a longer one is replaced."""

# Letters, digits and the punctuation of UUIDs, ULIDs and tracing headers; nothing that could
# break a log line or a header (no spaces, quotes, control characters or non-ASCII).
_ACCEPTABLE_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,%d}" % MAX_REQUEST_ID_LENGTH)

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
"""The current request's ID; ``None`` outside a request."""


def current_request_id() -> str | None:
    """The ID of the request being handled, or ``None`` outside a request."""
    return REQUEST_ID.get()


def new_request_id() -> str:
    """A fresh random request ID: 32 hex digits (128 bits), like a UUID without dashes."""
    return os.urandom(16).hex()


def acceptable_request_id(candidate: bytes) -> str | None:
    """``candidate`` (an ``X-Request-ID`` header value) as text if it is safe to reuse in logs,
    headers and JSON, else ``None``.

    >>> acceptable_request_id(b"req-42"), acceptable_request_id(b"a b\\r\\n")
    ('req-42', None)
    """
    if _ACCEPTABLE_REQUEST_ID.fullmatch(candidate):
        return candidate.decode("ascii")
    return None
