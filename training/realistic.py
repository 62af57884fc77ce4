"""Training digits as the model will really see them: drawn as photos, scans and canvas exports
(:func:`training.renderings.render`) and passed through the service's own preprocessing.

JPEG renderings are encoded and go through :func:`app.imaging.pipeline.prepare_upload`, the
exact serving path; PNG renderings (lossless) go straight to
:func:`app.imaging.preprocess.to_mnist_digit`, which is what decoding them would hand it. The
results are MNIST-format digits with their labels, so they join the training set like any other.

Rendering costs about 10 ms a digit, so the set is made in worker processes and cached on disk
(``build/cache`` or ``$MNIST_TRAINING_CACHE``) under a key of everything that decides it: the
seed, the count, the source digits, and the code of the renderer and the preprocessing. A
second run with the same inputs loads it in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from training.datasets import DigitSet

CACHE_ENVIRONMENT_VARIABLE = "MNIST_TRAINING_CACHE"
DEFAULT_CACHE_DIR = Path("build") / "cache"

TRAINING_CANVAS_SIDES = (64, 480)
"""Canvas sides of the training renderings: smaller than the corpus's (rendering is quicker and
the preprocessing shrinks large images to 256 pixels anyway) and reaching down to small
canvas exports."""

MAX_WORKERS = 2
"""Processes that render at once (the machine this project trains on has two cores)."""

_CODE_MODULES = (
    "training/renderings.py",
    "app/imaging/preprocess.py",
    "app/imaging/components.py",
    "app/imaging/working_size.py",
    "app/imaging/decode.py",
)
"""Source files whose change invalidates the cache."""


def cache_key(digits: DigitSet, count: int, seed: int) -> str:
    """A hex digest of everything that decides the rendered set."""
    digest = hashlib.sha256()
    digest.update(f"{count}:{seed}:{TRAINING_CANVAS_SIDES}".encode())
    digest.update(digits.images.tobytes())
    digest.update(digits.labels.tobytes())
    root = Path(__file__).resolve().parent.parent
    for relative in _CODE_MODULES:
        digest.update((root / relative).read_bytes())
    return digest.hexdigest()[:20]


def render_realistic_digits(digits: DigitSet, count: int, seed: int) -> DigitSet:
    """``count`` digits of ``digits`` (chosen with ``seed``) rendered and preprocessed, cached.

    Renderings in which the preprocessing finds no digit (rare: a very faint photo) are left
    out, so the result may hold a few fewer than ``count``.
    """
    count = min(count, len(digits))
    if count <= 0:
        return DigitSet(
            images=np.zeros((0, 28, 28), dtype=np.uint8), labels=np.zeros(0, dtype=np.uint8)
        )
    cache_dir = Path(os.environ.get(CACHE_ENVIRONMENT_VARIABLE, "") or DEFAULT_CACHE_DIR)
    cache_file = cache_dir / f"realistic-{cache_key(digits, count, seed)}.npz"
    if cache_file.is_file():
        with np.load(cache_file) as stored:
            return DigitSet(images=stored["images"], labels=stored["labels"])

    chosen = np.random.default_rng([seed, count]).choice(len(digits), size=count, replace=False)
    chunks = np.array_split(chosen, MAX_WORKERS * 4)
    tasks = [(digits.images[chunk], chunk.tolist(), seed) for chunk in chunks]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=MAX_WORKERS, mp_context=context) as pool:
        results = list(pool.map(_render_chunk, tasks))
    images = np.concatenate([images for images, _ in results])
    kept = np.concatenate([kept for _, kept in results])
    labels = digits.labels[chosen][kept]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f".{cache_file.stem}.partial.npz")
        with partial.open("wb") as stream:
            np.savez(stream, images=images, labels=labels)
        os.replace(partial, cache_file)
    except OSError:
        pass  # A read-only place (a container) only costs the next run the rendering again.
    return DigitSet(images=images, labels=labels)


def _render_chunk(
    task: tuple[NDArray[np.uint8], list[int], int],
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Render and preprocess one chunk (in a worker process): the digits found, and which of
    the chunk's digits they are."""
    from app.errors import InputError
    from app.imaging.pipeline import prepare_upload
    from app.imaging.preprocess import to_mnist_digit
    from app.imaging.structure import DecodeLimits
    from training.renderings import encode, render

    images, indices, seed = task
    limits = DecodeLimits(max_pixels=40_000_000)
    prepared: list[NDArray[np.uint8]] = []
    kept = np.zeros(len(indices), dtype=bool)
    for position, (image, index) in enumerate(zip(images, indices, strict=True)):
        # Each digit's rendering depends on the seed and its own index only.
        rng = np.random.default_rng([seed, index])
        drawn, suffix, _ = render(image, rng, TRAINING_CANVAS_SIDES)
        try:
            if suffix == "jpg":
                data, _ = encode(drawn, suffix, rng)
                prepared.append(prepare_upload(data, limits))
            else:
                prepared.append(to_mnist_digit(drawn))
        except InputError:
            continue
        kept[position] = True
    stack = np.stack(prepared) if prepared else np.zeros((0, 28, 28), dtype=np.uint8)
    return stack, kept
