"""Fixtures of the reliability tests: the real service (``mnist-serve`` on 127.0.0.1, the way it
runs in production) and the server's memory, read from ``/proc``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.process_stats import session_memory
from bench.servers import ServerProcess, ServiceSpec, mnist_serve_spec

REPO_ROOT = Path(__file__).resolve().parents[2]

HOSTILE_SERVER_SETTINGS = {
    "MAX_UPLOAD_BYTES": str(1024 * 1024),
    "REQUEST_HEADER_TIMEOUT_SECONDS": "1",
    "REQUEST_BODY_TIMEOUT_SECONDS": "1.5",
}
"""The hostile-input server: a 1 MiB body limit and short timeouts keep the tests quick."""

StartService = Callable[..., ServerProcess]


def service_spec(**settings: str) -> ServiceSpec:
    """``mnist-serve`` on the committed model with ``settings`` (environment variables) set and
    the optional protections (API key, CORS) off unless given."""
    return mnist_serve_spec("mnist-serve under test", model_dir=REPO_ROOT / "models", **settings)


@pytest.fixture(scope="module")
def start_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartService]:
    """Start ``mnist-serve`` with the given settings and wait until it is ready; every server
    started is stopped after the module's tests."""
    started: list[ServerProcess] = []
    log_dir = tmp_path_factory.mktemp("services")

    def start(**settings: str) -> ServerProcess:
        server = ServerProcess(
            service_spec(**settings),
            cwd=REPO_ROOT,
            log_path=log_dir / f"service-{len(started)}.log",
        )
        started.append(server)
        server.start()
        server.wait_ready(timeout_s=60)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def hostile_server(start_service: StartService) -> ServerProcess:
    """One server for the hostile inputs, with :data:`HOSTILE_SERVER_SETTINGS`."""
    return start_service(**HOSTILE_SERVER_SETTINGS)


def worker_memory_kib(server: ServerProcess) -> tuple[int, int]:
    """The serving process's resident memory now and its peak (``VmRSS``, ``VmHWM``), KiB."""
    (worker,) = [memory for memory in session_memory(server.pid) if memory.role == "worker"]
    return worker.rss_kib, worker.peak_rss_kib


def reset_peak_memory(server: ServerProcess) -> None:
    """Reset the serving process's ``VmHWM`` to its current RSS (``/proc/<pid>/clear_refs``)."""
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")


@pytest.fixture()
def peak_memory_growth_kib() -> Callable[[ServerProcess, Callable[[], object]], int]:
    """Run an action against a server and return how far its peak RSS rose above the RSS it
    had before, in KiB (the memory the action cost the server at its worst)."""

    def measure(server: ServerProcess, action: Callable[[], object]) -> int:
        reset_peak_memory(server)
        before, _ = worker_memory_kib(server)
        action()
        _, peak = worker_memory_kib(server)
        return max(0, peak - before)

    return measure
