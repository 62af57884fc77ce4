"""The bound on concurrent large decodes (MAX_CONCURRENT_DECODES): large images wait for a slot
and get 503 with Retry-After when none frees up in time; small images never wait; the server's
peak memory under a burst of large images is that of the slots, not of the burst."""

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
from PIL import Image, ImageDraw

from app.errors import ServiceBusyError
from app.imaging.decode_gate import HEAVY_DECODE_PIXELS, DecodeGate, declared_pixels
from bench.servers import LOOPBACK, ServerProcess

StartService = Callable[..., ServerProcess]
MeasureMemory = Callable[[ServerProcess, Callable[[], object]], int]

BIG_SIDE: Final = 6_000
"""A 6,000 x 6,000 RGB PNG: 36 megapixels (under the 40 M limit), about 110 kB compressed and
about 190 MB while it is decoded and reduced."""


def _encoded(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """A 36-megapixel RGB PNG of a 1 drawn with a marker."""
    image = Image.new("RGB", (BIG_SIDE, BIG_SIDE), (236, 236, 230))
    ImageDraw.Draw(image).line(
        [(BIG_SIDE // 2, BIG_SIDE // 6), (BIG_SIDE // 2, 5 * BIG_SIDE // 6)],
        fill=(20, 24, 60),
        width=BIG_SIDE // 25,
    )
    return _encoded(image)


@pytest.fixture(scope="module")
def small_png() -> bytes:
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 13:16] = 255
    return _encoded(Image.fromarray(pixels))


# The gate on its own.


def test_declared_pixels_reads_headers_without_decoding(big_png: bytes, small_png: bytes) -> None:
    gif = _encoded(Image.new("P", (3000, 2000)), "GIF")
    jpeg = _encoded(Image.new("RGB", (3000, 2000)), "JPEG")

    assert declared_pixels(big_png) == BIG_SIDE * BIG_SIDE
    assert declared_pixels(small_png) == 28 * 28
    assert declared_pixels(gif) == 6_000_000
    assert declared_pixels(jpeg) == 0  # Decoded at a reduced scale: never heavy.
    assert declared_pixels(b"\x89PNG\r\n\x1a\n") == 0
    assert declared_pixels(b"not an image at all") == 0


def test_gate_admits_small_images_without_a_slot(small_png: bytes, big_png: bytes) -> None:
    gate = DecodeGate(max_concurrent=1, wait_seconds=0)

    with gate.admit(big_png):
        with gate.admit(small_png):  # Would raise if it needed the only slot.
            pass

    assert not gate.is_heavy(small_png)
    assert gate.is_heavy(big_png)
    assert HEAVY_DECODE_PIXELS < BIG_SIDE * BIG_SIDE


def test_gate_refuses_a_large_image_when_the_slots_stay_full(big_png: bytes) -> None:
    gate = DecodeGate(max_concurrent=2, wait_seconds=0.2)

    with gate.admit(big_png), gate.admit(big_png):
        started = time.monotonic()
        with pytest.raises(ServiceBusyError) as refused:
            with gate.admit(big_png):
                pass
        waited = time.monotonic() - started

    assert 0.15 < waited < 1.0
    assert refused.value.status_code == 503
    assert refused.value.retry_after_seconds == 1


def test_gate_lets_a_waiting_image_in_when_a_slot_frees(big_png: bytes) -> None:
    gate = DecodeGate(max_concurrent=1, wait_seconds=5)
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.admit(big_png):
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(5)
    threading.Timer(0.2, release.set).start()
    started = time.monotonic()
    with gate.admit(big_png):
        waited = time.monotonic() - started
    holder.join()

    assert 0.1 < waited < 2.0


def test_gate_never_holds_more_than_its_slots(big_png: bytes) -> None:
    gate = DecodeGate(max_concurrent=3, wait_seconds=10)
    lock = threading.Lock()
    inside = 0
    most_inside = 0

    def decode() -> None:
        nonlocal inside, most_inside
        with gate.admit(big_png):
            with lock:
                inside += 1
                most_inside = max(most_inside, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    with ThreadPoolExecutor(max_workers=12) as pool:
        for future in [pool.submit(decode) for _ in range(36)]:
            future.result()

    assert most_inside == 3


# The gate in the real service.


def _post(port: int, data: bytes) -> httpx.Response:
    return httpx.post(
        f"http://{LOOPBACK}:{port}/predict",
        content=data,
        headers={"Content-Type": "image/png"},
        timeout=60,
    )


def test_burst_of_large_images_costs_the_memory_of_the_slots_only(
    start_service: StartService, peak_memory_growth_kib: MeasureMemory, big_png: bytes
) -> None:
    server = start_service(MAX_CONCURRENT_DECODES="1", DECODE_WAIT_SECONDS="30")
    single: list[httpx.Response] = []
    burst: list[httpx.Response] = []

    one_image = peak_memory_growth_kib(server, lambda: single.append(_post(server.port, big_png)))

    def send_burst() -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            burst.extend(pool.map(lambda _: _post(server.port, big_png), range(4)))

    four_at_once = peak_memory_growth_kib(server, send_burst)

    assert [response.status_code for response in single + burst] == [200] * 5
    assert all(response.json()["digit"] == 1 for response in single + burst)
    # Four decodes at once would cost about four times one; one slot keeps it near one.
    assert one_image > 50 * 1024
    assert four_at_once < 1.6 * one_image


def test_full_gate_answers_503_with_retry_after_and_small_images_still_pass(
    start_service: StartService, big_png: bytes, small_png: bytes
) -> None:
    server = start_service(MAX_CONCURRENT_DECODES="1", DECODE_WAIT_SECONDS="0")

    with ThreadPoolExecutor(max_workers=4) as pool:
        large = [pool.submit(_post, server.port, big_png) for _ in range(3)]
        time.sleep(0.05)
        small = _post(server.port, small_png)
        answers = [future.result() for future in large]

    statuses = sorted(response.status_code for response in answers)
    assert statuses[0] == 200
    assert 503 in statuses
    busy = next(response for response in answers if response.status_code == 503)
    assert busy.headers["retry-after"] == "1"
    error = busy.json()["error"]
    assert error["code"] == "server_busy"
    assert error["request_id"] == busy.headers["x-request-id"]
    assert small.status_code == 200
    assert small.json()["digit"] == 1
