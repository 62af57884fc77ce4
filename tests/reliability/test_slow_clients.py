"""Slow and malformed clients on a real socket, against the service as it is deployed: nginx
(``deploy/nginx/nginx.conf``, through ``scripts/serve-edge``) in front of ``mnist-serve``.

A request head (request line and headers) must arrive within nginx's header timeout, counted
from the connection (or, on a kept-alive connection, from the first byte of the next request):
past it, nginx closes the connection without an answer (it logs 408). A head that grows past
nginx's buffers gets a JSON 431, bytes that are not HTTP a JSON 400. A body may not pause for
longer than the body timeout between two reads (nginx closes the connection and logs 408); the
app sees a request only once its body has arrived in full, so a slow or stalled body never
reaches it. Meanwhile everyone else is served.

The edge runs with EDGE_HEADER_TIMEOUT=1s and EDGE_BODY_TIMEOUT=1500ms (``conftest.py``).
"""

from __future__ import annotations

import socket
import time
import uuid
from typing import Final

import httpx

from bench.servers import LOOPBACK, ServerProcess
from tests.reliability.raw_http import (
    app_log,
    connection_to,
    digit_png,
    edge_logged,
    json_error,
    read_until_closed,
    trickle,
)

HEADER_TIMEOUT: Final = 1.0
BODY_TIMEOUT: Final = 1.5
"""The longest pause nginx allows between two reads of a request body."""
SLACK: Final = 1.5
"""How much later than its deadline a timeout may fire on a busy machine."""


def _request_id() -> str:
    return f"slow-{uuid.uuid4().hex}"


def test_headers_that_trickle_are_cut_at_the_header_deadline(edge_server: ServerProcess) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nX-Slow: " + b"z" * 100
    )

    with connection_to(edge_server) as connection:
        started = time.monotonic()
        trickle(connection, head, every=0.1, until=HEADER_TIMEOUT + SLACK)
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    # Every byte arrived in time, yet the deadline is the head's, not each byte's.
    assert reply == b""
    assert HEADER_TIMEOUT - 0.1 <= elapsed < HEADER_TIMEOUT + SLACK


def test_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    edge_server: ServerProcess,
) -> None:
    with connection_to(edge_server) as connection:
        started = time.monotonic()
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    assert reply == b""
    assert HEADER_TIMEOUT - 0.1 <= elapsed < HEADER_TIMEOUT + SLACK


def test_kept_alive_connection_whose_next_headers_trickle_is_closed(
    edge_server: ServerProcess,
) -> None:
    with connection_to(edge_server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        first = connection.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        trickle(connection, b"GET /healthz HTTP/1.1\r\nHost: te", every=0.1, until=3.0)
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    assert reply == b""
    assert elapsed < HEADER_TIMEOUT + SLACK


def test_endless_headers_get_a_json_431(edge_server: ServerProcess) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\n"
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (index, b"f" * 1000) for index in range(200))

    with connection_to(edge_server) as connection:
        connection.sendall(head)
        try:
            connection.sendall(filler)  # 200 kB of headers, no end in sight.
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_until_closed(connection)

    status, error = json_error(reply)
    assert (status, error["code"]) == (431, "request_header_too_large")
    assert b"\r\nconnection: close\r\n" in reply.lower()


def test_one_header_line_over_the_buffer_gets_a_json_431(edge_server: ServerProcess) -> None:
    with connection_to(edge_server) as connection:
        connection.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"
        )
        reply = read_until_closed(connection)

    status, error = json_error(reply)
    assert (status, error["code"]) == (431, "request_header_too_large")


def test_body_that_trickles_never_reaches_the_app_and_is_cut_when_it_pauses(
    edge_server: ServerProcess,
) -> None:
    body = digit_png()
    request_id = _request_id()
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"X-Request-ID: %s\r\nContent-Length: %d\r\n\r\n" % (request_id.encode(), len(body))
    )

    with connection_to(edge_server) as connection:
        connection.sendall(head)
        # A byte every 0.1 s for a second, then nothing: the rest of the body never comes.
        trickle(connection, body, every=0.1, until=1.0)
        paused = time.monotonic()
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - paused

    assert reply == b""
    assert BODY_TIMEOUT - 0.2 <= elapsed < BODY_TIMEOUT + SLACK
    assert edge_logged(edge_server, request_id, 408)
    assert f"[{request_id}]" not in app_log(edge_server)


def test_slow_but_steady_body_is_answered(edge_server: ServerProcess) -> None:
    # Pauses shorter than the body timeout, for longer than it in all: the upload of a slow
    # client is received, and the app gets it whole.
    body = digit_png()
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    pieces = [
        body[start : start + len(body) // 5 + 1]
        for start in range(0, len(body), len(body) // 5 + 1)
    ]

    with connection_to(edge_server) as connection:
        connection.sendall(head)
        for piece in pieces:
            time.sleep(0.5)
            connection.sendall(piece)
        reply = read_until_closed(connection)

    assert reply.startswith(b"HTTP/1.1 200 "), reply
    assert b'"digit":1' in reply


def test_body_that_stops_arriving_is_closed_at_the_body_timeout(edge_server: ServerProcess) -> None:
    request_id = _request_id()
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"X-Request-ID: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % request_id.encode()
    )

    with connection_to(edge_server) as connection:
        connection.sendall(head + b"10\r\n" + b"\x89PNG\r\n\x1a\n" + bytes(8) + b"\r\n")
        started = time.monotonic()
        reply = read_until_closed(connection)  # The rest of the body never comes.
        elapsed = time.monotonic() - started

    assert reply == b""
    assert BODY_TIMEOUT - 0.1 <= elapsed < BODY_TIMEOUT + SLACK
    assert edge_logged(edge_server, request_id, 408)
    assert f"[{request_id}]" not in app_log(edge_server)


def test_request_the_app_would_refuse_at_once_waits_for_its_body(
    edge_server: ServerProcess,
) -> None:
    # The app answers a text upload 415 from its headers alone; behind nginx it never sees a
    # request whose body does not arrive, and the connection is closed at the body timeout.
    request_id = _request_id()
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\n"
        b"X-Request-ID: %s\r\nContent-Length: 1000\r\n\r\n" % request_id.encode()
    )

    with connection_to(edge_server) as connection:
        connection.sendall(head + b"not an image")  # 988 bytes of the body never come.
        started = time.monotonic()
        reply = read_until_closed(connection)
        elapsed = time.monotonic() - started

    assert reply == b""
    assert BODY_TIMEOUT - 0.1 <= elapsed < BODY_TIMEOUT + SLACK
    assert edge_logged(edge_server, request_id, 408)
    assert f"[{request_id}]" not in app_log(edge_server)


def test_bytes_that_are_not_http_get_a_json_400(edge_server: ServerProcess) -> None:
    with connection_to(edge_server) as connection:
        connection.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not HTTP at all\r\n\r\n")
        reply = read_until_closed(connection)

    status, error = json_error(reply)
    assert (status, error["code"]) == (400, "bad_request")
    assert b"\r\nconnection: close\r\n" in reply.lower()


def test_slow_clients_do_not_hold_up_other_requests(edge_server: ServerProcess) -> None:
    sockets = [socket.create_connection((LOOPBACK, edge_server.port)) for _ in range(50)]
    try:
        for connection in sockets:
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Len")
        started = time.monotonic()
        response = httpx.post(
            f"http://{LOOPBACK}:{edge_server.port}/predict",
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
