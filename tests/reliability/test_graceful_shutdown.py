"""SIGTERM under load, to the service as it is deployed (``scripts/serve-edge``: nginx in front of
``mnist-serve``): nginx stops taking connections, answers every request already on its way (one
whose body or head is still arriving, one on a connection made just before whose request
follows the signal, one being decoded in the threadpool, the background load's) and closes idle
kept-alive connections; then ``mnist-serve`` runs its shutdown, and the script exits 0, which is
what process managers read as a clean stop. ``mnist-serve`` alone (how it runs in its own
container) exits 0 on SIGTERM too, and the Kubernetes pod stops its two containers in order."""

from __future__ import annotations

import io
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from app.core.config import Settings
from bench.process_stats import session_processes
from bench.servers import LOOPBACK, ServerProcess
from tests.reliability.conftest import REPO_ROOT, edge_spec, service_spec
from tests.reliability.raw_http import app_log, edge_access_log

STOP_TIMEOUT_SECONDS: Final = 35.0
"""nginx's drain (at most worker_shutdown_timeout, 10 s), then the app's (at most
SHUTDOWN_TIMEOUT_SECONDS, 20 s), with slack."""
LOAD_THREADS: Final = 6
RESET_BY_PEER: Final = frozenset({"ConnectionResetError", "BrokenPipeError"})


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _digit_png() -> bytes:
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 13:16] = 255
    return _png(Image.fromarray(pixels))


def _large_png() -> bytes:
    """A 5,000 x 5,000 RGB PNG of a 1: a few hundred milliseconds of decoding."""
    image = Image.new("RGB", (5_000, 5_000), (236, 236, 230))
    ImageDraw.Draw(image).line([(2_500, 800), (2_500, 4_200)], fill=(20, 24, 60), width=200)
    return _png(image)


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[ServerProcess]:
    """``scripts/serve-edge``; the test signals the script alone (not its process group), as
    a process manager does, and reads its exit status. The app logs every request with its ID."""
    running = ServerProcess(
        edge_spec(SHUTDOWN_TIMEOUT_SECONDS="20", LOG_ACCESS="true", LOG_LEVEL="debug"),
        cwd=REPO_ROOT,
        log_path=tmp_path / "server.log",
    )
    running.start()
    try:
        running.wait_ready(timeout_s=60)
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class LoadOutcome:
    """One background request: its ID (sent as ``X-Request-ID``) and what it got."""

    request_id: str
    outcome: str
    """The status code, or what went wrong on the connection."""


def _post_once(port: int, body: bytes) -> LoadOutcome | None:
    """Send one prediction on a fresh connection (``Connection: close``), with a request ID of
    its own, and read its answer; None when the connection is refused (the listening socket is
    closed)."""
    request_id = f"load-{uuid.uuid4().hex}"
    try:
        connection = socket.create_connection((LOOPBACK, port), timeout=30)
    except ConnectionRefusedError:
        return None
    with connection:
        reply = b""
        try:
            connection.sendall(
                b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
                b"X-Request-ID: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                % (request_id.encode(), len(body))
                + body
            )
            while data := connection.recv(65536):
                reply += data
        except OSError as error:
            return LoadOutcome(request_id, type(error).__name__)
    if not reply:
        return LoadOutcome(request_id, "closed without an answer")
    status = reply.split(b" ", 2)[1].decode("ascii", "replace")
    return LoadOutcome(request_id, status)


def _background_load(port: int, stop: threading.Event, outcomes: list[LoadOutcome]) -> None:
    """Keep sending small predictions, one connection each, until ``stop`` or until the server
    refuses connections (it has closed its listening socket)."""
    body = _digit_png()
    while not stop.is_set():
        outcome = _post_once(port, body)
        if outcome is None:
            return
        outcomes.append(outcome)


