"""Training digits as the model will really see them: drawn as photos, scans and canvas exports
(:func:`training.renderings.render`) and passed through the service's own preprocessing.

JPEG renderings are encoded and go through :func:`app.imaging.pipeline.prepare_upload`, the
exact serving path; PNG renderings (lossless) go straight to
:func:`app.imaging.preprocess.to_mnist_digit`, which is what decoding them would hand it. The
results are MNIST-format digits with their labels, so they join the training set like any other.

Rendering costs about 10 ms a digit, so the set is made in worker processes and cached on disk
(:mod:`training.cache`) under a key of everything that decides it: the seed, the count, the
source digits, and the code of the renderer and the preprocessing.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from numpy.typing import NDArray

from training.cache import cached_arrays, source_digest
from training.datasets import DigitSet

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
    key = source_digest(
        f"{count}:{seed}:{TRAINING_CANVAS_SIDES}", [digits.images, digits.labels], _CODE_MODULES
    )

    def build() -> dict[str, NDArray[np.generic]]:
        chosen = np.random.default_rng([seed, count]).choice(len(digits), size=count, replace=False)
        chunks = np.array_split(chosen, MAX_WORKERS * 4)
        tasks = [(digits.images[chunk], chunk.tolist(), seed) for chunk in chunks]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=MAX_WORKERS, mp_context=context) as pool:
            results = list(pool.map(_render_chunk, tasks))
        kept = np.concatenate([kept for _, kept in results])
        return {
            "images": np.concatenate([images for images, _ in results]),
            "labels": digits.labels[chosen][kept],
        }

    stored = cached_arrays(f"realistic-{key}", build)
    return DigitSet(
        images=stored["images"].astype(np.uint8), labels=stored["labels"].astype(np.uint8)
    )


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
