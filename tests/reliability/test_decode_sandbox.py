"""The decoder sandbox (app/imaging/sandbox.py): decodes run in separate processes under hard
memory, CPU and wall-clock limits; a decode past a limit is a 413 and the decoder is replaced;
waiting for a decoder is bounded (503 with Retry-After); and the server's memory under a burst
of large images is that of its decoders, not of the burst."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.errors import ImageTooComplexError, InvalidImageError, NoDigitFoundError, ServiceBusyError
from app.imaging.pipeline import prepare_upload
from app.imaging.sandbox import DecodeSandbox
from app.imaging.structure import DecodeLimits
from bench.process_stats import app_peak_growth_kib
from bench.servers import LOOPBACK, ServerProcess
from tests.hostile_images import progressive_jpeg_many_scans

StartService = Callable[..., ServerProcess]
Result = TypeVar("Result")

LIMITS: Final = DecodeLimits(max_pixels=40_000_000)
BIG_SIDE: Final = 6_000
"""A 6,000 x 6,000 RGB PNG: 36 megapixels (under the 40 M limit), about 120 kB compressed,
about half a second of CPU and 190 MB while it is decoded and reduced."""


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
def canvas_png() -> bytes:
    """A 280 x 280 drawing of a 7, as the page sends it (not cheap enough for the loop)."""
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(60, 60), (220, 60), (120, 240)], fill=0, width=22)
    return _encoded(image)


@pytest.fixture(scope="module")
def small_png() -> bytes:
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 13:16] = 255
    return _encoded(Image.fromarray(pixels))


def _in_sandbox(
    action: Callable[[DecodeSandbox], Awaitable[Result]],
    *,
    limits: DecodeLimits = LIMITS,
    processes: int = 1,
    memory_bytes: int = 256 << 20,
    cpu_seconds: float = 2.0,
    timeout_seconds: float = 30.0,
    wait_seconds: float = 10.0,
) -> Result:
    """Run ``action`` on a fresh sandbox with these limits, in its own event loop."""

    async def run() -> Result:
        sandbox = DecodeSandbox(
            limits,
            processes=processes,
            memory_bytes=memory_bytes,
            cpu_seconds=cpu_seconds,
            timeout_seconds=timeout_seconds,
            wait_seconds=wait_seconds,
        )
        try:
            return await action(sandbox)
        finally:
            sandbox.close()

    # In a thread of its own: a test run may already have an event loop running in this thread
    # (the browser tests' sync Playwright keeps one for the session).
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(lambda: asyncio.run(run())).result()


# The sandbox on its own.


def test_sandbox_prepares_the_digit_this_process_would(canvas_png: bytes) -> None:
    reading = _in_sandbox(lambda sandbox: sandbox.prepare(canvas_png))

    np.testing.assert_array_equal(reading.pixels, prepare_upload(canvas_png, LIMITS))
    assert reading.separate_digits == 1


def test_sandbox_passes_input_errors_through() -> None:
    async def both(sandbox: DecodeSandbox) -> list[BaseException]:
        errors: list[BaseException] = []
        for upload in (bytes(range(256)), _encoded(Image.new("L", (300, 300), 255))):
            try:
                await sandbox.prepare(upload)
            except Exception as error:  # noqa: BLE001 - the test inspects what came back
                errors.append(error)
        return errors

    invalid, blank = _in_sandbox(both)

    assert isinstance(invalid, InvalidImageError)
    assert isinstance(blank, NoDigitFoundError)


def test_decode_past_the_memory_limit_is_refused_and_the_decoder_recovers(
    big_png: bytes, canvas_png: bytes
) -> None:
    async def big_then_small(sandbox: DecodeSandbox) -> tuple[BaseException, np.ndarray]:
        with pytest.raises(ImageTooComplexError) as refused:
            await sandbox.prepare(big_png)
        return refused.value, await sandbox.prepare(canvas_png)

    error, digit = _in_sandbox(big_then_small, memory_bytes=64 << 20)

    assert error.status_code == 413
    assert "memory" in str(error) and "DECODE_MEMORY_MB" in str(error)
    assert digit.pixels.shape == (28, 28)


def test_decode_past_the_cpu_limit_is_refused_and_the_decoder_is_replaced(
    canvas_png: bytes,
) -> None:
    # A progressive JPEG whose hundreds of scans each walk every block: seconds of CPU. Its
    # structure would be refused first; these limits let it reach the decoder.
    costly = progressive_jpeg_many_scans(2_000, 2_000, scans=1_200)
    lenient = DecodeLimits(max_pixels=40_000_000, max_jpeg_scans=10_000, max_decoded_bytes=1 << 30)

    async def costly_then_small(sandbox: DecodeSandbox) -> tuple[float, BaseException, bool]:
        started = time.perf_counter()
        with pytest.raises(ImageTooComplexError) as refused:
            await sandbox.prepare(costly)
        seconds = time.perf_counter() - started
        digit = await sandbox.prepare(canvas_png)
        return seconds, refused.value, digit.pixels.shape == (28, 28)

    seconds, error, recovered = _in_sandbox(
        costly_then_small, limits=lenient, cpu_seconds=1.0, memory_bytes=1 << 30
    )

    assert "CPU" in str(error) and "DECODE_CPU_SECONDS" in str(error)
    assert seconds < 5
    assert recovered


def test_decode_past_the_wall_clock_limit_is_refused(big_png: bytes, canvas_png: bytes) -> None:
    async def slow_then_small(sandbox: DecodeSandbox) -> tuple[BaseException, bool]:
        with pytest.raises(ImageTooComplexError) as refused:
            await sandbox.prepare(big_png)
        return refused.value, (await sandbox.prepare(canvas_png)).pixels.shape == (28, 28)

    error, recovered = _in_sandbox(slow_then_small, timeout_seconds=0.05)

    assert "longer than 0.05 s" in str(error)
    assert recovered


def test_waiting_for_a_decoder_is_bounded(big_png: bytes, canvas_png: bytes) -> None:
    async def two_at_once(sandbox: DecodeSandbox) -> tuple[BaseException, float]:
        first = asyncio.create_task(sandbox.prepare(big_png))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(ServiceBusyError) as busy:
            await sandbox.prepare(canvas_png)
        waited = time.perf_counter() - started
        await first
        return busy.value, waited

    error, waited = _in_sandbox(two_at_once, wait_seconds=0.1)

    assert isinstance(error, ServiceBusyError)
    assert error.retry_after_seconds == 1
    assert 0.05 < waited < 1.0


# Through the real server.


def _post(port: int, data: bytes) -> httpx.Response:
    return httpx.post(
        f"http://{LOOPBACK}:{port}/predict",
        content=data,
        headers={"Content-Type": "image/png"},
        timeout=60,
    )


def test_burst_of_large_images_costs_the_memory_of_the_decoders_only(
    start_service: StartService, big_png: bytes
) -> None:
    server = start_service(MAX_CONCURRENT_DECODES="1", DECODE_WAIT_SECONDS="30")
    single: list[httpx.Response] = []
    burst: list[httpx.Response] = []

    one_image = app_peak_growth_kib(server.pid, lambda: single.append(_post(server.port, big_png)))

    def send_burst() -> None:
        with ThreadPoolExecutor(max_workers=4) as pool:
            burst.extend(pool.map(lambda _: _post(server.port, big_png), range(4)))

    four_at_once = app_peak_growth_kib(server.pid, send_burst)

    assert [response.status_code for response in single + burst] == [200] * 5
    assert all(response.json()["digit"] == 1 for response in single + burst)
    # Four decodes at once would cost about four times one; one decoder keeps it near one.
    assert one_image > 50 * 1024
    assert four_at_once < 1.6 * one_image


def test_busy_decoders_answer_503_with_retry_after_and_small_images_still_pass(
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
