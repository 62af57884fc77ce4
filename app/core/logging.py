"""Logging set-up: every line, the service's and uvicorn's, goes to stderr in one format.

:func:`build_log_config` returns the ``logging.config.dictConfig`` dictionary handed to uvicorn
(its ``log_config``), which applies it in each worker before the app is created. Each line names
the request it was written for (``-`` outside a request), the ID that the response's
``X-Request-ID`` header and error body carry::

    2025-06-02 08:30:00,123 ERROR [4242] [3f9a0c41d2b7e8a65c0d14f2b9e3a7c6] app.api.errors: ...
"""

from __future__ import annotations

import logging
from typing import Any

from app.core.config import LogLevel
from app.core.request_context import current_request_id

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"

NO_REQUEST: str = "-"
"""What a log line shows as its request ID when it was not written for a request."""


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` (the current request's ID, or ``-``) to every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops one."""
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or NO_REQUEST
        return True


def build_log_config(level: LogLevel) -> dict[str, Any]:
    """A dictConfig for the ``app`` and ``uvicorn`` loggers at ``level``, all to stderr."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "plain",
        "stream": "ext://sys.stderr",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdLogFilter}},
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"stderr": handler},
        "loggers": {
            "app": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"level": "INFO"},
        },
    }
