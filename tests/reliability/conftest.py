"""Fixtures of the reliability tests: the real service on 127.0.0.1, alone (``mnist-serve``) or
behind its edge as it is deployed (``scripts/serve-edge``: nginx in front of ``mnist-serve``), and
the app's memory, read from ``/proc``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.process_stats import ProcessMemory, app_memory
from bench.servers import ServerProcess, ServiceSpec, mnist_edge_spec, mnist_serve_spec

REPO_ROOT = Path(__file__).resolve().parents[2]

HOSTILE_SERVER_SETTINGS = {
    "MAX_UPLOAD_BYTES": str(1024 * 1024),
    "REQUEST_BODY_TIMEOUT_SECONDS": "1.5",
}
"""The hostile-input server (``mnist-serve`` alone): a 1 MiB body limit and a short body deadline
keep the tests quick."""

EDGE_SERVER_SETTINGS = {
    "MAX_UPLOAD_BYTES": str(1024 * 1024),
    "EDGE_HEADER_TIMEOUT": "1s",
    "EDGE_BODY_TIMEOUT": "1500ms",
    "LOG_ACCESS": "true",
}
"""The edge under test: nginx and the app with a 1 MiB body limit, nginx with 1 s to receive a
request's head and 1.5 s between two reads of its body; the app logs every request it sees."""

StartService = Callable[..., ServerProcess]


def service_spec(**settings: str) -> ServiceSpec:
    """``mnist-serve`` on the committed model with ``settings`` (environment variables) set and
    the optional protections (API key, CORS) off unless given."""
    return mnist_serve_spec("mnist-serve under test", model_dir=REPO_ROOT / "models", **settings)


def edge_spec(**settings: str) -> ServiceSpec:
    """``scripts/serve-edge`` (nginx in front of ``mnist-serve``) on the committed model, with
    ``settings`` as in :func:`service_spec`."""
    return mnist_edge_spec("serve-edge under test", model_dir=REPO_ROOT / "models", **settings)


@pytest.fixture(scope="module")
def start_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartService]:
    """Start ``mnist-serve`` (or, with ``edge=True``, ``scripts/serve-edge``) with the given
    settings and wait until it is ready; every server started is stopped after the module's
    tests."""
    started: list[ServerProcess] = []
    log_dir = tmp_path_factory.mktemp("services")

    def start(*, edge: bool = False, **settings: str) -> ServerProcess:
        server = ServerProcess(
            edge_spec(**settings) if edge else service_spec(**settings),
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


@pytest.fixture(scope="module")
def edge_server(start_service: StartService) -> ServerProcess:
    """One ``serve-edge`` for the hostile HTTP clients, with :data:`EDGE_SERVER_SETTINGS`."""
    return start_service(edge=True, **EDGE_SERVER_SETTINGS)


def app_worker(server: ServerProcess) -> ProcessMemory:
    """The process that runs the app (the one worker of ``mnist-serve``), alone or behind nginx."""
    (worker,) = [memory for memory in app_memory(server.pid) if memory.role == "worker"]
    return worker


def worker_memory_kib(server: ServerProcess) -> tuple[int, int]:
    """The serving process's resident memory now and its peak (``VmRSS``, ``VmHWM``), KiB."""
    worker = app_worker(server)
    return worker.rss_kib, worker.peak_rss_kib


def reset_peak_memory(server: ServerProcess) -> None:
    """Reset the serving process's ``VmHWM`` to its current RSS (``/proc/<pid>/clear_refs``)."""
    Path(f"/proc/{app_worker(server).pid}/clear_refs").write_text("5")


@pytest.fixture()
def peak_worker_rss_kib() -> Callable[[ServerProcess, Callable[[], object]], int]:
    """Run an action against a server and return the highest RSS its app worker had meanwhile
    (``VmHWM`` after it was reset to the RSS before the action), in KiB."""

    def measure(server: ServerProcess, action: Callable[[], object]) -> int:
        reset_peak_memory(server)
        action()
        _, peak = worker_memory_kib(server)
        return peak

    return measure


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
