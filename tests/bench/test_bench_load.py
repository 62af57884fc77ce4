"""wrk driven by the Lua scripts: what it sends, what it counts, and the server lifecycle."""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.process_stats import session_cpu_seconds, session_processes
from bench.servers import ServerProcess, ServerStartError, ServiceSpec
from bench.wrk_load import MULTIPART_SCRIPT, RAW_BODY_SCRIPT, run_wrk

requires_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _RecordingHandler(BaseHTTPRequestHandler):
    """Answers 200 to every POST and keeps the first request's headers and body."""

    protocol_version = "HTTP/1.1"
    recorded: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not self.recorded:
            self.recorded.append((self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


@pytest.fixture()
def recording_server() -> Iterator[tuple[ThreadingHTTPServer, list[tuple[str, bytes]]]]:
    recorded: list[tuple[str, bytes]] = []
    handler = type("Handler", (_RecordingHandler,), {"recorded": recorded})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, recorded
    server.shutdown()
    server.server_close()


def _image(tmp_path: Path, name: str = "digit.png") -> Path:
    path = tmp_path / name
    path.write_bytes(PNG_SIGNATURE + bytes(range(256)) * 3)
    return path


def _no_cpu() -> float:
    return 0.0


@requires_wrk
def test_multipart_script_sends_each_file_as_a_file_part(
    tmp_path: Path, recording_server: tuple[ThreadingHTTPServer, list[tuple[str, bytes]]]
) -> None:
    server, recorded = recording_server
    first, second = _image(tmp_path, "a.png"), _image(tmp_path, "b.png")
    second.write_bytes(second.read_bytes()[::-1])
    run_wrk(
        f"http://127.0.0.1:{server.server_port}/predict/batch",
        script=MULTIPART_SCRIPT,
        script_args=["image/png", str(first), str(second)],
        concurrency=1,
        duration_s=1,
        timeout_s=5,
        client_cpus=None,
        server_cpu_seconds=_no_cpu,
    )
    content_type, body = recorded[0]
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = list(message.iter_parts())
    assert [part.get_param("name", header="content-disposition") for part in parts] == [
        "file",
        "file",
    ]
    assert [part.get_filename() for part in parts] == ["a.png", "b.png"]
    assert [part.get_content_type() for part in parts] == ["image/png", "image/png"]
    assert [part.get_payload(decode=True) for part in parts] == [
        first.read_bytes(),
        second.read_bytes(),
    ]


@requires_wrk
def test_raw_body_script_sends_the_file_as_the_body(
    tmp_path: Path, recording_server: tuple[ThreadingHTTPServer, list[tuple[str, bytes]]]
) -> None:
    server, recorded = recording_server
    image = _image(tmp_path)
    result = run_wrk(
        f"http://127.0.0.1:{server.server_port}/predict",
        script=RAW_BODY_SCRIPT,
        script_args=["image/png", str(image)],
        concurrency=1,
        duration_s=1,
        timeout_s=5,
        client_cpus=None,
        server_cpu_seconds=_no_cpu,
    )
    assert recorded[0] == ("image/png", image.read_bytes())
    assert result.requests > 0
    assert result.status_counts == {"200": result.requests}


@requires_wrk
def test_run_wrk_against_ceiling_counts_every_response(
    tmp_path: Path, running_ceiling: ServerProcess
) -> None:
    result = run_wrk(
        f"http://127.0.0.1:{running_ceiling.port}/predict",
        script=MULTIPART_SCRIPT,
        script_args=["image/png", str(_image(tmp_path))],
        concurrency=2,
        duration_s=1,
        timeout_s=5,
        client_cpus=None,
        server_cpu_seconds=lambda: session_cpu_seconds(running_ceiling.pid),
    )
    assert result.requests > 50
    assert result.status_counts == {"200": result.requests}
    assert result.errors == 0
    assert 0 < result.latency_ms["p50"] <= result.latency_ms["p99"]
    assert result.server_cpu_s > 0


@requires_wrk
def test_run_wrk_counts_non_2xx_as_errors(tmp_path: Path, running_ceiling: ServerProcess) -> None:
    result = run_wrk(
        f"http://127.0.0.1:{running_ceiling.port}/not-a-route",
        script=RAW_BODY_SCRIPT,
        script_args=["image/png", str(_image(tmp_path))],
        concurrency=1,
        duration_s=1,
        timeout_s=5,
        client_cpus=None,
        server_cpu_seconds=_no_cpu,
    )
    assert result.requests > 0
    assert result.non_2xx == result.requests == result.errors


def test_run_wrk_other_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="127.0.0.1"):
        run_wrk(
            "http://example.com/predict",
            script=RAW_BODY_SCRIPT,
            script_args=["image/png", str(_image(tmp_path))],
            concurrency=1,
            duration_s=1,
            timeout_s=5,
            client_cpus=None,
            server_cpu_seconds=_no_cpu,
        )


def test_stop_server_ends_every_worker(make_ceiling: Callable[[int], ServerProcess]) -> None:
    server = make_ceiling(2)
    with server:
        server.wait_ready(timeout_s=60)
        pids = [stat.pid for stat in session_processes(server.pid)]
        assert len(pids) >= 3  # The supervisor and two workers.
    assert session_processes(server.pid) == []


def test_wait_ready_server_that_exits_is_reported(tmp_path: Path) -> None:
    spec = ServiceSpec(
        name="broken",
        kind="ours",
        description="exits at once",
        command=(sys.executable, "-c", "print('model file missing'); raise SystemExit(3)"),
    )
    with ServerProcess(spec, cwd=tmp_path, log_path=tmp_path / "broken.log") as server:
        with pytest.raises(ServerStartError, match="model file missing"):
            server.wait_ready(timeout_s=30)
