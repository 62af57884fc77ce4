"""Small files that are costly to decode, sent to the real server at full strength: each is
answered within its limits (a JSON 413 naming the limit, or an answer when it decodes within
them), the server's memory stays bounded, and a small upload sent during the attack is answered
at once."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import httpx
import numpy as np
import pytest
from PIL import Image

from bench.process_stats import app_peak_growth_kib
from bench.servers import LOOPBACK, ServerProcess
from tests.hostile_images import HOSTILE_CASES, digit_array

StartService = Callable[..., ServerProcess]

MIB: Final = 1024
"""KiB in a MiB (memory figures from /proc are in KiB)."""
UPLOAD_MEMORY_LIMIT_KIB: Final = 400 * MIB
"""No single upload may cost more than this across all the server's processes."""
SERVER_SETTINGS: Final = {
    "MAX_CONCURRENT_DECODES": "1",
    "DECODE_WAIT_SECONDS": "30",
    "MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
}


@pytest.fixture(scope="module")
def server(start_service: StartService) -> ServerProcess:
    return start_service(**SERVER_SETTINGS)


def _post(port: int, data: bytes, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        f"http://{LOOPBACK}:{port}/predict",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=timeout,
    )


def _small_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(digit_array(28, 28)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE_CASES))
def test_costly_upload_is_answered_within_its_limits(server: ServerProcess, name: str) -> None:
    data = HOSTILE_CASES[name]()
    answers: list[httpx.Response] = []
    small_seconds: list[float] = []
    attack_over = threading.Event()

    def attack() -> None:
        started = time.perf_counter()
        answers.append(_post(server.port, data))
        answers.append(httpx.Response(200, text=f"{time.perf_counter() - started}"))
        attack_over.set()

    def small_uploads_meanwhile() -> None:
        small = _small_png()
        while not attack_over.is_set():
            started = time.perf_counter()
            response = _post(server.port, small, timeout=10)
            small_seconds.append(time.perf_counter() - started)
            assert response.status_code == 200
            time.sleep(0.05)

    def both() -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            meanwhile = pool.submit(small_uploads_meanwhile)
            pool.submit(attack).result()
            meanwhile.result()

    growth_kib = app_peak_growth_kib(server.pid, both)

    response, seconds = answers[0], float(answers[1].text)
    assert response.status_code in (200, 413, 422), response.text
    if response.status_code == 413:
        error = response.json()["error"]
        assert error["code"] in ("image_too_complex", "image_too_large", "payload_too_large")
    assert seconds < 8.0
    assert growth_kib < UPLOAD_MEMORY_LIMIT_KIB
    assert small_seconds and max(small_seconds) < 1.0


@pytest.mark.slow
def test_flood_of_costly_uploads_leaves_small_uploads_and_the_page_prompt(
    server: ServerProcess,
) -> None:
    costly = HOSTILE_CASES["float_tiff_with_nan"]()
    small = _small_png()
    stop = threading.Event()

    def flood() -> list[int]:
        statuses = []
        while not stop.is_set():
            statuses.append(_post(server.port, costly).status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=6) as pool:
        floods = [pool.submit(flood) for _ in range(4)]
        time.sleep(1.0)
        small_seconds, page_seconds = [], []
        for _ in range(20):
            started = time.perf_counter()
            response = _post(server.port, small, timeout=10)
            small_seconds.append(time.perf_counter() - started)
            assert response.status_code == 200
            started = time.perf_counter()
            assert httpx.get(f"http://{LOOPBACK}:{server.port}/", timeout=10).status_code == 200
            page_seconds.append(time.perf_counter() - started)
        stop.set()
        statuses = [status for future in floods for status in future.result()]

    assert set(statuses) <= {200, 503}
    assert float(np.percentile(small_seconds, 99)) < 1.0
    assert float(np.percentile(page_seconds, 99)) < 0.2
