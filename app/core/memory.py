"""Keep a worker's resident memory flat under threaded load: cap glibc's malloc arenas, and
hand the memory of a large decode back to the system when it is done.

glibc gives each thread that allocates under contention its own heap ("arena"), up to eight per
core, and returns little of an arena's memory to the system. The threadpool's threads decode
images into buffers of megabytes, so with the default the resident set of a worker kept growing
under a mixed load: 144 MiB after 1,500 requests at concurrency 64, 314 MiB after 12,000, with
no Python object leaking. With two arenas it stayed at 120-134 MiB (``bench/soak.py``, measured
on this project's 2-core machine). Two arenas still let two threads allocate at once, which is
as many as the CPU can run.

``mnist-serve`` calls :func:`limit_malloc_arenas` before it starts serving; set
``MALLOC_ARENA_MAX`` yourself to choose another value (it is then left alone).

Freed memory also stays with the process when it lies inside an arena: after a 36-megapixel
decode (about 180 MB) the next one, in another thread, added as much again to the resident set.
:func:`release_free_memory` (glibc's ``malloc_trim``) after each large decode gives it back, so
the resident set tracks the decodes in progress (see :mod:`app.imaging.decode_gate`).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Final

MALLOC_ARENA_MAX_VARIABLE: Final = "MALLOC_ARENA_MAX"
DEFAULT_MALLOC_ARENAS: Final = 2

# mallopt's parameter number for the arena limit (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX: Final = -8


def _libc_function(name: str) -> Any | None:
    """A function of the C library the process runs on, or None when it has none by that name."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Return the free memory of every malloc arena to the system (glibc ``malloc_trim(0)``,
    a few milliseconds); False where the C library has no such call."""
    malloc_trim = _libc_function("malloc_trim")
    if malloc_trim is None:
        return False
    malloc_trim.argtypes = (ctypes.c_size_t,)
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))


def limit_malloc_arenas(arenas: int = DEFAULT_MALLOC_ARENAS) -> bool:
    """Cap this process's malloc arenas at ``arenas`` and export ``MALLOC_ARENA_MAX`` for the
    worker processes it starts, unless the environment already sets it.

    Returns whether the cap was applied here (False off glibc, or when the environment
    chose its own value, which glibc has applied at start-up).
    """
    if os.environ.get(MALLOC_ARENA_MAX_VARIABLE):
        return False
    os.environ[MALLOC_ARENA_MAX_VARIABLE] = str(arenas)
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
