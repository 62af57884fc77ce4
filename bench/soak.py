"""Load and soak test of the real service: ``python -m bench.soak`` (``--help`` for options).

It starts ``mnist-serve`` on a free port of 127.0.0.1, warms it up, then sends ``--requests``
(default 10,000) requests at ``--concurrency`` (default 64) with httpx, a deterministic mix of
good requests (28 x 28 PNGs raw and multipart, 900 x 900 JPEG photos, a 1,800 x 1,800 PNG,
batches, the read-only endpoints) and bad ones (empty, garbage, truncated and corrupt PNGs, text,
SVG and PDF uploads, a pixel bomb, a body over the size limit, a blank image, a missing or
doubled ``file`` field, an unknown path, a wrong method, a bad query). It reports the answers by
status and by kind of request, the resident memory (RSS) of the server before and after, and
exits 1 when a target is missed:

* no 5xx answer and no connection error;
* every request answered with the status its kind expects;
* RSS after the run at most ``--max-rss-growth`` (default 10 %) above RSS after the warm-up.

Both RSS figures are read the same way, after one large PNG (over the decode gate's
``HEAVY_DECODE_PIXELS``) has been predicted, which makes the server hand the free memory of its
malloc heaps back to the system (:func:`app.core.memory.release_free_memory`). Read without
that, the RSS after a burst includes freed memory glibc keeps for reuse, and swings by about
30 MiB (100 to 136 MiB) from one burst to the next with no upward trend; after it, what is left
is the memory the worker holds, and a leak shows as growth. Both readings are reported.
Even so read, a worker at rest sits at one of a few levels about 10 MiB apart (which one
depends on what it did last, and it stays there), so the figure after the warm-up is the
highest of :data:`WARM_UP_READINGS` readings taken through the warm-up: a run that ends on the
level the warm-up reached is not growth, and a leak still is.

``--json PATH`` also writes the figures as JSON. The test suite runs a short mode
(``--requests 1500``); the README's figures come from the full run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import math
import os
import random
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
from PIL import Image

from bench.images import load_test_digits, render_photo
from bench.process_stats import session_memory
from bench.servers import LOOPBACK, ServerProcess, mnist_serve_spec
from tests.hostile_images import HOSTILE_CASES

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_REQUESTS: Final = 10_000
DEFAULT_CONCURRENCY: Final = 64
DEFAULT_MAX_RSS_GROWTH: Final = 0.10
WARM_UP_REQUESTS: Final = 2000
WARM_UP_READINGS: Final = 4
"""Settled RSS readings taken through the warm-up (one per equal share of it)."""
"""Requests of the same mix sent before the "before" RSS is read: enough for every kind, at
full concurrency, to have touched the allocator's arenas and the threadpool's threads."""
UPLOAD_LIMIT_BYTES: Final = 5 * 1024 * 1024
"""The server's MAX_UPLOAD_BYTES (its default), which the over-the-limit request exceeds."""

_BOUNDARY: Final = "soak-boundary-8c1f0e"
_SEED: Final = 20240917
_START_TIMEOUT_S: Final = 60.0
_REQUEST_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True)
class RequestKind:
    """One kind of request in the mix: how to send it and which statuses are right."""

    name: str
    weight: int
    method: str
    path: str
    expected: frozenset[int]
    bodies: tuple[bytes, ...] = (b"",)
    """Variants of the body; request ``i`` of this kind sends ``bodies[i % len(bodies)]``."""
    content_type: str | None = None

    @property
    def good(self) -> bool:
        """Whether the request is a valid one (expects 200)."""
        return self.expected == frozenset({200})


