"""SIGTERM under load: the service stops taking connections, answers every request already on
its way (one whose body or head is still arriving, one on a connection made just before whose
request follows the signal, one being decoded in the threadpool, the background load's), closes
idle kept-alive connections, runs its shutdown and exits 0, which is what process managers read
as a clean stop."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from app.core.config import Settings
from bench.servers import LOOPBACK, MNIST_SERVE, free_port

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_SECONDS: Final = 30.0
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


class Service:
    """``mnist-serve`` as its own process (not a process group), so the test signals exactly
    the process it started and reads that process's exit status."""

    def __init__(self, log_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.log_path = log_path
        environment = {
            **os.environ,
            "HOST": LOOPBACK,
            "MODEL_DIR": str(REPO_ROOT / "models"),
            "API_KEY": "",
            "CORS_ALLOW_ORIGINS": "",
            "LOG_LEVEL": "info",
            **settings,
        }
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(MNIST_SERVE), "--port", str(self.port)],
                cwd=REPO_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://{LOOPBACK}:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mnist-serve exited during start-up:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"mnist-serve was not ready in time:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    # The access log and the debug lines of the shutdown name each client's address and port.
    running = Service(
        tmp_path / "server.log", SHUTDOWN_TIMEOUT_SECONDS="20", LOG_ACCESS="true", LOG_LEVEL="debug"
    )
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@dataclass(frozen=True)
class LoadOutcome:
    """One background request: its ID (sent as ``X-Request-ID``), the client's port and what
    it got."""

    request_id: str
    client_port: int
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
        client_port = connection.getsockname()[1]
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
            return LoadOutcome(request_id, client_port, type(error).__name__)
    if not reply:
        return LoadOutcome(request_id, client_port, "closed without an answer")
    status = reply.split(b" ", 2)[1].decode("ascii", "replace")
    return LoadOutcome(request_id, client_port, status)


def _background_load(port: int, stop: threading.Event, outcomes: list[LoadOutcome]) -> None:
    """Keep sending small predictions, one connection each, until ``stop`` or until the server
    refuses connections (it has closed its listening socket)."""
    body = _digit_png()
    while not stop.is_set():
        outcome = _post_once(port, body)
        if outcome is None:
            return
        outcomes.append(outcome)


def _ports_seen_at_shutdown(log: str) -> set[int]:
    """Client ports of the connections the server's log shows it dealt with at shutdown.

    (Only those: a port seen in the access log may have been used again, by a later
    connection, within the test; the requests the server handled are told by their IDs.)"""
    return {
        int(port)
        for line in log.splitlines()
        if "shutdown:" in line
        for port in re.findall(rf"{re.escape(LOOPBACK)}:(\d+)\b", line)
    }


def test_sigterm_drains_in_flight_requests_and_exits_zero(service: Service) -> None:
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
    # ... and large images being decoded in the threadpool.
    with ThreadPoolExecutor(max_workers=2) as pool:
        decoding: list[Future[httpx.Response]] = [
            pool.submit(
                httpx.post,
                f"{service.url}/predict",
                content=large,
                headers={"Content-Type": "image/png"},
                timeout=60,
            )
            for _ in range(2)
        ]
        time.sleep(0.3)
        service.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        late_request.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
            b"Content-Length: %d\r\n\r\n" % len(digit) + digit
        )
        slow_head.sendall(
            b"Content-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(digit) + digit
        )
        slow_body.sendall(digit[len(digit) // 2 :])
        replies = [_read_until_closed(connection) for connection in (slow_body, slow_head)]
        late_reply = _read_until_closed(late_request)
        idle_after_sigterm = _read_until_closed(idle)
        decoded = [future.result() for future in decoding]
    exit_code = service.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    stop_load.set()
    for thread in load_threads:
        thread.join(timeout=30)
    log = service.log()

    for reply in [*replies, late_reply]:
        assert reply.startswith(b"HTTP/1.1 200 "), reply
        assert b"connection: close" in reply.lower()
        assert b'"digit":1' in reply
    assert idle_first_reply.startswith(b"HTTP/1.1 200 ")
    assert idle_after_sigterm == b""
    assert [response.status_code for response in decoded] == [200, 200]
    assert all(response.json()["digit"] == 1 for response in decoded)
    assert exit_code == 0, log[-3000:]
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    # The background load got answers, never a 5xx, and no request the server had accepted was
    # cut off. A connection can still be reset when it was made just before SIGTERM but was
    # still in the kernel's accept queue when the server closed its listening socket: the
    # kernel resets it, and the server's log shows it never saw that request (its ID) nor
    # dealt with that connection at shutdown.
    answered = [outcome for outcome in load_outcomes if outcome.outcome == "200"]
    cut_off = [outcome for outcome in load_outcomes if outcome.outcome != "200"]
    assert answered
    assert all(outcome.request_id in log for outcome in answered)
    assert all(outcome.outcome in RESET_BY_PEER for outcome in cut_off), cut_off
    assert not any(outcome.request_id in log for outcome in cut_off), cut_off
    ports_seen = _ports_seen_at_shutdown(log)
    assert not ports_seen & {outcome.client_port for outcome in cut_off}, cut_off
    assert len(cut_off) <= LOAD_THREADS


def _read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends on ``connection`` until it closes it."""
    reply = b""
    with connection:
        while data := connection.recv(65536):
            reply += data
    return reply


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_on_an_idle_service_exits_zero(tmp_path: Path, workers: str) -> None:
    service = Service(tmp_path / "server.log", WEB_CONCURRENCY=workers)
    try:
        service.wait_ready()
        service.process.send_signal(signal.SIGTERM)
        exit_code = service.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    finally:
        service.stop()

    assert exit_code == 0, service.log()[-3000:]
    assert "Traceback" not in service.log()


def test_k8s_grace_period_covers_the_prestop_pause_and_the_drain() -> None:
    # Kubernetes kills the container when terminationGracePeriodSeconds is over, counted from
    # the start of the preStop pause: the pause plus the service's drain must fit in it.
    with (REPO_ROOT / "deploy" / "k8s" / "deployment.yaml").open(encoding="utf-8") as handle:
        pod = yaml.safe_load(handle)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    environment = {variable["name"]: variable.get("value") for variable in container["env"]}
    drain_seconds = int(
        environment.get("SHUTDOWN_TIMEOUT_SECONDS")
        or Settings.model_fields["SHUTDOWN_TIMEOUT_SECONDS"].default
    )
    pause_seconds = container["lifecycle"]["preStop"]["sleep"]["seconds"]

    assert pause_seconds >= 1
    assert pause_seconds + drain_seconds < pod["terminationGracePeriodSeconds"]
