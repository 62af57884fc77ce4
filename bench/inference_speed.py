"""Time the model layer in-process: the numpy forward pass, and whole uploads to digits.

    python -m bench.inference_speed          # best of 7 rounds, 1 and 64 images

Prints, per image, the forward pass alone (:meth:`DenseNetwork.predict_probabilities` on model
input, the target being at most 100 µs) and the whole path of ``POST /predict/batch`` without
HTTP (:meth:`app.classification.DigitClassifier.classify_many`: decode, preprocess, one
forward pass for the batch), on real MNIST test digits as 28 x 28 PNGs. The best of several
rounds is shown, so a busy machine moves the figures less. This replaces a timed unit test:
speed targets are checked here, by figures, not by assertions in the test suite.
"""

from __future__ import annotations

import argparse
import io
import timeit
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.classification import DigitClassifier
from app.imaging.structure import DecodeLimits
from app.inference.dense_network import use_single_threaded_blas
from app.inference.serving_model import load_serving_model
from app.model_contract import to_model_input
from bench.images import load_test_digits

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
MAX_PIXELS: Final = 40_000_000
FORWARD_PASS_TARGET_US: Final = 100.0
BATCH_SIZES: Final = (1, 64)


def best_seconds_per_call(work: Callable[[], object], rounds: int) -> float:
    """The fastest of ``rounds`` timing rounds of ``work``, per call."""
    timer = timeit.Timer(work)
    loops, _ = timer.autorange()
    return min(timer.repeat(repeat=rounds, number=loops)) / loops


def png_bytes(pixels: NDArray[np.uint8]) -> bytes:
    """A 28 x 28 digit as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the per-image time of the forward pass and of the whole upload-to-digit path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds; the best counts")
    arguments = parser.parse_args(argv)
    use_single_threaded_blas()  # as the service's lifespan does
    model = load_serving_model(arguments.model_dir)
    classifier = DigitClassifier(model, DecodeLimits(max_pixels=MAX_PIXELS))
    digits, _, _ = load_test_digits(max(BATCH_SIZES), REPO_ROOT)
    uploads = [png_bytes(digit) for digit in digits]
    print(f"{'images':>6} {'forward pass':>16} {'upload to digit':>18}   (per image)")
    for batch_size in BATCH_SIZES:
        inputs = to_model_input(digits[:batch_size])
        forward = best_seconds_per_call(
            partial(model.network.predict_probabilities, inputs), arguments.rounds
        )
        whole = best_seconds_per_call(
            partial(classifier.classify_many, uploads[:batch_size]),
            arguments.rounds,
        )
        forward_us = forward / batch_size * 1e6
        whole_us = whole / batch_size * 1e6
        verdict = "ok" if forward_us <= FORWARD_PASS_TARGET_US else "OVER TARGET"
        print(
            f"{batch_size:>6} {forward_us:>11.1f} µs {verdict:<3} {whole_us:>12.1f} µs "
            f"({1e6 / whole_us:,.0f} images/s on one core)"
        )
    print(f"target: forward pass <= {FORWARD_PASS_TARGET_US:.0f} µs per image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
