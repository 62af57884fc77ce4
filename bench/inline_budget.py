"""What may run on the event loop: the cost of a thread-pool hop against the whole classification
of the uploads that :func:`app.imaging.decode.is_cheap_upload` lets run inline.

    python -m bench.inline_budget           # best of 7 rounds per case
    python -m bench.inline_budget --rounds 3

For each case it prints the CPU time of ``DigitClassifier.classify`` (decode, preprocess,
forward pass) in this process, best of several rounds, and whether the upload qualifies as
cheap. The cases are a real MNIST digit as a 28 x 28 PNG, canvas drawings, and the costliest
PNGs that still qualify: the largest pixel count the setting allows, in colour with alpha,
palette, interlaced, and filled with noise so that nothing compresses. The hop is an
``anyio.to_thread.run_sync`` of a function that does nothing, timed from the event loop.

A cheap upload must classify within :data:`LOOP_BUDGET_MS` (the longest a request may hold the
event loop), and a 28 x 28 PNG should cost less than the hop itself, or there is no reason to
run it inline. The script exits 1 when a cheap case breaks the budget.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import anyio
import numpy as np
from PIL import Image, ImageDraw

from app.classification import DigitClassifier
from app.core.config import Settings
from app.errors import InputError
from app.imaging.decode import is_cheap_upload
from app.inference.dense_network import use_single_threaded_blas
from app.inference.serving_model import load_serving_model
from app.startup import decode_limits
from bench.images import load_test_digits

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
LOOP_BUDGET_MS: Final = 2.0
"""The longest one request may hold the event loop, in milliseconds."""


def _png(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _drawing(side: int, mode: str) -> Image.Image:
    """A dark 7 drawn on a light canvas of ``side`` pixels, in ``mode``."""
    canvas = Image.new("RGB", (side, side), (250, 250, 246))
    pen = max(2, side // 12)
    ImageDraw.Draw(canvas).line(
        [(side * 0.2, side * 0.2), (side * 0.8, side * 0.2), (side * 0.4, side * 0.85)],
        fill=(20, 24, 60),
        width=pen,
    )
    return canvas.convert(mode)


def _noisy(side: int, mode: str, seed: int = 7) -> Image.Image:
    """A drawing with strong noise added, so that the PNG barely compresses."""
    generator = np.random.default_rng(seed)
    base = np.asarray(_drawing(side, "RGB"), dtype=np.int16)
    noise = generator.integers(-60, 60, size=base.shape, dtype=np.int16)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB").convert(mode)


def cases(inline_max_pixels: int) -> list[tuple[str, bytes]]:
    """The uploads measured: name and bytes."""
    digits, _, _ = load_test_digits(1, REPO_ROOT)
    side = int(inline_max_pixels**0.5)
    transparent = _drawing(side, "RGBA")
    alpha = np.asarray(transparent).copy()
    alpha[..., 3] = np.where(alpha[..., 0] < 128, 255, 0)
    return [
        ("MNIST digit, 28 x 28 grey PNG", _png(Image.fromarray(digits[0]))),
        ("canvas drawing, 280 x 280 RGBA", _png(_drawing(280, "RGBA"))),
        (f"drawing, {side} x {side} grey", _png(_drawing(side, "L"))),
        (f"drawing, {side} x {side} RGB", _png(_drawing(side, "RGB"))),
        (f"canvas export, {side} x {side} RGBA", _png(Image.fromarray(alpha, "RGBA"))),
        (f"drawing, {side} x {side} palette", _png(_drawing(side, "P"))),
        (f"drawing, {side} x {side} RGB interlaced", _png(_drawing(side, "RGB"), interlace=1)),
        (f"noisy photo, {side} x {side} grey", _png(_noisy(side, "L"))),
        (f"noisy photo, {side} x {side} RGB", _png(_noisy(side, "RGB"))),
        (f"noisy photo, {side} x {side} RGBA", _png(_noisy(side, "RGBA"))),
    ]


def best_cpu_seconds(work: Callable[[], object], rounds: int, calls: int = 20) -> float:
    """The fastest of ``rounds`` rounds of ``calls`` calls of ``work``, in CPU seconds per call."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(calls):
            work()
        best = min(best, (time.process_time() - started) / calls)
    return best


def hop_cpu_seconds(rounds: int, calls: int = 2000) -> float:
    """CPU seconds of one ``anyio.to_thread.run_sync`` round trip of a function doing nothing."""

    def nothing() -> None:
        return None

    async def measure() -> float:
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(calls):
                await anyio.to_thread.run_sync(nothing)
            best = min(best, (time.process_time() - started) / calls)
        return best

    return asyncio.run(measure())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds; the best counts")
    arguments = parser.parse_args(argv)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    use_single_threaded_blas()  # as the service's lifespan does
    classifier = DigitClassifier(load_serving_model(arguments.model_dir), decode_limits(settings))
    hop = hop_cpu_seconds(arguments.rounds)
    print(f"thread-pool hop (anyio.to_thread.run_sync of a no-op): {hop * 1e6:.0f} µs CPU")
    print(f"loop budget: {LOOP_BUDGET_MS:.1f} ms; INLINE_MAX_PIXELS={settings.INLINE_MAX_PIXELS}")
    print(f"{'upload':<40} {'bytes':>7} {'cheap':>5} {'classify (CPU)':>15} {'/ hop':>6}")
    over_budget = 0
    for name, data in cases(settings.INLINE_MAX_PIXELS):
        cheap = is_cheap_upload(data, max_pixels=settings.INLINE_MAX_PIXELS)

        def classify(upload: bytes = data) -> None:
            try:
                classifier.classify(upload)
            except InputError:
                pass

        seconds = best_cpu_seconds(classify, arguments.rounds)
        if cheap and seconds * 1e3 > LOOP_BUDGET_MS:
            over_budget += 1
        print(
            f"{name:<40} {len(data):>7,} {'yes' if cheap else 'no':>5} "
            f"{seconds * 1e3:>12.3f} ms {seconds / hop:>6.1f}"
        )
    verdict = "every cheap upload within the budget" if not over_budget else "OVER BUDGET"
    print(f"{verdict} ({over_budget} over)")
    return 1 if over_budget else 0


if __name__ == "__main__":
    raise SystemExit(main())
