"""A bound on how many large images are decoded and preprocessed at once.

Decoding is where memory goes: a 40-megapixel PNG costs about 50 MB decoded in grey, 160 MB
in RGB, 300 MB in RGBA and over 600 MB as 16-bit grey before preprocessing shrinks it (peak
RSS measured on this machine). The threadpool runs up to 40 requests at once, so forty such
uploads would need tens of gigabytes. :class:`DecodeGate` lets at most ``max_concurrent``
large images through at a time; the others wait up to ``wait_seconds`` for a slot, and past
that the request is answered ``503`` with ``Retry-After`` (:class:`~app.errors.ServiceBusyError`)
rather than queueing without end.

After each large decode the freed memory is handed back to the system
(:func:`~app.core.memory.release_free_memory`), so the worker's resident memory follows the
decodes in progress rather than the largest it has ever done.

Only large images pass through the gate (more than :data:`HEAVY_DECODE_PIXELS` pixels, read from
the header without decoding). Small ones, the usual case, never wait, and JPEGs never do:
they are decoded at a reduced scale (see :mod:`app.imaging.decode`), a 40-megapixel JPEG in
about 12 MB.

>>> gate = DecodeGate(max_concurrent=2, wait_seconds=1.0)
>>> with gate.admit(small_png_bytes):  # doctest: +SKIP
...     prepare_upload(small_png_bytes, max_pixels=40_000_000)
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from PIL import Image

from app.core.memory import release_free_memory
from app.errors import ServiceBusyError
from app.imaging.decode import SUPPORTED_FORMATS, png_dimensions

HEAVY_DECODE_PIXELS: Final = 4_000_000
"""Images with more pixels than this (about 16 MB as RGBA) wait for a decode slot."""

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE: Final = b"\xff\xd8\xff"
_HEADER_FORMATS: Final = tuple(name for name in SUPPORTED_FORMATS if name != "JPEG")


def declared_pixels(data: bytes) -> int:
    """The number of pixels the upload's header declares, without decoding; 0 when the upload
    is a JPEG (decoded at a reduced scale) or has no readable header (refused later, cheaply).

    A PNG is read straight from its ``IHDR`` chunk; other formats through Pillow's header
    parser. Never raises.

    >>> declared_pixels(b"not an image")
    0
    """
    if data.startswith(_PNG_SIGNATURE):
        dimensions = png_dimensions(data)
        return 0 if dimensions is None else dimensions[0] * dimensions[1]
    if data.startswith(_JPEG_SIGNATURE):
        return 0
    try:
        with Image.open(io.BytesIO(data), formats=_HEADER_FORMATS) as image:
            width, height = image.size
    except Exception:
        # Not an image Pillow recognises (or a decompression bomb it already refuses): the
        # decoder refuses it from its header, so it needs no slot.
        return 0
    return max(0, width) * max(0, height)


class DecodeGate:
    """At most ``max_concurrent`` large images decoded at once; the next waits ``wait_seconds``.

    Thread-safe: :meth:`admit` is called from the threadpool's worker threads. It must not be
    called on the event loop for a large image, since it blocks while it waits.
    """

    def __init__(
        self,
        *,
        max_concurrent: int,
        wait_seconds: float,
        heavy_pixels: int = HEAVY_DECODE_PIXELS,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        if wait_seconds < 0:
            raise ValueError(f"wait_seconds must not be negative, not {wait_seconds}")
        self.max_concurrent = max_concurrent
        self.wait_seconds = wait_seconds
        self.heavy_pixels = heavy_pixels
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def is_heavy(self, data: bytes) -> bool:
        """Whether decoding ``data`` needs a slot."""
        return declared_pixels(data) > self.heavy_pixels

    @contextmanager
    def admit(self, data: bytes) -> Iterator[None]:
        """Hold a decode slot for the duration of the block if ``data`` is a large image.

        Raises :class:`~app.errors.ServiceBusyError` when no slot frees up in time.
        """
        if not self.is_heavy(data):
            yield
            return
        if not self._slots.acquire(timeout=self.wait_seconds):
            raise ServiceBusyError(
                f"the server is decoding {self.max_concurrent} large images already; "
                "retry shortly or send a smaller image",
                retry_after_seconds=max(1, math.ceil(self.wait_seconds)),
            )
        try:
            yield
        finally:
            self._slots.release()
            # The decode's buffers are free by now; give them back to the system, or the
            # process keeps them and its resident set grows with the number of threads.
            release_free_memory()