@dataclass
class KindTally:
    """What one kind of request got back."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unexpected: int = 0


@dataclass
class SoakResult:
    """Everything the run measured."""

    requests: int
    concurrency: int
    seconds: float
    statuses: Counter[int]
    connection_errors: Counter[str]
    unexpected_statuses: int
    by_kind: dict[str, KindTally]
    rss_at_start_kib: int
    rss_before_kib: int
    """After the warm-up, once free heap memory was handed back: the highest of the readings
    taken through it (see the module's notes)."""
    rss_warm_up_readings_kib: tuple[int, ...]
    rss_after_kib: int
    """After the run, read the same way."""
    rss_before_untrimmed_kib: int
    rss_after_untrimmed_kib: int
    peak_rss_kib: int
    latencies_ms: list[float]

    @property
    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        return sum(count for status, count in self.statuses.items() if status >= 500)

    @property
    def rss_growth(self) -> float:
        """Relative growth of the server's RSS from after the warm-up to after the run."""
        return (self.rss_after_kib - self.rss_before_kib) / self.rss_before_kib

    @property
    def untrimmed_rss_growth(self) -> float:
        """The same, read straight after the warm-up and the run (free heap memory included)."""
        return (
            self.rss_after_untrimmed_kib - self.rss_before_untrimmed_kib
        ) / self.rss_before_untrimmed_kib

    def missed_targets(self, max_rss_growth: float) -> list[str]:
        """A sentence for each target the run missed (empty when all were met)."""
        missed = []
        if self.server_errors:
            missed.append(f"{self.server_errors} answers were 5xx")
        if self.connection_errors:
            missed.append(f"{sum(self.connection_errors.values())} connection errors")
        if self.unexpected_statuses:
            missed.append(f"{self.unexpected_statuses} answers had an unexpected status")
        if self.rss_growth >= max_rss_growth:
            missed.append(f"RSS grew {self.rss_growth:.1%} (limit {max_rss_growth:.0%})")
        return missed

    def to_json(self) -> dict[str, Any]:
        """The figures as JSON-ready data."""
        ordered = sorted(self.latencies_ms)
        return {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.requests / self.seconds, 1),
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "server_errors": self.server_errors,
            "connection_errors": dict(self.connection_errors),
            "unexpected_statuses": self.unexpected_statuses,
            "latency_ms": {
                "p50": round(_percentile(ordered, 50), 2),
                "p99": round(_percentile(ordered, 99), 2),
                "max": round(ordered[-1], 2) if ordered else 0.0,
            },
            "warm_up_requests": WARM_UP_REQUESTS,
            "rss_kib": {
                "at_start": self.rss_at_start_kib,
                "after_warm_up": self.rss_before_kib,
                "warm_up_readings": list(self.rss_warm_up_readings_kib),
                "after_run": self.rss_after_kib,
                "growth": round(self.rss_growth, 4),
                "untrimmed_after_warm_up": self.rss_before_untrimmed_kib,
                "untrimmed_after_run": self.rss_after_untrimmed_kib,
                "untrimmed_growth": round(self.untrimmed_rss_growth, 4),
                "peak": self.peak_rss_kib,
            },
            "by_kind": {
                name: {
                    "sent": tally.sent,
                    "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
                    "errors": dict(tally.errors),
                    "unexpected": tally.unexpected,
                }
                for name, tally in self.by_kind.items()
            },
        }


def _percentile(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))
    return ordered[index]


