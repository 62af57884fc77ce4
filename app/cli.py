"""``mnist-serve``: run the service with stock uvicorn (uvloop, httptools), configured from the
environment.

    mnist-serve                              # 127.0.0.1:8000, one worker, models/
    HOST=0.0.0.0 WEB_CONCURRENCY=2 mnist-serve
    mnist-serve --port 9000
    mnist-serve --uds /tmp/app.sock          # behind the edge (scripts/serve-edge)

Uvicorn does not guard against slow or hostile clients (trickled headers, endless trailers,
pipelining floods); in every deployment nginx sits in front of it (``deploy/nginx``), and
``./scripts/serve`` alone is for local use.

Exit status: 0 after a normal shutdown (SIGTERM or Ctrl-C: in-flight requests are answered
first, for up to SHUTDOWN_TIMEOUT_SECONDS), 2 for invalid settings, 1 (or uvicorn's 3) when the
model cannot be loaded, with one log line saying why.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.config
import os
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.logging import build_log_config
from app.core.memory import limit_malloc_arenas
from app.errors import ModelLoadError
from app.startup import load_checked_model
from app.telemetry.service_metrics import MULTIPROCESS_DIR_VARIABLE

APP_FACTORY = "app.main:create_app"


EXIT_OK = 0
EXIT_INVALID_SETTINGS = 2
EXIT_MODEL_UNAVAILABLE = 1

logger = logging.getLogger("app.cli")


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mnist-serve",
        description=(
            "Serve the MNIST digit model over HTTP. Settings come from environment variables "
            "(MODEL_DIR, HOST, PORT, WEB_CONCURRENCY, MAX_UPLOAD_BYTES, LOG_LEVEL, LOG_ACCESS, "
            "...); the options below override the first three."
        ),
    )
    parser.add_argument("--host", help="interface to listen on (env HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (env PORT, default 8000)")
    parser.add_argument(
        "--workers", type=int, help="worker processes (env WEB_CONCURRENCY, default 1)"
    )
    parser.add_argument(
        "--uds",
        help="listen on this Unix domain socket instead of HOST:PORT (how the edge reaches it)",
    )
    return parser.parse_args(argv)


def _read_settings() -> Settings | None:
    """The settings from the environment, or None after printing why they are invalid."""
    try:
        return get_settings()
    except ValidationError as error:
        for issue in error.errors():
            name = ".".join(str(part) for part in issue["loc"])
            print(f"mnist-serve: invalid setting {name}: {issue['msg']}", file=sys.stderr)
        return None


def _exit_on_sigterm(signal_number: int, frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handler: stop with status 0.

    While it serves, uvicorn handles SIGTERM itself: it stops accepting connections, lets the
    requests in flight finish, runs the lifespan shutdown, then restores this handler and
    raises the signal again so that its caller sees it. Without this handler that second
    signal kills the process (status -15, or 143 in a shell), which process managers report
    as a failure even though the drain was complete. Before uvicorn starts, it ends start-up.
    """
    raise SystemExit(EXIT_OK)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until it is stopped; return the process exit status."""
    arguments = _parse_arguments(argv)
    settings = _read_settings()
    if settings is None:
        return EXIT_INVALID_SETTINGS
    workers = arguments.workers or settings.WEB_CONCURRENCY
    log_config = build_log_config(settings.LOG_LEVEL)
    logging.config.dictConfig(log_config)
    # With several workers, uvicorn's supervisor stops when a worker cannot start but exits 0;
    # checking the model here first turns a bad model into a clear non-zero exit.
    if workers > 1:
        try:
            load_checked_model(settings)
        except ModelLoadError:
            return EXIT_MODEL_UNAVAILABLE
    limit_malloc_arenas()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with _prometheus_multiprocess_dir(enabled=settings.TELEMETRY_ENABLED and workers > 1):
        _run_uvicorn(arguments, settings, workers, log_config)
    return EXIT_OK


@contextlib.contextmanager
def _prometheus_multiprocess_dir(*, enabled: bool) -> Iterator[None]:
    """With several workers, give ``prometheus_client`` a fresh multiprocess folder, so that a
    scrape of any worker reports all of them; it is removed when the server stops. A folder the
    environment already names (``PROMETHEUS_MULTIPROC_DIR``) is used as it is."""
    if not enabled or os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="mnist-serve-prometheus-") as directory:
        # The workers are started afresh and inherit the environment, so they see it.
        os.environ[MULTIPROCESS_DIR_VARIABLE] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR_VARIABLE]


def _run_uvicorn(
    arguments: argparse.Namespace, settings: Settings, workers: int, log_config: dict[str, Any]
) -> None:
    """Serve until stopped."""
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=arguments.host or settings.HOST,
        port=arguments.port or settings.PORT,
        uds=arguments.uds,
        workers=workers,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        log_config=log_config,
        access_log=settings.LOG_ACCESS,
        # X-Forwarded-For only changes the client address, which only the access log shows:
        # without it, the per-request proxy-headers layer is left out.
        proxy_headers=settings.LOG_ACCESS,
        server_header=False,
        timeout_graceful_shutdown=settings.SHUTDOWN_TIMEOUT_SECONDS,
    )


if __name__ == "__main__":
    sys.exit(main())