def test_sigterm_drains_in_flight_requests_and_exits_zero(service: ServerProcess) -> None:
    digit = _digit_png()
    large = _large_png()
    stop_load = threading.Event()
    load_outcomes: list[LoadOutcome] = []
    load_threads = [
        threading.Thread(target=_background_load, args=(service.port, stop_load, load_outcomes))
        for _ in range(LOAD_THREADS)
    ]
    for thread in load_threads:
        thread.start()
    time.sleep(0.5)

    # In flight at SIGTERM: a request whose body has only half arrived, one whose head has only
    # half arrived, a connection made just before whose request follows a moment after ...
    slow_body = socket.create_connection((LOOPBACK, service.port), timeout=30)
    slow_body.sendall(
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Content-Length: %d\r\n\r\n" % len(digit) + digit[: len(digit) // 2]
    )
    slow_head = socket.create_connection((LOOPBACK, service.port), timeout=30)
    slow_head.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\n")
    late_request = socket.create_connection((LOOPBACK, service.port), timeout=30)
    # ... an idle kept-alive connection, which is closed at once ...
    idle = socket.create_connection((LOOPBACK, service.port), timeout=30)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    idle_first_reply = b""
    while not idle_first_reply.endswith(b"}"):
        idle_first_reply += idle.recv(65536)
    # ... and large images being decoded in the threadpool (sent in full before the signal).
    decoding = [socket.create_connection((LOOPBACK, service.port), timeout=60) for _ in range(2)]
    for connection in decoding:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(large) + large
        )
    time.sleep(0.3)
    service.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    late_request.sendall(
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Content-Length: %d\r\n\r\n" % len(digit) + digit
    )
    slow_head.sendall(b"Content-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(digit) + digit)
    slow_body.sendall(digit[len(digit) // 2 :])
    replies = [_read_until_closed(connection) for connection in (slow_body, slow_head)]
    late_reply = _read_until_closed(late_request)
    idle_after_sigterm = _read_until_closed(idle)
    decoded = [_read_until_closed(connection) for connection in decoding]
    exit_code = service.wait(timeout_s=STOP_TIMEOUT_SECONDS)
    stop_load.set()
    for thread in load_threads:
        thread.join(timeout=30)
    log = service.log_tail(lines=1_000_000)
    app_lines = app_log(service)
    edge_lines = edge_access_log(service)

    for reply in [*replies, late_reply, *decoded]:
        assert reply.startswith(b"HTTP/1.1 200 "), reply
        assert b"connection: close" in reply.lower()
        assert b'"digit":1' in reply
    assert idle_first_reply.startswith(b"HTTP/1.1 200 ")
    assert idle_after_sigterm == b""
    assert exit_code == 0, log[-3000:]
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    # The background load got answers, never a 5xx, and no request nginx had accepted was cut
    # off: each answered one reached the app. A connection can still be reset when it was made
    # just before SIGTERM but was still in the kernel's accept queue when nginx closed its
    # listening socket: the kernel resets it, and neither nginx nor the app ever saw it.
    answered = [outcome for outcome in load_outcomes if outcome.outcome == "200"]
    cut_off = [outcome for outcome in load_outcomes if outcome.outcome != "200"]
    assert answered
    assert all(f"[{outcome.request_id}]" in app_lines for outcome in answered)
    assert all(outcome.outcome in RESET_BY_PEER for outcome in cut_off), cut_off
    assert not any(outcome.request_id in app_lines for outcome in cut_off), cut_off
    assert not any(outcome.request_id in edge_lines for outcome in cut_off), cut_off
    assert len(cut_off) <= LOAD_THREADS


def _read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends on ``connection`` until it closes it."""
    reply = b""
    with connection:
        while data := connection.recv(65536):
            reply += data
    return reply


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    ("program", "stop_signal"),
    [
        ("mnist-serve", signal.SIGTERM),
        ("serve-edge", signal.SIGTERM),
        ("serve-edge", signal.SIGINT),
    ],
    ids=["mnist-serve-sigterm", "serve-edge-sigterm", "serve-edge-sigint"],
)
def test_stop_signal_on_an_idle_service_exits_zero(
    tmp_path: Path, program: str, stop_signal: signal.Signals, workers: str
) -> None:
    spec = edge_spec if program == "serve-edge" else service_spec
    service = ServerProcess(
        spec(WEB_CONCURRENCY=workers), cwd=REPO_ROOT, log_path=tmp_path / "server.log"
    )
    service.start()
    try:
        service.wait_ready(timeout_s=60)
        service.send_signal(stop_signal)
        exit_code = service.wait(timeout_s=STOP_TIMEOUT_SECONDS)
        left = _processes_left(service)
        log = service.log_tail(lines=1_000_000)
    finally:
        service.stop()

    assert exit_code == 0, log[-3000:]
    assert "Traceback" not in log
    assert left == [], left  # nginx, mnist-serve and its workers have all exited.


def test_stopping_the_process_group_stops_nginx_and_the_app(tmp_path: Path) -> None:
    # What the benchmark and the test fixtures do: SIGTERM to the whole group, SIGKILL after.
    service = ServerProcess(edge_spec(), cwd=REPO_ROOT, log_path=tmp_path / "server.log")
    service.start()
    service.wait_ready(timeout_s=60)
    started = time.monotonic()
    service.stop(grace_s=15)

    assert time.monotonic() - started < 5
    assert _processes_left(service) == []
    assert "Application shutdown complete" in service.log_tail(lines=1_000_000)


def _processes_left(service: ServerProcess, *, within: float = 2.0) -> list[str]:
    """Command lines of the processes of the service's session still alive after ``within``."""
    deadline = time.monotonic() + within
    while (left := session_processes(service.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [Path(f"/proc/{stat.pid}/cmdline").read_text(errors="replace") for stat in left]


def test_k8s_pod_stops_the_edge_before_the_app_and_within_the_grace_period() -> None:
    # Kubernetes runs both containers' preStop hooks at once and kills what is left when
    # terminationGracePeriodSeconds is over. nginx must have drained (its pause, then at most
    # worker_shutdown_timeout) before the app gets SIGTERM (after its pause), and the app's
    # pause plus its own drain must fit in the grace period.
    with (REPO_ROOT / "deploy" / "k8s" / "deployment.yaml").open(encoding="utf-8") as handle:
        pod = yaml.safe_load(handle)["spec"]["template"]["spec"]
    containers = {container["name"]: container for container in pod["containers"]}
    app, edge = containers["api"], containers["edge"]
    environment = {variable["name"]: variable.get("value") for variable in app["env"]}
    app_drain_seconds = int(
        environment.get("SHUTDOWN_TIMEOUT_SECONDS")
        or Settings.model_fields["SHUTDOWN_TIMEOUT_SECONDS"].default
    )
    app_pause_seconds = app["lifecycle"]["preStop"]["sleep"]["seconds"]
    (edge_hook,) = [
        part for part in edge["lifecycle"]["preStop"]["exec"]["command"] if "kill" in part
    ]
    edge_pause = re.match(r"sleep (\d+);", edge_hook)
    nginx_conf = (REPO_ROOT / "deploy" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    edge_drain = re.search(r"^worker_shutdown_timeout (\d+)s;", nginx_conf, re.MULTILINE)
    assert edge_pause is not None and edge_drain is not None
    assert "-QUIT" in edge_hook  # A graceful stop; nginx's SIGTERM is a fast one.

    assert int(edge_pause.group(1)) >= 1
    assert int(edge_pause.group(1)) + int(edge_drain.group(1)) < app_pause_seconds
    assert app_pause_seconds + app_drain_seconds < pod["terminationGracePeriodSeconds"]
