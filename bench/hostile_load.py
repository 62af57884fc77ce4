"""The service under a flood of costly images: memory, and how promptly everyone else is served.

    python -m bench.hostile_load                 # every case, 6 s each, docs/hostile-load.md
    python -m bench.hostile_load --seconds 2 --cases float_tiff_with_nan --output-dir /tmp/h

Starts the service as deployed (``scripts/serve-edge``: nginx in front of ``mnist-serve``) with
``WEB_CONCURRENCY=2``, then, for each costly file of ``tests/hostile_images.py`` at full
strength and for all of them mixed, has ``--attackers`` clients send it as fast as they are
answered for ``--seconds``. Meanwhile one client sends a 28 x 28 PNG to ``POST /predict`` every
50 ms and another reads the page (``GET /``) and the Prometheus endpoint in turn. It reports,
per case: the attack's answers by status and its slowest answer; the small uploads' p50 and p99
latency and how many were refused with 503; the page's and Prometheus's p99; the peak of the
summed resident memory of every process of the service (nginx, supervisor, workers, fork
servers, decoders), sampled every 100 ms; and the service's CPU seconds per attacking request.
Targets (issue "Bounded CPU, memory and waiting"): total memory under the compose limit
(1 GiB), a small upload answered within 1 s (p99) or refused at once with 503, the page and
Prometheus within 200 ms (p99). Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import httpx
import numpy as np
from PIL import Image

from bench.process_stats import MemoryWatcher, session_cpu_seconds
from bench.servers import LOOPBACK, ServerProcess, mnist_edge_spec
from tests.hostile_images import HOSTILE_CASES, digit_array

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
MEMORY_LIMIT_MIB: Final = 1024
SMALL_P99_LIMIT_S: Final = 1.0
PAGE_P99_LIMIT_S: Final = 0.2
MIXED: Final = "all cases mixed"


@dataclass(frozen=True)
class CaseResult:
    """What one flood did to the service."""

    case: str
    attack_requests: int
    attack_statuses: dict[str, int]
    attack_slowest_s: float
    small_requests: int
    small_refused_503: int
    small_p50_s: float
    small_p99_s: float
    page_p99_s: float
    prometheus_p99_s: float
    peak_memory_mib: float
    cpu_seconds_per_attack: float

    def misses(self) -> list[str]:
        """The targets this case missed, in words."""
        missed = []
        if self.peak_memory_mib > MEMORY_LIMIT_MIB:
            missed.append(f"memory {self.peak_memory_mib:.0f} MiB > {MEMORY_LIMIT_MIB}")
        if self.small_p99_s > SMALL_P99_LIMIT_S:
            missed.append(f"small upload p99 {self.small_p99_s:.2f} s")
        if max(self.page_p99_s, self.prometheus_p99_s) > PAGE_P99_LIMIT_S:
            missed.append("page or Prometheus p99 over 200 ms")
        return missed


def _small_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(digit_array(28, 28)).save(buffer, format="PNG")
    return buffer.getvalue()


def _p(values: Sequence[float], percentile: float) -> float:
    return float(np.percentile(values, percentile)) if values else 0.0


def flood(
    server: ServerProcess,
    watcher: MemoryWatcher,
    case: str,
    uploads: Sequence[bytes],
    *,
    attackers: int,
    seconds: float,
) -> CaseResult:
    """Send ``uploads`` (round robin) from ``attackers`` clients for ``seconds`` while probing."""
    base = f"http://{LOOPBACK}:{server.port}"
    stop = threading.Event()
    statuses: Counter[str] = Counter()
    slowest = [0.0]
    small_latencies: list[float] = []
    small_refused = [0]
    page_latencies: list[float] = []
    prometheus_latencies: list[float] = []
    lock = threading.Lock()

    def attacker(offset: int) -> None:
        with httpx.Client(timeout=60) as client:
            index = offset
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    response = client.post(
                        f"{base}/predict",
                        content=uploads[index % len(uploads)],
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    status = str(response.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                with lock:
                    statuses[status] += 1
                    slowest[0] = max(slowest[0], time.perf_counter() - started)
                index += 1

    def small_prober() -> None:
        small = _small_png()
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                response = client.post(
                    f"{base}/predict", content=small, headers={"Content-Type": "image/png"}
                )
                elapsed = time.perf_counter() - started
                if response.status_code == 503:
                    small_refused[0] += 1
                else:
                    small_latencies.append(elapsed)
                stop.wait(0.05)

    def page_prober() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                for path, latencies in (
                    ("/", page_latencies),
                    ("/monitoring/prometheus/metrics", prometheus_latencies),
                ):
                    started = time.perf_counter()
                    client.get(f"{base}{path}")
                    latencies.append(time.perf_counter() - started)
                stop.wait(0.05)

    threads = [threading.Thread(target=attacker, args=(index,)) for index in range(attackers)]
    threads += [threading.Thread(target=small_prober), threading.Thread(target=page_prober)]
    cpu_before = session_cpu_seconds(server.pid)
    watcher.reset_window()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    cpu = session_cpu_seconds(server.pid) - cpu_before
    attacks = sum(statuses.values())
    return CaseResult(
        case=case,
        attack_requests=attacks,
        attack_statuses=dict(sorted(statuses.items())),
        attack_slowest_s=round(slowest[0], 3),
        small_requests=len(small_latencies) + small_refused[0],
        small_refused_503=small_refused[0],
        small_p50_s=round(_p(small_latencies, 50), 4),
        small_p99_s=round(_p(small_latencies, 99), 4),
        page_p99_s=round(_p(page_latencies, 99), 4),
        prometheus_p99_s=round(_p(prometheus_latencies, 99), 4),
        peak_memory_mib=round(watcher.window_peak_rss_kib() / 1024, 1),
        cpu_seconds_per_attack=round(cpu / max(1, attacks), 3),
    )


def write_report(results: Sequence[CaseResult], settings: dict[str, str], output_dir: Path) -> None:
    """docs/hostile-load.json and .md."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "hostile-load.json").write_text(
        json.dumps({"settings": settings, "results": [asdict(r) for r in results]}, indent=2) + "\n"
    )
    lines = [
        "# The service under a flood of costly images",
        "",
        "`python -m bench.hostile_load` (this file is its output): the service as deployed "
        "(`scripts/serve-edge`, nginx in front of `mnist-serve`) with "
        + ", ".join(f"`{key}={value}`" for key, value in settings.items())
        + "; each costly file of `tests/hostile_images.py` at full strength sent by several "
        "clients at once, while one client sends a 28 x 28 PNG every 50 ms and another reads "
        "the page and the Prometheus endpoint. Memory is the peak of the summed RSS of every "
        "process of the service (nginx included), sampled every 100 ms.",
        "",
        "| Case | Attacks | Answers | Slowest | Small uploads p50 / p99 (503s) | Page p99 | "
        "Prometheus p99 | Peak memory | CPU s per attack | Targets |",
        "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        answers = ", ".join(
            f"{count} × {status}" for status, count in result.attack_statuses.items()
        )
        misses = result.misses()
        lines.append(
            f"| {result.case} | {result.attack_requests} | {answers} | "
            f"{result.attack_slowest_s:.2f} s | {result.small_p50_s * 1e3:.1f} / "
            f"{result.small_p99_s * 1e3:.1f} ms ({result.small_refused_503}) | "
            f"{result.page_p99_s * 1e3:.1f} ms | {result.prometheus_p99_s * 1e3:.1f} ms | "
            f"{result.peak_memory_mib:.0f} MiB | {result.cpu_seconds_per_attack:.2f} | "
            f"{'met' if not misses else 'MISSED: ' + '; '.join(misses)} |"
        )
    lines += [
        "",
        f"Targets: peak memory ≤ {MEMORY_LIMIT_MIB} MiB (the compose limit), small uploads "
        f"p99 ≤ {SMALL_P99_LIMIT_S:g} s or refused at once with 503, page and Prometheus "
        f"p99 ≤ {PAGE_P99_LIMIT_S * 1e3:.0f} ms.",
        "",
    ]
    (output_dir / "hostile-load.md").write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="flood time per case")
    parser.add_argument("--attackers", type=int, default=8, help="attacking clients at once")
    parser.add_argument("--cases", default=",".join(sorted(HOSTILE_CASES)) + "," + MIXED)
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "docs")
    parser.add_argument("--log", type=Path, default=REPO_ROOT / "bench/results/raw/hostile.log")
    arguments = parser.parse_args(argv)
    cases = [name.strip() for name in arguments.cases.split(",") if name.strip()]
    settings = {"WEB_CONCURRENCY": "2"}
    files: dict[str, bytes] = {name: make() for name, make in HOSTILE_CASES.items()}
    spec = mnist_edge_spec(
        "the service under costly images", model_dir=REPO_ROOT / "models", **settings
    )
    server = ServerProcess(spec, cwd=REPO_ROOT, log_path=arguments.log)
    results: list[CaseResult] = []
    with server:
        server.wait_ready(timeout_s=60)
        with MemoryWatcher(server.pid, interval_s=0.1) as watcher:
            for case in cases:
                uploads = list(files.values()) if case == MIXED else [files[case]]
                result = flood(
                    server,
                    watcher,
                    case,
                    uploads,
                    attackers=arguments.attackers,
                    seconds=arguments.seconds,
                )
                results.append(result)
                print(json.dumps(asdict(result)))
    write_report(results, settings, arguments.output_dir)
    missed = [result for result in results if result.misses()]
    print(
        f"wrote {arguments.output_dir / 'hostile-load.md'}; {len(missed)} case(s) missed a target"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
