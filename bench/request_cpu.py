"""CPU time per request of the ASGI apps called directly, without a server or a network.

    python -m bench.request_cpu                 # ours and the ceiling, 28 x 28 PNG and batch
    python -m bench.request_cpu --requests 500  # shorter

The same requests the benchmark sends (``bench/wrk/*.lua``) are handed to each app's ASGI
callable in this process, after its lifespan has started, on uvloop's event loop (the one
``mnist-serve`` and uvicorn run); the figure is the process's CPU time per request, best of
several rounds. It leaves out uvicorn and the kernel (about 40 µs per
request here, the same for every app), so it shows what the application itself costs, and
moves little when other programs load the machine. ``docs/performance.md`` lists its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import uvloop
from starlette.types import ASGIApp, Message, Scope

from bench.baselines.ceiling_service import create_app as create_ceiling_app
from bench.images import write_bench_images

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
BOUNDARY: Final = b"----mnistbenchboundary7d91c2"
MULTIPART_TYPE: Final = b"multipart/form-data; boundary=" + BOUNDARY

BATCH_SIZE: Final = 64


def multipart_body(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A ``multipart/form-data`` body with one ``file`` part per (name, content), as wrk sends."""
    parts = [
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="' + name.encode() + b'"\r\n'
        b"Content-Type: image/png\r\n\r\n" + content + b"\r\n"
        for name, content in files
    ]
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


def http_scope(path: str, content_type: bytes, body: bytes) -> Scope:
    """The ASGI scope of a ``POST`` with this body, as uvicorn would build it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def send_request(app: ASGIApp, scope: Scope, body: bytes) -> int:
    """Send one request to ``app``; return the response's status."""
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app({**scope, "state": {}}, receive, send)
    return statuses[0]


async def start_lifespan(app: ASGIApp) -> asyncio.Task[None]:
    """Run the app's lifespan start-up; the returned task holds it open."""
    incoming: asyncio.Queue[Message] = asyncio.Queue()
    outgoing: asyncio.Queue[Message] = asyncio.Queue()
    await incoming.put({"type": "lifespan.startup"})

    async def run_lifespan() -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        await app(scope, incoming.get, outgoing.put)

    task = asyncio.create_task(run_lifespan())
    message = await outgoing.get()
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {message}")
    return task


async def cpu_seconds_per_request(
    app: ASGIApp, scope: Scope, body: bytes, *, requests: int, rounds: int
) -> float:
    """The best of ``rounds`` rounds of ``requests`` requests, in process CPU seconds each."""
    for _ in range(max(1, requests // 10)):
        status = await send_request(app, scope, body)
        if status != 200:
            raise RuntimeError(f"{scope['path']} answered {status}")
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(requests):
            await send_request(app, scope, body)
        best = min(best, (time.process_time() - started) / requests)
    return best


async def measure(requests: int, rounds: int) -> list[tuple[str, float]]:
    """Per-request CPU seconds of every (app, request) pair."""
    # Imported here: it reads the settings from the environment. The app as mnist-serve serves it.
    from app.main import create_app

    images = write_bench_images(
        REPO_ROOT / "bench" / "results" / "raw" / "images",
        batch_size=BATCH_SIZE,
        repo_root=REPO_ROOT,
    )
    digit = images.single[0].path.read_bytes()
    batch = [(path.name, path.read_bytes()) for path in images.batch]
    single_body, batch_body = multipart_body([("digit_28.png", digit)]), multipart_body(batch)
    cases: list[tuple[str, ASGIApp, Scope, bytes, int]] = []
    ours: ASGIApp = create_app()
    ceiling: ASGIApp = create_ceiling_app()
    lifespans = [await start_lifespan(ours), await start_lifespan(ceiling)]
    cases = [
        ("ceiling png28 multipart", ceiling, http_scope("/predict", MULTIPART_TYPE, single_body),
         single_body, requests),
        ("ours png28 multipart", ours, http_scope("/predict", MULTIPART_TYPE, single_body),
         single_body, requests),
        ("ours png28 raw", ours, http_scope("/predict", b"image/png", digit), digit, requests),
        (f"ceiling batch{len(batch)} multipart", ceiling,
         http_scope("/predict/batch", MULTIPART_TYPE, batch_body), batch_body, requests // 40),
        (f"ours batch{len(batch)} multipart", ours,
         http_scope("/predict/batch", MULTIPART_TYPE, batch_body), batch_body, requests // 40),
    ]  # fmt: skip
    results = [
        (name, await cpu_seconds_per_request(app, scope, body, requests=count, rounds=rounds))
        for name, app, scope, body, count in cases
    ]
    for lifespan in lifespans:
        lifespan.cancel()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Print the CPU time per request of each app and request kind."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds; the best counts")
    arguments = parser.parse_args(argv)
    results = uvloop.run(measure(max(40, arguments.requests), arguments.rounds))
    for name, seconds in results:
        print(f"{name:<28} {seconds * 1e6:9.1f} µs CPU per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
