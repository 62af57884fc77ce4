"""What the service's telemetry costs per request, in one process and in multiprocess mode.

    python -m bench.telemetry_cost                                   # the current module
    git show REV:app/telemetry/service_metrics.py > /tmp/before.py
    python -m bench.telemetry_cost --implementation /tmp/before.py   # another version of it

A simulated request is what the app records for one ``POST /predict``: one
``observe_request`` and one ``observe_prediction`` on a ``ServiceMetrics``. Each mode runs in
a fresh process, since ``prometheus_client`` picks its value store (in memory, or a
memory-mapped file per process under ``PROMETHEUS_MULTIPROC_DIR``) when it is imported. An
implementation with a ``flush`` method (the in-process buffers this service used before) is
flushed every ``--flush-every`` requests, about a second of one worker's traffic, and that
time is counted. The figure is the best round's wall time per request; the loop's own cost,
measured on methods that do nothing, is printed beside it. ``docs/performance.md`` lists the
figures.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Final, Protocol

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
MULTIPROCESS_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"
MODES: Final = ("single", "multiprocess")

# A few values of each, cycled through, so that several buckets and digits are hit.
_LATENCIES: Final = (0.0004, 0.0009, 0.0012, 0.0031)
_PREPROCESSING: Final = (0.00003, 0.00006, 0.0002)
_INFERENCE: Final = (0.000015, 0.00002, 0.00004)


class _Metrics(Protocol):
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None: ...

    def observe_prediction(
        self, preprocessing_seconds: float, inference_seconds: float, digit: int
    ) -> None: ...

    def exposition(self) -> bytes: ...


class _NoMetrics:
    """Methods that do nothing: the loop's own cost."""

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        pass

    def observe_prediction(
        self, preprocessing_seconds: float, inference_seconds: float, digit: int
    ) -> None:
        pass

    def exposition(self) -> bytes:
        return b""


def _load(implementation: str | None) -> ModuleType:
    """The current ``app.telemetry.service_metrics``, or the module in the file given."""
    if implementation is None:
        return importlib.import_module("app.telemetry.service_metrics")
    spec = importlib.util.spec_from_file_location("telemetry_under_test", implementation)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {implementation}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_round(
    metrics: _Metrics, requests: int, flush: Callable[[], None] | None, every: int
) -> float:
    """Seconds for ``requests`` simulated requests."""
    observe_request = metrics.observe_request
    observe_prediction = metrics.observe_prediction
    latencies = [_LATENCIES[index % len(_LATENCIES)] for index in range(requests)]
    preprocessing = [_PREPROCESSING[index % len(_PREPROCESSING)] for index in range(requests)]
    inference = [_INFERENCE[index % len(_INFERENCE)] for index in range(requests)]
    started = time.perf_counter()
    for index in range(requests):
        observe_request("/predict", "POST", 200, latencies[index])
        observe_prediction(preprocessing[index], inference[index], index % 10)
        if flush is not None and index % every == every - 1:
            flush()
    if flush is not None:
        flush()
    return time.perf_counter() - started


def _measure(arguments: argparse.Namespace) -> None:
    """In this process: print the µs per request of the implementation and of the bare loop."""
    module = _load(arguments.implementation)
    metrics: _Metrics = module.ServiceMetrics()
    flush: Callable[[], None] | None = getattr(metrics, "flush", None)
    bare = _NoMetrics()
    _run_round(metrics, arguments.requests, flush, arguments.flush_every)  # warm-up
    best = min(
        _run_round(metrics, arguments.requests, flush, arguments.flush_every)
        for _ in range(arguments.rounds)
    )
    loop = min(_run_round(bare, arguments.requests, None, 1) for _ in range(arguments.rounds))
    scrape_started = time.perf_counter()
    exposition = metrics.exposition()
    scrape = time.perf_counter() - scrape_started
    print(
        f"{arguments.mode:>12}: {best / arguments.requests * 1e6:6.2f} µs per request "
        f"(loop alone {loop / arguments.requests * 1e6:4.2f}; a scrape "
        f"{scrape * 1e3:.2f} ms, {len(exposition)} bytes)"
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--implementation", help="a service_metrics.py to load instead of the current one"
    )
    parser.add_argument("--requests", type=int, default=20_000, help="per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--flush-every", type=int, default=7_000, help="requests between flushes, if any"
    )
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure each mode in a fresh process."""
    arguments = _parse(argv)
    if arguments.mode is not None:
        _measure(arguments)
        return
    print(f"implementation: {arguments.implementation or 'app/telemetry/service_metrics.py'}")
    passed = [
        f"--requests={arguments.requests}",
        f"--rounds={arguments.rounds}",
        f"--flush-every={arguments.flush_every}",
    ]
    if arguments.implementation is not None:
        passed.append(f"--implementation={Path(arguments.implementation).resolve()}")
    for mode in MODES:
        environment = {
            key: value for key, value in os.environ.items() if key != MULTIPROCESS_DIR_VARIABLE
        }
        with tempfile.TemporaryDirectory(prefix="telemetry-cost-") as directory:
            if mode == "multiprocess":
                environment[MULTIPROCESS_DIR_VARIABLE] = directory
            subprocess.run(
                [sys.executable, "-m", "bench.telemetry_cost", f"--mode={mode}", *passed],
                cwd=REPO_ROOT,
                env=environment,
                check=True,
            )


if __name__ == "__main__":
    main()
