"""A disk cache for sets of arrays that are slow to make (renderings passed through the
service's preprocessing), in ``build/cache`` or ``$MNIST_TRAINING_CACHE``.

An entry's name carries a digest of everything that decides it (:func:`source_digest`: the
parameters, the source arrays and the code that makes it), so a change to any of them makes a
new entry and a second run with the same inputs loads it in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

CACHE_ENVIRONMENT_VARIABLE = "MNIST_TRAINING_CACHE"
DEFAULT_CACHE_DIR = Path("build") / "cache"

_ROOT = Path(__file__).resolve().parent.parent


def source_digest(
    parameters: str, arrays: Iterable[NDArray[np.generic]], code_modules: Iterable[str]
) -> str:
    """A short hex digest of ``parameters``, the bytes of ``arrays`` and of the source files
    ``code_modules`` (paths relative to the project root)."""
    digest = hashlib.sha256(parameters.encode())
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    for relative in code_modules:
        digest.update((_ROOT / relative).read_bytes())
    return digest.hexdigest()[:20]


def cache_dir() -> Path:
    """Where entries are kept."""
    return Path(os.environ.get(CACHE_ENVIRONMENT_VARIABLE, "") or DEFAULT_CACHE_DIR)


def cached_arrays(
    name: str, build: Callable[[], dict[str, NDArray[np.generic]]]
) -> dict[str, NDArray[np.generic]]:
    """The arrays stored under ``name``, or ``build()``'s, stored for next time.

    The entry is written to a temporary file and renamed, so a reader never sees half of it; a
    read-only place (a container) only costs the next run the work again.
    """
    path = cache_dir() / f"{name}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    arrays = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.stem}.partial.npz")
        with partial.open("wb") as stream:
            np.savez(stream, **arrays)  # type: ignore[arg-type]
        os.replace(partial, path)
    except OSError:
        pass
    return arrays
