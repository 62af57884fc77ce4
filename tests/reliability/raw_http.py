"""Hand-written HTTP over a raw socket to a server under test on 127.0.0.1: what a hostile or
broken client sends, byte by byte, and the checks on what comes back."""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image

from bench.servers import LOOPBACK, ServerProcess


@contextmanager
def connection_to(server: ServerProcess, *, timeout: float = 10.0) -> Iterator[socket.socket]:
    """A TCP connection to ``server``, closed afterwards."""
    with socket.create_connection((LOOPBACK, server.port), timeout=timeout) as connection:
        yield connection


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it too)."""
    reply = b""
    try:
        while data := connection.recv(65536):
            reply += data
    except ConnectionResetError:
        pass
    return reply


def read_response(connection: socket.socket) -> bytes:
    """The first response on ``connection``: its head and ``Content-Length`` bytes of body,
    without waiting for the server to close the connection."""
    reply = b""
    while True:
        head, separator, body = reply.partition(b"\r\n\r\n")
        if separator:
            _, headers, _ = parse_reply(reply)
            if len(body) >= int(headers.get("content-length", 0)):
                return reply
        try:
            data = connection.recv(65536)
        except ConnectionResetError:
            return reply
        if not data:
            return reply
        reply += data


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


def parse_reply(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the first response in ``reply``."""
    head, _, rest = reply.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    length = int(headers.get("content-length", len(rest)))
    return int(status_line.split()[1]), headers, rest[:length]


def json_error(reply: bytes) -> tuple[int, dict[str, str]]:
    """Status and JSON error of the first response in ``reply``, checking that it is the
    service's error shape, as JSON, with its request ID in the ``X-Request-ID`` header too."""
    status, headers, body = parse_reply(reply)
    assert headers["content-type"] == "application/json", reply
    error: dict[str, str] = json.loads(body)["error"]
    assert set(error) == {"code", "message", "request_id"}, error
    assert error["request_id"] == headers["x-request-id"]
    assert b"<html" not in reply.lower()
    return status, error


def ready_promptly(server: ServerProcess, *, within: float = 1.0) -> bool:
    """Whether a fresh ``GET /readyz`` is answered 200 within ``within`` seconds."""
    connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=within)
    started = time.monotonic()
    try:
        connection.request("GET", "/readyz")
        status = connection.getresponse().status
    except OSError:
        return False
    finally:
        connection.close()
    return status == 200 and time.monotonic() - started < within


def app_log(server: ServerProcess) -> str:
    """The lines the app wrote to the server's log (not nginx's access log)."""
    lines = server.log_tail(lines=1_000_000).splitlines()
    return "\n".join(line for line in lines if not line.startswith(LOOPBACK))


def edge_access_log(server: ServerProcess) -> str:
    """The lines of nginx's access log in the server's log."""
    lines = server.log_tail(lines=1_000_000).splitlines()
    return "\n".join(line for line in lines if line.startswith(LOOPBACK))


def edge_logged(
    server: ServerProcess, request_id: str, status: int, *, within: float = 3.0
) -> bool:
    """Whether nginx logs the request ``request_id`` with ``status`` within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for line in edge_access_log(server).splitlines():
            if f" {status} " in line and f"request_id={request_id} " in line:
                return True
        time.sleep(0.05)
    return False


def digit_png() -> bytes:
    """A 28 x 28 PNG of a 1."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 13:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
