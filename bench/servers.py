"""Start, probe and stop the services under test, each as its own process session on 127.0.0.1.

Every server is started with ``start_new_session=True``, so it and all its workers share one
process group, and :meth:`ServerProcess.stop` ends that group (SIGTERM, then SIGKILL). The
benchmark also stops every server still running when it exits, even on Ctrl-C or an error.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.process_stats import session_processes

LOOPBACK = "127.0.0.1"
"""The only address the benchmark talks to."""

MNIST_SERVE = Path(sys.executable).with_name("mnist-serve")
"""The service's console script in this environment (what ``./scripts/serve`` runs)."""

SERVE_EDGE = Path(__file__).resolve().parents[1] / "scripts" / "serve-edge"
"""nginx (``deploy/nginx/nginx.conf``) in front of ``mnist-serve`` on a Unix socket."""

EDGE_VARIABLES = frozenset({"EDGE_HEADER_TIMEOUT", "EDGE_BODY_TIMEOUT", "MNIST_SERVE"})
"""The variables ``scripts/serve-edge`` reads besides the service's settings."""

_running: set[ServerProcess] = set()


class ServerStartError(RuntimeError):
    """A server exited or did not become ready in time."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one service under test and what it offers."""

    name: str
    """Short label used in tables and JSON, e.g. ``ours`` or ``naive``."""
    kind: str
    """``ours``, ``naive`` or ``ceiling``; a variant of our service has kind ``ours``."""
    description: str
    command: tuple[str, ...]
    """Program and arguments; ``{port}`` is replaced by the port chosen at start."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables added to the environment; ``{port}`` is replaced as in ``command``."""
    env_removed: frozenset[str] = frozenset()
    """Variables of the calling environment that the service does not inherit."""
    workers: int = 1
    raw_body: bool = False
    """Whether ``POST /predict`` accepts the image as the raw body."""
    batch: bool = False
    """Whether it has ``POST /predict/batch``."""


def service_environment(spec: ServiceSpec, port: int) -> dict[str, str]:
    """The environment ``spec``'s service runs in on ``port``: this process's, without
    ``spec.env_removed``, plus ``spec.env`` with ``{port}`` filled in."""
    environment = {
        name: value for name, value in os.environ.items() if name not in spec.env_removed
    }
    environment.update({key: value.replace("{port}", str(port)) for key, value in spec.env.items()})
    return environment


def mnist_serve_spec(description: str, *, model_dir: Path, **settings: str) -> ServiceSpec:
    """``mnist-serve`` on 127.0.0.1 and a free port, serving ``model_dir``, with ``settings``
    (environment variables) and otherwise the defaults: none of the service's settings, nor a
    Prometheus multiprocess folder or Python warning filters, is inherited from the caller, so
    the optional protections (API key, CORS) are off unless given."""
    from app.core.config import Settings  # Imported here: the other services do not need it.

    return ServiceSpec(
        name="ours",
        kind="ours",
        description=description,
        command=(str(MNIST_SERVE), "--port", "{port}"),
        env={"HOST": LOOPBACK, "MODEL_DIR": str(model_dir), **settings},
        env_removed=frozenset(Settings.model_fields)
        | {"PROMETHEUS_MULTIPROC_DIR", "PYTHONWARNINGS"},
    )