def _png(pixels: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pixel_bomb_png(width: int, height: int) -> bytes:
    """A well-formed PNG of a few dozen bytes whose header declares ``width`` x ``height``."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _png_chunk(b"IEND", b"")
    )


def multipart(*parts: tuple[str, str, str, bytes]) -> bytes:
    """A multipart/form-data body from (field, filename, content type, data) parts."""
    chunks = []
    for name, filename, content_type, data in parts:
        chunks.append(
            f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{_BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


_LARGE_IMAGE_PIXELS: Final = 4_000_000
"""A 4-megapixel image: a large decode."""


def memory_settling_png() -> bytes:
    """A PNG of a 1 just over the decode gate's size, whose prediction ends with the server
    handing its free heap memory back to the system."""
    side = math.isqrt(_LARGE_IMAGE_PIXELS) + 100
    canvas = np.full((side, side), 236, dtype=np.uint8)
    canvas[side // 7 : side - side // 7, side // 2 - side // 30 : side // 2 + side // 30] = 20
    return _png(canvas)


def _settled_rss_kib(base_url: str, pid: int, settling_png: bytes) -> int:
    """The server's RSS (KiB) once it has handed its free heap memory back to the system."""
    response = httpx.post(
        f"{base_url}/predict",
        content=settling_png,
        headers={"Content-Type": "image/png"},
        timeout=_REQUEST_TIMEOUT_S,
    )
    if response.status_code != 200:
        raise RuntimeError(f"the memory-settling request got {response.status_code}")
    rss, _ = _worker_rss_kib(pid)
    return rss


def build_request_mix() -> list[RequestKind]:
    """The kinds of request the soak sends, with their weights (out of about 100) and answers."""
    digits, _, _ = load_test_digits(64, REPO_ROOT)
    pngs = tuple(_png(digit) for digit in digits)
    photos = tuple(
        _jpeg(render_photo(digit, seed=_SEED + index)) for index, digit in enumerate(digits[:4])
    )
    large_canvas = np.full((1800, 1800, 3), 236, dtype=np.uint8)
    large_canvas[300:1500, 820:980] = (20, 24, 60)  # A 1, drawn with a marker.
    large_png = _png(large_canvas)
    multipart_type = f"multipart/form-data; boundary={_BOUNDARY}"
    one_file = tuple(multipart(("file", "digit.png", "image/png", png)) for png in pngs)
    batches = tuple(
        multipart(
            *(("file", f"d{i}.png", "image/png", png) for i, png in enumerate(pngs[k : k + 8]))
        )
        for k in range(0, 64, 8)
    )
    garbage = random.Random(_SEED).randbytes(3000)
    crc_broken = bytearray(pngs[0])
    crc_broken[40] ^= 0xFF
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><text>7</text></svg>'
    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    costly_structures = tuple(
        HOSTILE_CASES[name]()
        for name in ("progressive_jpeg_many_scans", "tiff_one_strip_per_row", "png_ztxt_bombs")
    )
    costly_decodes = tuple(HOSTILE_CASES[name]() for name in ("float_tiff_with_nan", "png_16bit"))
    ok = frozenset({200})
    return [
        # Good requests.
        RequestKind("png28 raw", 28, "POST", "/predict", ok, pngs, "image/png"),
        RequestKind("png28 multipart", 14, "POST", "/predict", ok, one_file, multipart_type),
        RequestKind("jpeg900 raw", 6, "POST", "/predict", ok, photos, "image/jpeg"),
        RequestKind("png1800 raw", 1, "POST", "/predict", ok, (large_png,), "image/png"),
        # Costly files (tests/hostile_images.py): structures no digit photo has, refused before
        # any decode; and legal 40-megapixel float and 16-bit images, decoded in the sandbox.
        RequestKind(
            "costly structure",
            1,
            "POST",
            "/predict",
            frozenset({413}),
            costly_structures,
            "application/octet-stream",
        ),
        RequestKind(
            "costly 40 MP decode",
            1,
            "POST",
            "/predict",
            ok,
            costly_decodes,
            "application/octet-stream",
        ),
        RequestKind("batch of 8", 4, "POST", "/predict/batch", ok, batches, multipart_type),
        RequestKind("GET /healthz", 4, "GET", "/healthz", ok),
        RequestKind("GET /readyz", 2, "GET", "/readyz", ok),
        RequestKind("GET /metrics", 2, "GET", "/metrics", ok),
        RequestKind("GET /model", 1, "GET", "/model", ok),
        RequestKind("GET / (page)", 1, "GET", "/", ok),
        # Bad requests.
        RequestKind("empty body", 3, "POST", "/predict", frozenset({400}), (b"",), "image/png"),
        RequestKind(
            "garbage bytes", 3, "POST", "/predict", frozenset({400}), (garbage,), "image/png"
        ),
        RequestKind(
            "truncated png", 3, "POST", "/predict", frozenset({400}), (pngs[1][:150],), "image/png"
        ),
        RequestKind(
            "crc-broken png",
            2,
            "POST",
            "/predict",
            frozenset({400}),
            (bytes(crc_broken),),
            "image/png",
        ),
        RequestKind(
            "text/plain body", 3, "POST", "/predict", frozenset({415}), (b"hello",), "text/plain"
        ),
        RequestKind("svg upload", 2, "POST", "/predict", frozenset({415}), (svg,), "image/svg+xml"),
        RequestKind(
            "pdf multipart",
            1,
            "POST",
            "/predict",
            frozenset({415}),
            (multipart(("file", "doc.pdf", "application/pdf", pdf)),),
            multipart_type,
        ),
        RequestKind(
            "pixel bomb 50000x50000",
            3,
            "POST",
            "/predict",
            frozenset({413}),
            (pixel_bomb_png(50_000, 50_000),),
            "image/png",
        ),
        RequestKind(
            "body over the limit",
            1,
            "POST",
            "/predict",
            frozenset({413}),
            (bytes(UPLOAD_LIMIT_BYTES + 1024),),
            "image/png",
        ),
        RequestKind(
            "blank image",
            3,
            "POST",
            "/predict",
            frozenset({422}),
            (_png(np.full((64, 64), 255, np.uint8)),),
            "image/png",
        ),
        RequestKind(
            "missing file field",
            2,
            "POST",
            "/predict",
            frozenset({422}),
            (multipart(("image", "digit.png", "image/png", pngs[2])),),
            multipart_type,
        ),
        RequestKind(
            "two files to /predict",
            1,
            "POST",
            "/predict",
            frozenset({413}),
            (
                multipart(
                    ("file", "a.png", "image/png", pngs[3]), ("file", "b.png", "image/png", pngs[4])
                ),
            ),
            multipart_type,
        ),
        RequestKind("unknown path", 1, "GET", "/predictions", frozenset({404})),
        RequestKind("wrong method", 1, "DELETE", "/predict", frozenset({405})),
        RequestKind(
            "bad query",
            1,
            "POST",
            "/predict?include_input=maybe",
            frozenset({422}),
            pngs[:1],
            "image/png",
        ),
    ]


def request_sequence(kinds: Sequence[RequestKind], count: int, seed: int) -> list[RequestKind]:
    """``count`` requests drawn from ``kinds`` by weight, in a fixed shuffled order."""
    generator = random.Random(seed)
    return generator.choices(list(kinds), weights=[kind.weight for kind in kinds], k=count)


async def send_requests(
    base_url: str, sequence: Sequence[RequestKind], concurrency: int
) -> tuple[dict[str, KindTally], list[float]]:
    """Send ``sequence`` with at most ``concurrency`` requests in flight; tally the answers."""
    tallies = {kind.name: KindTally() for kind in sequence}
    latencies: list[float] = []
    variant_counters = {name: itertools.count() for name in tallies}
    position = iter(range(len(sequence)))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for index in position:
            kind = sequence[index]
            tally = tallies[kind.name]
            body = kind.bodies[next(variant_counters[kind.name]) % len(kind.bodies)]
            headers = {"Content-Type": kind.content_type} if kind.content_type else {}
            started = time.perf_counter()
            tally.sent += 1
            try:
                response = await client.request(
                    kind.method, kind.path, content=body or None, headers=headers
                )
            except httpx.HTTPError as error:
                tally.errors[type(error).__name__] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            tally.statuses[response.status_code] += 1
            if response.status_code not in kind.expected:
                tally.unexpected += 1

    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=_REQUEST_TIMEOUT_S
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return tallies, latencies


def _worker_rss_kib(pid: int) -> tuple[int, int]:
    """RSS and peak RSS (KiB) of the process that serves (one worker: the started process)."""
    memories = [memory for memory in session_memory(pid) if memory.role == "worker"]
    if not memories:
        raise RuntimeError("the server has no worker process")
    return sum(m.rss_kib for m in memories), max(m.peak_rss_kib for m in memories)


def run_soak(requests: int, concurrency: int, *, log_path: Path) -> SoakResult:
    """Start the service, warm it up, run the soak and measure; the service is stopped after."""
    kinds = build_request_mix()
    warm_up = request_sequence(kinds, WARM_UP_REQUESTS, seed=_SEED)
    sequence = request_sequence(kinds, requests, seed=_SEED + 1)
    spec = mnist_serve_spec(
        "mnist-serve, default settings, one worker, uploads wait up to 30 s for a decoder",
        model_dir=REPO_ROOT / "models",
        MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT_BYTES),
        LOG_LEVEL="warning",
        # Every upload is answered rather than shed: a 503 is a 5xx, which the soak counts.
        DECODE_WAIT_SECONDS="30",
    )
    with ServerProcess(spec, cwd=REPO_ROOT, log_path=log_path) as server:
        server.wait_ready(timeout_s=_START_TIMEOUT_S)
        base_url = f"http://{LOOPBACK}:{server.port}"
        rss_at_start, _ = _worker_rss_kib(server.pid)
        settling_png = memory_settling_png()
        share = len(warm_up) // WARM_UP_READINGS
        warm_up_readings: list[int] = []
        for index in range(WARM_UP_READINGS):
            end = len(warm_up) if index == WARM_UP_READINGS - 1 else (index + 1) * share
            asyncio.run(send_requests(base_url, warm_up[index * share : end], concurrency))
            time.sleep(0.5)
            if index == WARM_UP_READINGS - 1:
                rss_before_untrimmed, _ = _worker_rss_kib(server.pid)
            warm_up_readings.append(_settled_rss_kib(base_url, server.pid, settling_png))
        rss_before = max(warm_up_readings)
        started = time.perf_counter()
        tallies, latencies = asyncio.run(send_requests(base_url, sequence, concurrency))
        seconds = time.perf_counter() - started
        time.sleep(0.5)
        rss_after_untrimmed, peak = _worker_rss_kib(server.pid)
        rss_after = _settled_rss_kib(base_url, server.pid, settling_png)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for tally in tallies.values():
        statuses.update(tally.statuses)
        errors.update(tally.errors)
    return SoakResult(
        requests=requests,
        concurrency=concurrency,
        seconds=seconds,
        statuses=statuses,
        connection_errors=errors,
        unexpected_statuses=sum(tally.unexpected for tally in tallies.values()),
        by_kind=tallies,
        rss_at_start_kib=rss_at_start,
        rss_before_kib=rss_before,
        rss_warm_up_readings_kib=tuple(warm_up_readings),
        rss_after_kib=rss_after,
        rss_before_untrimmed_kib=rss_before_untrimmed,
        rss_after_untrimmed_kib=rss_after_untrimmed,
        peak_rss_kib=peak,
        latencies_ms=latencies,
    )


