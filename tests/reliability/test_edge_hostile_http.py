"""HTTP-level attacks on the service as deployed (nginx from ``deploy/nginx/nginx.conf`` in front
of ``mnist-serve``, started by ``scripts/serve-edge``): the ones that broke the hand-made HTTP
server it replaces (endless chunked trailers, pipelining without reading, many slow uploads, a
kept-alive connection fed bare line ends, garbage after a valid request, ``Expect:
100-continue`` over the limit, a thousand idle connections), and every error nginx answers
itself, which must be the service's JSON error with an ``X-Request-ID``.

Each case is bounded in time and size and talks only to 127.0.0.1. The app's worker must stay
under :data:`WORKER_RSS_LIMIT_MIB` (read from ``/proc``), and after each case a fresh
``GET /readyz`` through the edge is answered 200 at once. The edge runs with a 1 MiB body limit,
EDGE_HEADER_TIMEOUT=1s and EDGE_BODY_TIMEOUT=1500ms (``conftest.py``).
"""

from __future__ import annotations

import os
import re
import resource
import select
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from bench.process_stats import session_processes
from bench.servers import LOOPBACK, ServerProcess
from tests.reliability.conftest import REPO_ROOT, edge_spec
from tests.reliability.raw_http import (
    app_log,
    connection_to,
    edge_logged,
    json_error,
    parse_reply,
    read_response,
    read_until_closed,
    ready_promptly,
)

MeasurePeak = Callable[[ServerProcess, Callable[[], object]], int]

LIMIT_BYTES: Final = 1024 * 1024
HEADER_TIMEOUT: Final = 1.0
BODY_TIMEOUT: Final = 1.5
SLACK: Final = 1.5
WORKER_RSS_LIMIT_MIB: Final = 300
NGINX_RSS_LIMIT_MIB: Final = 64
"""nginx's worker needs a few MiB; a flood it held in memory would show far above this."""
SANE_REQUEST_ID: Final = "edge-test.1:a/b+c=d@e"


