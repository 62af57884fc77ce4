"""Decoding untrusted images where a bad file cannot hurt the service: a small pool of decoder
processes with hard limits enforced by the operating system.

Each worker of the service keeps ``MAX_CONCURRENT_DECODES`` decoder processes (a
:class:`pebble.ProcessPool`, started through a fork server so that they never inherit the
worker's threads or its model). An upload that is not cheap enough for the event loop is decoded and
preprocessed there, into the 28 x 28 digit; the network then runs in the worker as before.
Every decode runs under three limits:

* memory: the process's address space may grow by ``DECODE_MEMORY_MB`` beyond what it uses at
  rest (``RLIMIT_AS``); a decode that needs more fails with ``MemoryError``;
* CPU: each decode may use ``DECODE_CPU_SECONDS`` of CPU (``RLIMIT_CPU``, raised before each
  task by that much); past it the kernel stops the process (``SIGXCPU``);
* wall clock: ``DECODE_TIMEOUT_SECONDS``, after which the process is killed.

A process that is stopped is replaced by the pool; the upload is answered 413
(:class:`~app.errors.ImageTooComplexError`) naming the limit. After each decode the freed memory
is handed back to the system, so a decoder's resident memory returns to its resting level.

Waiting is bounded too: :meth:`DecodeSandbox.prepare` waits at most ``DECODE_WAIT_SECONDS`` for
a free decoder, then answers 503 with ``Retry-After`` (:class:`~app.errors.ServiceBusyError`)
instead of queueing without limit. Waiters are served in order, and a batch takes one decoder at
a time, so single uploads are never stuck behind a whole batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final

from pebble import ProcessExpired, ProcessPool

from app.core.memory import release_free_memory
from app.errors import ImageTooComplexError, ServiceBusyError
from app.imaging.number_layout import NumberLayout
from app.imaging.pipeline import read_upload, segment_upload
from app.imaging.preprocess import DigitReading
from app.imaging.structure import DecodeLimits

_MIB: Final = 1 << 20
_DECODES_PER_PROCESS: Final = 500


class DecodeSandbox:
    """A pool of ``processes`` decoder processes, each decode limited to ``memory_bytes`` more
    memory, ``cpu_seconds`` of CPU and ``timeout_seconds`` of wall-clock time; an upload waits
    at most ``wait_seconds`` for a free decoder.

    Create it inside the event loop that will use it (the app's lifespan), and :meth:`close` it
    at shutdown.
    """

    def __init__(
        self,
        limits: DecodeLimits,
        *,
        processes: int,
        memory_bytes: int,
        cpu_seconds: float,
        timeout_seconds: float,
        wait_seconds: float,
    ) -> None:
        self.limits = limits
        self.processes = processes
        self.memory_bytes = memory_bytes
        self.cpu_seconds = cpu_seconds
        self.timeout_seconds = timeout_seconds
        self.wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(processes)
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPool:
        context = multiprocessing.get_context("forkserver")
        # The fork server imports only this module (numpy, Pillow, the imaging code), not the
        # program that started it, so every decoder starts small and at once.
        context.set_forkserver_preload([__name__])
        return ProcessPool(
            max_workers=self.processes,
            # A decoder is replaced after this many decodes, so that nothing a long run of
            # decodes leaves behind in one process (fragmented memory) can add up.
            max_tasks=_DECODES_PER_PROCESS,
            initializer=_start_decoder,
            initargs=(self.memory_bytes,),
            context=context,
        )

    async def prepare(self, data: bytes) -> DigitReading:
        """The upload as a 28 x 28 MNIST-format digit (:func:`~app.imaging.pipeline.read_upload`),
        decoded and preprocessed in a decoder process.

        Raises the :class:`~app.errors.InputError` the decoder raised (invalid, too large,
        blank, ...), :class:`~app.errors.ImageTooComplexError` when a limit stopped the decode,
        and :class:`~app.errors.ServiceBusyError` when no decoder was free in time.
        """
        reading: DigitReading = await self._run(_prepare_in_decoder, data)
        return reading

    async def segment(self, data: bytes, max_digits: int) -> NumberLayout:
        """The upload's number as candidate digits (:func:`~app.imaging.pipeline.segment_upload`),
        decoded and segmented in a decoder process under the same limits and with the same
        errors as :meth:`prepare`."""
        layout: NumberLayout = await self._run(_segment_in_decoder, data, max_digits)
        return layout

    async def _run(self, task: Callable[..., Any], data: bytes, *arguments: Any) -> Any:
        """Run ``task(data, limits, cpu_seconds, *arguments)`` in a decoder when one is free."""
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise ServiceBusyError(
                f"all {self.processes} image decoders of this worker stayed busy for "
                f"{self.wait_seconds:g} s; retry shortly",
                retry_after_seconds=max(1, math.ceil(self.wait_seconds)),
            ) from None
        try:
            try:
                return await self._decode(task, data, *arguments)
            except BrokenProcessPool:
                # The pool lost track of a decoder it had to replace: start a fresh pool and
                # decode once more there.
                self._restart()
                return await self._decode(task, data, *arguments)
        except concurrent.futures.TimeoutError:
            raise ImageTooComplexError(
                f"decoding this image took longer than {self.timeout_seconds:g} s "
                "(DECODE_TIMEOUT_SECONDS); send a smaller or simpler image"
            ) from None
        except ProcessExpired as error:
            raise self._stopped(error.exitcode) from None
        finally:
            self._slots.release()

    async def _decode(self, task: Callable[..., Any], data: bytes, *arguments: Any) -> Any:
        """Decode in the pool, starting a fresh one first if the current one has stopped."""
        if not self._pool.active:
            self._restart()
        future = self._pool.schedule(
            task,
            args=(data, self.limits, self.cpu_seconds, *arguments),
            timeout=self.timeout_seconds,
        )
        return await asyncio.wrap_future(future)

    def _restart(self) -> None:
        """Replace the pool (its processes are stopped) with a fresh one."""
        broken, self._pool = self._pool, self._new_pool()
        broken.stop()  # type: ignore[no-untyped-call]

    def _stopped(self, exit_code: int | None) -> ImageTooComplexError:
        """The error for a decoder process that the kernel stopped."""
        if exit_code == -signal.SIGXCPU:
            return ImageTooComplexError(
                f"decoding this image needed more than {self.cpu_seconds:g} s of CPU time "
                "(DECODE_CPU_SECONDS); send a smaller or simpler image"
            )
        return ImageTooComplexError(
            f"decoding this image needed more than {self.memory_bytes // _MIB:,} MB of memory "
            "(DECODE_MEMORY_MB); send a smaller image"
        )

    def close(self) -> None:
        """Stop the decoder processes (those decoding are killed) and wait for them."""
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join()


def _start_decoder(memory_bytes: int) -> None:
    """In each new decoder process: cap its address space at its resting size plus
    ``memory_bytes``, and write no core file when the kernel stops it."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resting = _address_space_bytes()
    resource.setrlimit(resource.RLIMIT_AS, (resting + memory_bytes, resting + memory_bytes))


def _address_space_bytes() -> int:
    """This process's virtual memory size (``VmSize``)."""
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmSize is missing from /proc/self/status")


def _prepare_in_decoder(data: bytes, limits: DecodeLimits, cpu_seconds: float) -> DigitReading:
    """The task of :meth:`DecodeSandbox.prepare`: one upload as a 28 x 28 digit."""
    reading: DigitReading = _limited(cpu_seconds, read_upload, data, limits)
    return reading


def _segment_in_decoder(
    data: bytes, limits: DecodeLimits, cpu_seconds: float, max_digits: int
) -> NumberLayout:
    """The task of :meth:`DecodeSandbox.segment`: one upload's number as candidate digits."""
    layout: NumberLayout = _limited(cpu_seconds, segment_upload, data, limits, max_digits)
    return layout


def _limited(cpu_seconds: float, function: Callable[..., Any], *arguments: Any) -> Any:
    """What each decoder task does around its work: allow ``cpu_seconds`` more CPU, run
    ``function(*arguments)``, and turn running out of memory into the service's error."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # Whole seconds, rounded down: the decode gets at least cpu_seconds - 1 and at most
    # cpu_seconds of CPU time.
    allowed = int(usage.ru_utime + usage.ru_stime + cpu_seconds)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        allowed = min(allowed, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (allowed, hard))
    try:
        return function(*arguments)
    except MemoryError:
        raise ImageTooComplexError(
            "decoding this image needed more memory than one image may use (DECODE_MEMORY_MB); "
            "send a smaller image"
        ) from None
    finally:
        # No CPU limit between decodes: the limit is each decode's, and a decoder stopped while
        # it waits for work would take no upload's answer with it.
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
        release_free_memory()