def format_report(result: SoakResult, max_rss_growth: float) -> str:
    """The human-readable summary printed at the end."""
    figures = result.to_json()
    lines = [
        f"{result.requests} requests at concurrency {result.concurrency} in "
        f"{result.seconds:.1f} s ({figures['requests_per_second']} requests/s); latency p50 "
        f"{figures['latency_ms']['p50']} ms, p99 {figures['latency_ms']['p99']} ms",
        "statuses: "
        + ", ".join(f"{status}: {count}" for status, count in sorted(result.statuses.items())),
        f"5xx: {result.server_errors}; connection errors: {sum(result.connection_errors.values())}"
        f"; unexpected statuses: {result.unexpected_statuses}",
        f"server RSS at start {result.rss_at_start_kib / 1024:.1f} MiB, after "
        f"{WARM_UP_REQUESTS} warm-up requests {result.rss_before_kib / 1024:.1f} MiB (highest of "
        + ", ".join(f"{reading / 1024:.1f}" for reading in result.rss_warm_up_readings_kib)
        + f"), after "
        f"the run {result.rss_after_kib / 1024:.1f} MiB: growth {result.rss_growth:+.1%} (limit "
        f"{max_rss_growth:.0%}); peak {result.peak_rss_kib / 1024:.1f} MiB",
        f"(RSS with the heap's free memory not yet handed back: after the warm-up "
        f"{result.rss_before_untrimmed_kib / 1024:.1f} MiB, after the run "
        f"{result.rss_after_untrimmed_kib / 1024:.1f} MiB, {result.untrimmed_rss_growth:+.1%})",
        "",
        f"{'request kind':<26} {'sent':>6}  answers",
    ]
    for name, tally in sorted(result.by_kind.items(), key=lambda item: -item[1].sent):
        answers = ", ".join(
            f"{status}: {count}" for status, count in sorted(tally.statuses.items())
        )
        if tally.errors:
            answers += ", errors " + ", ".join(f"{k}: {v}" for k, v in tally.errors.items())
        flag = "  <- unexpected" if tally.unexpected or tally.errors else ""
        lines.append(f"{name:<26} {tally.sent:>6}  {answers}{flag}")
    missed = result.missed_targets(max_rss_growth)
    lines.append("")
    lines.append("all targets met" if not missed else "MISSED: " + "; ".join(missed))
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Soak the real service with a mix of good and bad requests; exit 1 on a "
        "5xx, a connection error, an unexpected status or RSS growth over the limit.",
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="default 10000")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="default 64")
    parser.add_argument(
        "--max-rss-growth",
        type=float,
        default=DEFAULT_MAX_RSS_GROWTH,
        help="largest allowed relative RSS growth, default 0.10",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--log", type=Path, help="server log file (default: a temporary file)")
    arguments = parser.parse_args(argv)
    if arguments.requests < 1 or arguments.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; 0 when every target is met, 1 otherwise."""
    arguments = parse_arguments(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        log_path = arguments.log or Path(scratch) / "server.log"
        result = run_soak(arguments.requests, arguments.concurrency, log_path=log_path)
    print(format_report(result, arguments.max_rss_growth))
    if arguments.json is not None:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 1 if result.missed_targets(arguments.max_rss_growth) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
