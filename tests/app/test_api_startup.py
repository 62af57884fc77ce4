"""Start-up and the real server: a bad model stops start-up with one clear log line and a
non-zero exit; the app never imports TensorFlow or Keras; size limits hold on a real socket."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from app.model_contract import EVALUATION_FILENAME, MODEL_FILENAME
from bench.servers import (
    LOOPBACK,
    MNIST_SERVE,
    ServerProcess,
    mnist_serve_spec,
    service_environment,
)
from tests.conftest import assert_lifespan_refuses, run_refused_mnist_serve

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60.0
LIMIT_BYTES = 100_000


def _bad_model_dir(kind: str, committed_model_dir: Path, folder: Path) -> Path:
    """A model folder that is broken in the way ``kind`` names."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "missing":
        return folder
    shutil.copy(committed_model_dir / EVALUATION_FILENAME, folder / EVALUATION_FILENAME)
    model_bytes = (committed_model_dir / MODEL_FILENAME).read_bytes()
    if kind == "truncated":
        (folder / MODEL_FILENAME).write_bytes(model_bytes[: len(model_bytes) // 3])
    elif kind == "wrong-architecture":
        with zipfile.ZipFile(committed_model_dir / MODEL_FILENAME) as source:
            members = {name: source.read(name) for name in source.namelist()}
        members["config.json"] = members["config.json"].replace(b'"units": 128', b'"units": 100')
        with zipfile.ZipFile(folder / MODEL_FILENAME, "w") as target:
            for name, data in members.items():
                target.writestr(name, data)
    else:
        raise ValueError(kind)
    return folder


BAD_MODELS = {
    "missing": "does not exist",
    "truncated": "not a readable .keras archive",
    "wrong-architecture": "wrong architecture",
}


@pytest.mark.parametrize(("kind", "reason"), BAD_MODELS.items())
def test_lifespan_refuses_bad_model(
    committed_model_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    reason: str,
) -> None:
    model_dir = _bad_model_dir(kind, committed_model_dir, tmp_path / kind)

    assert_lifespan_refuses(model_dir, reason, caplog)


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(("kind", "reason"), BAD_MODELS.items())
def test_mnist_serve_exits_non_zero_with_one_log_line_for_bad_model(
    committed_model_dir: Path, tmp_path: Path, kind: str, reason: str, workers: str
) -> None:
    model_dir = _bad_model_dir(kind, committed_model_dir, tmp_path / kind)

    completed = run_refused_mnist_serve(model_dir, reason, cwd=tmp_path, WEB_CONCURRENCY=workers)

    assert completed.stdout == ""


def test_mnist_serve_refuses_invalid_settings(committed_model_dir: Path, tmp_path: Path) -> None:
    spec = mnist_serve_spec(
        "mnist-serve with invalid settings",
        model_dir=committed_model_dir,
        MAX_UPLOAD_BYTES="-1",
        PORT="99999",
    )
    completed = subprocess.run(
        [str(MNIST_SERVE)],
        env=service_environment(spec, port=0),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_SECONDS,
    )

    assert completed.returncode == 2
    assert "invalid setting MAX_UPLOAD_BYTES" in completed.stderr
    assert "invalid setting PORT" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_app_never_imports_tensorflow_or_keras(committed_model_dir: Path) -> None:
    script = f"""
import sys
from fastapi.testclient import TestClient
from app.core.config import Settings
import app.cli
from app.main import create_app
with TestClient(create_app(Settings(MODEL_DIR={str(committed_model_dir)!r}))) as client:
    assert client.get("/readyz").status_code == 200
frameworks = ("tensorflow", "keras", "tf_keras", "torch", "jax")
heavy = sorted(name for name in sys.modules if name.split(".")[0] in frameworks)
print(heavy)
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )

    assert completed.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def running_server(
    committed_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``mnist-serve`` on a free port of 127.0.0.1 with MAX_UPLOAD_BYTES = 100,000; its URL."""
    spec = mnist_serve_spec(
        "mnist-serve with a small body limit",
        model_dir=committed_model_dir,
        MAX_UPLOAD_BYTES=str(LIMIT_BYTES),
    )
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with ServerProcess(spec, cwd=committed_model_dir, log_path=log_path) as server:
        server.wait_ready(timeout_s=START_TIMEOUT_SECONDS)
        yield f"http://{LOOPBACK}:{server.port}"


def _raw_exchange(url: str, request_head: bytes, body_chunks: list[bytes]) -> bytes:
    """Send a hand-written HTTP request, tolerating the server closing early; return the reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request_head)
        for chunk in body_chunks:
            try:
                connection.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        reply = b""
        try:
            while data := connection.recv(65536):
                reply += data
        except ConnectionResetError:
            pass
    return reply


def test_real_server_refuses_declared_oversized_body_before_reading_it(running_server: str) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Content-Length: 50000000\r\n\r\n"
    )

    started = time.monotonic()
    reply = _raw_exchange(running_server, head, [])  # the 50 MB body is never sent

    assert time.monotonic() - started < 5
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b'"code":"payload_too_large"' in reply


def test_real_server_stops_chunked_body_at_the_limit(running_server: str) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (16384, b"\x00" * 16384)

    reply = _raw_exchange(running_server, head, [chunk] * 200)  # 3.2 MB offered, 100 kB allowed

    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b'"code":"payload_too_large"' in reply


def test_real_server_serves_after_refusals(running_server: str) -> None:
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[4:24, 13:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")

    response = httpx.post(
        f"{running_server}/predict", files={"file": ("one.png", buffer.getvalue(), "image/png")}
    )

    assert response.status_code == 200
    assert response.json()["digit"] == 1
