"""Slow and malformed clients on a real socket: a head (request line and headers) that trickles
or never ends gets 408, one that grows without end gets 431, a body that trickles gets 408, an
idle connection is closed, bytes that are not HTTP get a JSON 400; each within its time limit,
and the server keeps serving everyone else meanwhile.

The server runs with REQUEST_HEADER_TIMEOUT_SECONDS=1 and REQUEST_BODY_TIMEOUT_SECONDS=1.5.
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx
import numpy as np
from PIL import Image

from bench.servers import LOOPBACK, ServerProcess

HEADER_TIMEOUT: Final = 1.0
BODY_TIMEOUT: Final = 1.5
SLACK: Final = 1.5
"""How much later than its deadline a timeout may fire on a busy machine."""


@contextmanager
def connection_to(server: ServerProcess) -> Iterator[socket.socket]:
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as connection:
        yield connection


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    reply = b""
    try:
        while data := connection.recv(65536):
            reply += data
    except ConnectionResetError:
        pass
    return reply


def trickle(connection: socket.socket, data: bytes, *, every: float, until: float) -> None:
    """Send ``data`` a byte at a time, ``every`` seconds, for at most ``until`` seconds or
    until the server closes the connection."""
    deadline = time.monotonic() + until
    for index in range(len(data)):
        if time.monotonic() > deadline:
            return
        try:
            connection.sendall(data[index : index + 1])
        except (BrokenPipeError, ConnectionResetError):
            return
        time.sleep(every)


def error_of(reply: bytes) -> tuple[int, dict[str, str]]:
    """Status and JSON error of a raw reply, checking the error body's shape."""
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    error: dict[str, str] = json.loads(body)["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert error["request_id"] == headers["x-request-id"]
    return int(status_line.split()[1]), error


def digit_png() -> bytes:
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 13:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_headers_that_trickle_get_408_at_the_header_deadline(hostile_server: ServerProcess) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nX-Slow: " + b"z" * 100
    )

    with connection_to(hostile_server) as connection:
        started = time.monotonic()
        trickle(connection, head, every=0.1, until=HEADER_TIMEOUT + SLACK)
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    status, error = error_of(reply)
    assert (status, error["code"]) == (408, "request_timeout")
    assert HEADER_TIMEOUT - 0.1 <= elapsed < HEADER_TIMEOUT + SLACK


def test_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    hostile_server: ServerProcess,
) -> None:
    with connection_to(hostile_server) as connection:
        started = time.monotonic()
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    assert reply == b""
    assert HEADER_TIMEOUT - 0.1 <= elapsed < HEADER_TIMEOUT + SLACK


def test_kept_alive_connection_whose_next_headers_trickle_gets_408(
    hostile_server: ServerProcess,
) -> None:
    with connection_to(hostile_server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        first = connection.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        trickle(connection, b"GET /healthz HTTP/1.1\r\nHost: te", every=0.1, until=3.0)
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    status, error = error_of(reply)
    assert (status, error["code"]) == (408, "request_timeout")
    assert elapsed < HEADER_TIMEOUT + SLACK


def test_endless_headers_get_431(hostile_server: ServerProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\n"
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (index, b"f" * 1000) for index in range(200))

    with connection_to(hostile_server) as connection:
        connection.sendall(head)
        try:
            connection.sendall(filler)  # 200 kB of headers, no end in sight.
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_until_closed(connection)

    status, error = error_of(reply)
    assert (status, error["code"]) == (431, "request_header_fields_too_large")


def test_body_that_trickles_gets_408_at_the_body_deadline(hostile_server: ServerProcess) -> None:
    body = digit_png()
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )

    with connection_to(hostile_server) as connection:
        connection.sendall(head)
        started = time.monotonic()
        trickle(connection, body, every=0.05, until=BODY_TIMEOUT + SLACK)
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    status, error = error_of(reply)
    assert (status, error["code"]) == (408, "request_timeout")
    assert BODY_TIMEOUT - 0.1 <= elapsed < BODY_TIMEOUT + SLACK


def test_body_that_stops_arriving_gets_408(hostile_server: ServerProcess) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )

    with connection_to(hostile_server) as connection:
        connection.sendall(head + b"10\r\n" + b"\x89PNG\r\n\x1a\n" + bytes(8) + b"\r\n")
        started = time.monotonic()
        reply = read_until_closed(connection)  # The rest of the body never comes.
        elapsed = time.monotonic() - started

    status, error = error_of(reply)
    assert (status, error["code"]) == (408, "request_timeout")
    assert elapsed < BODY_TIMEOUT + SLACK


def test_connection_answered_before_its_body_ended_is_closed_at_the_body_deadline(
    hostile_server: ServerProcess,
) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )

    with connection_to(hostile_server) as connection:
        connection.sendall(head + b"not an image")  # 988 bytes of the body never come.
        started = time.monotonic()
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    head_part, _, body = reply.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 415 ")
    assert json.loads(body)["error"]["code"] == "unsupported_media_type"
    assert BODY_TIMEOUT - 0.1 <= elapsed < BODY_TIMEOUT + SLACK


def test_bytes_that_are_not_http_get_a_json_400(hostile_server: ServerProcess) -> None:
    with connection_to(hostile_server) as connection:
        connection.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP at all\r\n\r\n")
        reply = read_until_closed(connection)

    status, error = error_of(reply)
    assert (status, error["code"]) == (400, "invalid_http_request")


def test_slow_clients_do_not_hold_up_other_requests(hostile_server: ServerProcess) -> None:
    sockets = [socket.create_connection((LOOPBACK, hostile_server.port)) for _ in range(50)]
    try:
        for connection in sockets:
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Len")
        started = time.monotonic()
        response = httpx.post(
            f"http://{LOOPBACK}:{hostile_server.port}/predict",
            content=digit_png(),
            headers={"Content-Type": "image/png"},
        )
        elapsed = time.monotonic() - started
    finally:
        for connection in sockets:
            connection.close()

    assert response.status_code == 200
    assert response.json()["digit"] == 1
    assert elapsed < 0.5