def mnist_edge_spec(description: str, *, model_dir: Path, **settings: str) -> ServiceSpec:
    """``scripts/serve-edge`` on 127.0.0.1 and a free port: the repository's nginx configuration
    in front of this environment's ``mnist-serve`` (so ``.venv`` is not touched), with the
    environment of :func:`mnist_serve_spec`. ``settings`` may also set the edge's
    ``EDGE_HEADER_TIMEOUT`` and ``EDGE_BODY_TIMEOUT``; ``MAX_UPLOAD_BYTES`` sets the body limit
    of both. Stopping it (SIGTERM to its process group) stops nginx, then ``mnist-serve``."""
    app = mnist_serve_spec(description, model_dir=model_dir, **settings)
    return ServiceSpec(
        name="ours-edge",
        kind="ours",
        description=description,
        command=(str(SERVE_EDGE),),
        env={"PORT": "{port}", "MNIST_SERVE": str(MNIST_SERVE), **app.env},
        env_removed=app.env_removed | EDGE_VARIABLES,
    )


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> tuple[int, bytes]:
    """Send one request to ``127.0.0.1:port`` and return the status and the body."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout_s)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class ServerProcess:
    """One running service: started by :meth:`start`, stopped by :meth:`stop`.

    ``cpus`` pins the server (and so all its workers) to those CPUs with ``taskset``.
    """

    def __init__(
        self, spec: ServiceSpec, *, cwd: Path, log_path: Path, cpus: str | None = None
    ) -> None:
        self.spec = spec
        self.port = free_port()
        self._cwd = cwd
        self._log_path = log_path
        self._cpus = cpus
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started_at = 0.0

    @property
    def pid(self) -> int:
        """Pid of the process the benchmark started; it leads the server's session."""
        if self._process is None:
            raise RuntimeError("the server has not been started")
        return self._process.pid

    def _expand(self, text: str) -> str:
        return text.replace("{port}", str(self.port))

    def start(self) -> None:
        """Launch the server in a new session; it is not ready yet (see :meth:`wait_ready`)."""
        command = [self._expand(part) for part in self.spec.command]
        if self._cpus is not None:
            command = ["taskset", "--cpu-list", self._cpus, *command]
        environment = service_environment(self.spec, self.port)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self._log_path.open("wb")
        self._started_at = time.perf_counter()
        self._process = subprocess.Popen(
            command,
            cwd=self._cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _running.add(self)

    def wait_ready(self, *, timeout_s: float) -> float:
        """Poll ``GET /readyz`` until it answers 200; return seconds since :meth:`start`."""
        deadline = self._started_at + timeout_s
        while time.perf_counter() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise ServerStartError(f"{self.spec.name} exited during startup\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = http_request(self.port, "GET", "/readyz", timeout_s=1.0)
                if status == 200:
                    return time.perf_counter() - self._started_at
            time.sleep(0.02)
        raise ServerStartError(
            f"{self.spec.name} was not ready within {timeout_s:.0f} s\n{self.log_tail()}"
        )

    def send_signal(self, signal_number: signal.Signals) -> None:
        """Send ``signal_number`` to the process the benchmark started alone, not its group."""
        if self._process is None:
            raise RuntimeError("the server has not been started")
        self._process.send_signal(signal_number)

    def wait(self, *, timeout_s: float) -> int:
        """Wait until the process the benchmark started exits; return its exit status."""
        if self._process is None:
            raise RuntimeError("the server has not been started")
        return self._process.wait(timeout=timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server wrote to its log."""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, grace_s: float = 10.0) -> None:
        """End the server and every process of its session; safe to call twice."""
        process = self._process
        if process is not None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=grace_s)
            # A process that left the group but not the session would survive the group signal.
            # Linux does not reuse a pid while it still names a live session, so this scan only
            # finds processes of this server.
            for pid in [stat.pid for stat in session_processes(process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.perf_counter() + grace_s
            while session_processes(process.pid) and time.perf_counter() < deadline:
                time.sleep(0.05)
        if self._log is not None:
            self._log.close()
            self._log = None
        _running.discard(self)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _signal_group(group_id: int, signal_number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group_id, signal_number)


def stop_all_servers() -> None:
    """Stop every server this process started and has not stopped yet."""
    for server in list(_running):
        server.stop(grace_s=5.0)


def command_exists(program: str, search_path: Sequence[str] | None = None) -> bool:
    """Whether ``program`` is an executable on ``PATH`` (or in ``search_path``)."""
    directories = search_path if search_path is not None else os.get_exec_path()
    return any(os.access(Path(directory) / program, os.X_OK) for directory in directories)


atexit.register(stop_all_servers)
