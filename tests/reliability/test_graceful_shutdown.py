"""SIGTERM under load: the service stops taking connections, answers every request already in
flight (one whose body is still arriving, one being decoded in the threadpool, the background
load's), runs its shutdown and exits 0, which is what process managers read as a clean stop."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Final

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from bench.servers import LOOPBACK, free_port

MNIST_SERVE: Final = Path(sys.executable).with_name("mnist-serve")
REPO_ROOT: Final = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_SECONDS: Final = 30.0


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
    running = Service(tmp_path / "server.log", SHUTDOWN_TIMEOUT_SECONDS="20")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def _background_load(url: str, stop: threading.Event, outcomes: Counter[str]) -> None:
    """Keep sending small predictions, one connection each, until ``stop``; count outcomes."""
    body = _digit_png()
    while not stop.is_set():
        try:
            response = httpx.post(
                f"{url}/predict",
                content=body,
                headers={"Content-Type": "image/png", "Connection": "close"},
                timeout=30,
            )
            outcomes[str(response.status_code)] += 1
        except httpx.ConnectError:
            # After SIGTERM the listening socket is closed: new connections are refused.
            outcomes["refused after SIGTERM"] += 1
            return
        except httpx.TransportError as error:
            outcomes[type(error).__name__] += 1


def test_sigterm_drains_in_flight_requests_and_exits_zero(service: Service) -> None:
    digit = _digit_png()
    large = _large_png()
    stop_load = threading.Event()
    load_outcomes: Counter[str] = Counter()
    load_threads = [
        threading.Thread(target=_background_load, args=(service.url, stop_load, load_outcomes))
        for _ in range(6)
    ]
    for thread in load_threads:
        thread.start()
    time.sleep(0.5)

    # In flight at SIGTERM: a request whose body has only half arrived ...
    slow = socket.create_connection((LOOPBACK, service.port), timeout=30)
    slow.sendall(
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Content-Length: %d\r\n\r\n" % len(digit) + digit[: len(digit) // 2]
    )
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
        time.sleep(0.5)
        slow.sendall(digit[len(digit) // 2 :])
        slow_reply = b""
        while not slow_reply.endswith(b"}") and (data := slow.recv(65536)):
            slow_reply += data
        slow.close()
        decoded = [future.result() for future in decoding]
    exit_code = service.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    stop_load.set()
    for thread in load_threads:
        thread.join(timeout=30)
    log = service.log()

    assert slow_reply.startswith(b"HTTP/1.1 200 "), slow_reply
    assert b'"digit":1' in slow_reply
    assert [response.status_code for response in decoded] == [200, 200]
    assert all(response.json()["digit"] == 1 for response in decoded)
    assert exit_code == 0, log[-3000:]
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    # The background load got answers, never a 5xx, and no request was cut off mid-way.
    assert load_outcomes["200"] > 0
    assert set(load_outcomes) <= {"200", "refused after SIGTERM"}, load_outcomes


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
