"""Logging set-up: every line, the service's and uvicorn's, goes to stderr in one format.

:func:`build_log_config` returns the ``logging.config.dictConfig`` dictionary handed to uvicorn
(its ``log_config``), which applies it in each worker before the app is created.
"""

from __future__ import annotations

from typing import Any

from app.core.config import LogLevel

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def build_log_config(level: LogLevel) -> dict[str, Any]:
    """A dictConfig for the ``app`` and ``uvicorn`` loggers at ``level``, all to stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {"stderr": handler},
        "loggers": {
            "app": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"level": "INFO"},
        },
    }
