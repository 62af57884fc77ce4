"""The app's own body deadline (``REQUEST_BODY_TIMEOUT_SECONDS``), a pure ASGI middleware that
works under any ASGI server: a body that stops arriving is answered 408 at the deadline.

The app is called directly as an ASGI callable, with a ``receive`` that delivers part of a body
and then nothing more, as a client that stalls mid-upload would."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message

from app.api.body_guard import BodyLimits, call_with_body_limits
from app.core.config import Settings
from app.main import create_app

DEADLINE_SECONDS = 0.3


@pytest.fixture(scope="module")
def started(serving_settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    """An app with a short body deadline whose lifespan has run (the model is loaded), and a
    client of it."""
    app = create_app(
        serving_settings.model_copy(update={"REQUEST_BODY_TIMEOUT_SECONDS": DEADLINE_SECONDS})
    )
    with TestClient(app) as client:
        yield app, client


def _call(app: FastAPI, *, content_length: int, first_chunk: bytes) -> tuple[list[Message], float]:
    """POST /predict with a body that stops after ``first_chunk``; the messages sent back and
    the seconds it took to answer."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"image/png"),
            (b"content-length", str(content_length).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent: list[Message] = []
    chunks = [{"type": "http.request", "body": first_chunk, "more_body": True}]

    async def receive() -> Message:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(3600)  # The rest of the body never comes.
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.wait_for(app(scope, receive, send), timeout=10)
        return time.perf_counter() - started

    return sent, asyncio.run(run())


def test_stalled_body_is_answered_408_at_the_deadline(
    started: tuple[FastAPI, TestClient],
) -> None:
    sent, seconds = _call(started[0], content_length=10_000, first_chunk=b"\x89PNG\r\n\x1a\n")

    start, body = sent[0], sent[1]
    assert start["type"] == "http.response.start"
    assert start["status"] == 408
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"connection"] == b"close"
    error = json.loads(body["body"])["error"]
    assert error["code"] == "request_timeout"
    assert f"{DEADLINE_SECONDS:g} seconds" in error["message"]
    assert DEADLINE_SECONDS * 0.9 <= seconds < DEADLINE_SECONDS + 2


def test_body_that_arrives_in_time_is_not_timed_out(started: tuple[FastAPI, TestClient]) -> None:
    response = started[1].post(
        "/predict", content=bytes(range(256)), headers={"Content-Type": "image/png"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image"


def _stalled_scope() -> dict[str, object]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-length", b"10")],
    }


async def _reading_app(
    scope: object, receive: Callable[[], Awaitable[Message]], send: object
) -> None:
    """An app that reads its whole body."""
    while (await receive()).get("more_body", False):
        pass


async def _never(*_: object) -> Message:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


def test_deadlines_of_concurrent_reads_each_fire() -> None:
    limits = BodyLimits(max_body_bytes=100, timeout_seconds=0.2)

    async def one() -> list[Message]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await call_with_body_limits(
            _reading_app, _stalled_scope(), _never, send, limits, lambda: bool(sent)
        )
        return sent

    async def both() -> list[list[Message]]:
        return list(await asyncio.wait_for(asyncio.gather(one(), one()), timeout=5))

    for sent in asyncio.run(both()):
        assert sent[0]["status"] == 408


def test_a_read_cancelled_from_outside_stays_cancelled() -> None:
    """Only the deadline becomes a 408: a task cancelled for another reason (the server
    shutting down, say) sees its cancellation."""
    limits = BodyLimits(max_body_bytes=100, timeout_seconds=60)

    async def run() -> None:
        task = asyncio.create_task(
            call_with_body_limits(
                _reading_app, _stalled_scope(), _never, _never, limits, lambda: False
            )
        )
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