def _connections_per_client() -> int:
    """Requests at once that nginx allows one client address (429 above), from its config."""
    config = (REPO_ROOT / "deploy" / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    match = re.search(r"^\s*limit_conn per_client (\d+);", config, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


CONNECTIONS_PER_CLIENT: Final = _connections_per_client()


@pytest.fixture(autouse=True)
def _edge_still_ready_after(edge_server: ServerProcess) -> Iterator[None]:
    yield
    assert ready_promptly(edge_server), edge_server.log_tail()


def _request_id() -> str:
    return f"hostile-{uuid.uuid4().hex}"


def _nginx_worker_rss_mib(server: ServerProcess) -> float:
    """Resident memory of nginx's worker process, MiB."""
    for stat in session_processes(server.pid):
        command = Path(f"/proc/{stat.pid}/cmdline").read_bytes()
        if command.startswith(b"nginx: worker process"):
            status = Path(f"/proc/{stat.pid}/status").read_text()
            (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
            return int(line.split()[1]) / 1024
    raise AssertionError("no nginx worker process found")


def _send_for(connection: socket.socket, data: bytes, *, seconds: float) -> int:
    """Send ``data`` over and over for ``seconds`` without reading, never blocking for long;
    return the bytes sent. Stops early when the server closes the connection."""
    connection.setblocking(False)
    sent = 0
    position = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        _, writable, _ = select.select([], [connection], [], min(left, 0.1))
        if not writable:
            continue
        try:
            count = connection.send(data[position:])
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += count
        position = (position + count) % len(data)
    connection.setblocking(True)
    return sent


# (a) Chunked trailers that never end.


@pytest.mark.parametrize("method", [b"POST", b"GET"])
def test_endless_chunked_trailers_never_reach_the_app(
    edge_server: ServerProcess, peak_worker_rss_kib: MeasurePeak, method: bytes
) -> None:
    request_id = _request_id()
    head = (
        method + b" /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"X-Request-ID: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % request_id.encode()
    )
    trailer_lines = b"X-T: " + b"a" * 1000 + b"\r\n"
    outcome: dict[str, float] = {}

    def flood() -> None:
        with connection_to(edge_server) as connection:
            connection.sendall(head + b"10\r\n" + bytes(16) + b"\r\n0\r\n")
            outcome["sent"] = _send_for(connection, trailer_lines * 64, seconds=2.0)
            outcome["nginx_rss_mib"] = _nginx_worker_rss_mib(edge_server)
            stopped = time.monotonic()
            outcome["reply_bytes"] = len(read_until_closed(connection))
            outcome["closed_after"] = time.monotonic() - stopped

    peak_kib = peak_worker_rss_kib(edge_server, flood)

    print(f"trailers ({method.decode()}): {outcome}, app worker peak {peak_kib / 1024:.0f} MiB")
    assert peak_kib < WORKER_RSS_LIMIT_MIB * 1024
    assert outcome["nginx_rss_mib"] < NGINX_RSS_LIMIT_MIB
    # nginx reads and drops trailer lines while they come, then closes the connection once
    # they stop, at the body timeout; the request never reaches the app.
    assert outcome["reply_bytes"] == 0
    assert outcome["closed_after"] < BODY_TIMEOUT + SLACK
    assert edge_logged(edge_server, request_id, 408)
    assert f"[{request_id}]" not in app_log(edge_server)


# (b) Pipelining without reading the answers.


def test_pipelined_requests_never_read_cost_the_app_nothing(
    edge_server: ServerProcess, peak_worker_rss_kib: MeasurePeak
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
    outcome: dict[str, float] = {}

    def pipeline() -> None:
        with connection_to(edge_server) as connection:
            outcome["sent_mib"] = _send_for(connection, request * 4096, seconds=2.0) / 1024 / 1024
            outcome["nginx_rss_mib"] = _nginx_worker_rss_mib(edge_server)

    peak_kib = peak_worker_rss_kib(edge_server, pipeline)

    print(f"pipelining: {outcome}, app worker peak {peak_kib / 1024:.0f} MiB")
    assert outcome["sent_mib"] > 0.5
    assert peak_kib < WORKER_RSS_LIMIT_MIB * 1024
    assert outcome["nginx_rss_mib"] < NGINX_RSS_LIMIT_MIB


# (c) Many slow uploads just under the limit.


def test_many_slow_uploads_under_the_limit_are_buffered_and_answered(
    edge_server: ServerProcess, peak_worker_rss_kib: MeasurePeak
) -> None:
    clients = 150
    body = os.urandom(LIMIT_BYTES - 1024)
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    pieces = [body[start : start + 65_536] for start in range(0, len(body), 65_536)]
    replies: list[bytes] = []

    def upload_slowly() -> None:
        connections = [
            socket.create_connection((LOOPBACK, edge_server.port)) for _ in range(clients)
        ]
        try:
            for connection in connections:
                connection.sendall(head)
            # A piece to every client every 0.1 s: each body takes about 1.6 s to arrive.
            for piece in pieces:
                for connection in connections:
                    try:
                        connection.sendall(piece)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                time.sleep(0.1)
            for connection in connections:
                connection.settimeout(30)
                replies.append(read_until_closed(connection))
        finally:
            for connection in connections:
                connection.close()

    started = time.monotonic()
    peak_kib = peak_worker_rss_kib(edge_server, upload_slowly)
    elapsed = time.monotonic() - started

    statuses = sorted(json_error(reply)[0] for reply in replies)
    counts = {status: statuses.count(status) for status in set(statuses)}
    print(f"{clients} slow uploads: {counts} in {elapsed:.1f} s, peak {peak_kib / 1024:.0f} MiB")
    # The app got every body it saw whole (random bytes: not an image); the rest were refused
    # by the per-address connection limit before their bodies were read.
    assert set(counts) <= {400, 429}
    assert counts.get(400, 0) >= min(clients, CONNECTIONS_PER_CLIENT) // 2
    assert peak_kib < WORKER_RSS_LIMIT_MIB * 1024


# (d) Bare line ends on a kept-alive connection.


def test_bare_line_ends_after_a_request_do_not_keep_the_connection(
    edge_server: ServerProcess,
) -> None:
    with connection_to(edge_server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        first = connection.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < HEADER_TIMEOUT + SLACK + 1.0:
            try:
                connection.sendall(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            readable, _, _ = select.select([connection], [], [], 0.5)
            if readable:
                try:
                    if connection.recv(65536) == b"":
                        closed_after = time.monotonic() - started
                        break
                except ConnectionResetError:
                    closed_after = time.monotonic() - started
                    break

    print(f"bare CRLF every 0.5 s: closed after {closed_after} s")
    assert closed_after is not None
    assert closed_after < HEADER_TIMEOUT + SLACK


# (e) Garbage after a valid request.


def test_valid_request_followed_by_garbage_is_still_answered(edge_server: ServerProcess) -> None:
    with connection_to(edge_server) as connection:
        connection.sendall(
            b"GET /readyz HTTP/1.1\r\nHost: test\r\n\r\n\x16\x03\x01\x00\xff garbage\r\n\r\n"
        )
        reply = read_until_closed(connection)

    status, headers, body = parse_reply(reply)
    assert status == 200
    assert b'"ready"' in body
    second = reply[reply.index(b"\r\n\r\n") + 4 + int(headers["content-length"]) :]
    if second:  # The garbage is answered as what it is, in JSON, and the connection closed.
        assert json_error(second)[0] == 400


# (f) Expect: 100-continue over the limit.


def test_expect_continue_over_the_limit_gets_413_without_100_continue(
    edge_server: ServerProcess,
) -> None:
    with connection_to(edge_server, timeout=5) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
            b"X-Request-ID: %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
            % (SANE_REQUEST_ID.encode(), LIMIT_BYTES + 1)
        )
        started = time.monotonic()
        reply = connection.recv(65536)
        elapsed = time.monotonic() - started

    assert b"100 Continue" not in reply
    status, error = json_error(reply)
    assert (status, error["code"]) == (413, "payload_too_large")
    assert error["request_id"] == SANE_REQUEST_ID
    assert elapsed < 1.0


# (g) A thousand idle connections.


def test_a_thousand_idle_connections_do_not_delay_a_fresh_client(
    edge_server: ServerProcess,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    idle: list[socket.socket] = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection((LOOPBACK, edge_server.port), timeout=5))
        started = time.monotonic()
        with connection_to(edge_server, timeout=5) as connection:
            connection.sendall(b"GET /readyz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            reply = read_until_closed(connection)
        elapsed = time.monotonic() - started
    finally:
        for connection in idle:
            connection.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    print(f"1000 idle connections: a fresh request answered in {elapsed * 1000:.0f} ms")
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert elapsed < 0.5


# (h) Every error nginx answers itself.

NGINX_ERRORS: Final = {
    "not-http": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP\r\n\r\n",
        400,
        "bad_request",
    ),
    "no-host": (b"GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request"),
    "trace": (b"TRACE / HTTP/1.1\r\nHost: test\r\n\r\n", 405, "method_not_allowed"),
    "over-the-limit": (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % (LIMIT_BYTES + 1),
        413,
        "payload_too_large",
    ),
    "long-uri": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: test\r\n\r\n", 414, "uri_too_long"),
    "long-header": (
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
        431,
        "request_header_too_large",
    ),
    "unknown-transfer-encoding": (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        "not_implemented",
    ),
    "http-2-on-http-1": (
        b"GET / HTTP/2.0\r\nHost: test\r\n\r\n",
        505,
        "http_version_not_supported",
    ),
    "internal-error-page": (b"GET /_edge/error HTTP/1.1\r\nHost: test\r\n\r\n", 404, "not_found"),
}


@pytest.mark.parametrize("name", sorted(NGINX_ERRORS))
def test_every_nginx_error_is_the_service_json_error(edge_server: ServerProcess, name: str) -> None:
    request, expected_status, expected_code = NGINX_ERRORS[name]
    with connection_to(edge_server, timeout=5) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        reply = read_response(connection)

    status, error = json_error(reply)
    assert (status, error["code"]) == (expected_status, expected_code)
    assert re.fullmatch(r"[0-9a-f]{32}", error["request_id"])
    assert b"\r\nserver: nginx\r\n" in reply.lower()  # No version.


@pytest.mark.parametrize(
    ("sent", "kept"),
    [(SANE_REQUEST_ID, True), ("two words", False), ("x" * 129, False), ('"quoted"', False)],
    ids=["sane", "space", "too-long", "quote"],
)
def test_request_id_of_an_nginx_error_is_the_client_s_when_sane(
    edge_server: ServerProcess, sent: str, kept: bool
) -> None:
    with connection_to(edge_server, timeout=5) as connection:
        connection.sendall(
            b"TRACE / HTTP/1.1\r\nHost: test\r\nX-Request-ID: %s\r\n\r\n" % sent.encode()
        )
        reply = read_until_closed(connection)

    _, error = json_error(reply)
    if kept:
        assert error["request_id"] == sent
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", error["request_id"])


@pytest.mark.parametrize(("sent", "kept"), [(SANE_REQUEST_ID, True), ("two words", False)])
def test_request_id_reaches_the_app_when_sane(
    edge_server: ServerProcess, sent: str, kept: bool
) -> None:
    with connection_to(edge_server, timeout=5) as connection:
        connection.sendall(
            b"GET /nowhere HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            b"X-Request-ID: %s\r\n\r\n" % sent.encode()
        )
        reply = read_until_closed(connection)

    status, error = json_error(reply)  # The app's 404, with the ID nginx passed on.
    assert status == 404
    assert (
        error["request_id"] == sent if kept else re.fullmatch(r"[0-9a-f]{32}", error["request_id"])
    )
    assert f"[{error['request_id']}]" in app_log(edge_server)


def test_too_many_requests_at_once_from_one_address_get_429(edge_server: ServerProcess) -> None:
    # Requests whose bodies are still arriving hold their slots.
    holders = [
        socket.create_connection((LOOPBACK, edge_server.port))
        for _ in range(CONNECTIONS_PER_CLIENT)
    ]
    try:
        for connection in holders:
            connection.sendall(
                b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
                b"Content-Length: 1000\r\n\r\n" + bytes(10)
            )
        time.sleep(0.2)
        with connection_to(edge_server, timeout=5) as connection:
            connection.sendall(b"GET /readyz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            reply = read_until_closed(connection)
    finally:
        for connection in holders:
            connection.close()
    time.sleep(0.2)

    status, error = json_error(reply)
    assert (status, error["code"]) == (429, "too_many_connections")
    assert parse_reply(reply)[1]["retry-after"] == "1"


FAKE_APP: Final = """\
import signal, socket, sys, time
# Binds the socket mnist-serve would listen on, but never listens: nginx cannot connect.
path = sys.argv[sys.argv.index("--uds") + 1]
unix = socket.socket(socket.AF_UNIX)
unix.bind(path)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(300)
"""


def test_app_unreachable_is_a_json_502_and_not_ready(tmp_path: Path) -> None:
    fake = tmp_path / "fake-mnist-serve"
    fake.write_text(f"#!{sys.executable}\n{FAKE_APP}")
    fake.chmod(0o755)
    server = ServerProcess(
        edge_spec(MNIST_SERVE=str(fake)), cwd=REPO_ROOT, log_path=tmp_path / "edge.log"
    )
    server.start()
    try:
        deadline = time.monotonic() + 30
        reply = b""
        while time.monotonic() < deadline and not reply:
            try:
                with connection_to(server, timeout=5) as connection:
                    connection.sendall(
                        b"GET /readyz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
                    )
                    reply = read_until_closed(connection)
            except ConnectionRefusedError:
                time.sleep(0.05)
    finally:
        server.stop()

    status, error = json_error(reply)
    assert (status, error["code"]) == (502, "bad_gateway")
