"""The benchmark command: ``python -m bench.run`` (``--help`` lists the options).

In one run it starts, one after the other on 127.0.0.1:

* ``ceiling``: FastAPI reading the multipart upload and answering a constant (the framework's
  own limit, ``bench/baselines/ceiling_service.py``);
* ``ours``: our service, started as the README starts it (``mnist-serve``, or
  ``python -m app.cli`` when the console script is not installed), plus any ``--variant`` of it
  with extra environment variables;
* ``ours-edge``: our service as it is deployed, through the edge (``scripts/serve-edge``: nginx
  with ``deploy/nginx/nginx.conf`` in front of ``mnist-serve`` on a Unix socket), loaded with
  the same scenarios as ``ours``; its server CPU is nginx's and the app's together, and each
  point also records the app's share;
* ``naive``: the usual FastAPI + Keras service (``bench/baselines/naive_service.py``).

Each is loaded with ``wrk`` using a real MNIST test digit as a 28 x 28 PNG and the same digit in
a 900 x 900 JPEG photo, at each concurrency, and ``POST /predict/batch`` where it exists. The
results go to ``docs/benchmark.json``, ``docs/benchmark.md`` and ``docs/benchmark.png``; server
logs and wrk's own output go to ``bench/results/raw/``. Every server is stopped at the end,
also on Ctrl-C or an error.

``--repeat N`` runs that sequence N times in one invocation (rounds 1 to N), since the machine's
speed drifts between runs; the naive baseline, slow to start and to measure, runs in the first
round only, and every round's ratios to it divide by that one measurement. The report then
gives each target's value in every round with their minimum, median and maximum, and judges
the median.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.images import BenchImages, write_bench_images
from bench.process_stats import (
    MemoryWatcher,
    ProcessMemory,
    app_memory,
    busiest_process_cpu_seconds,
    cpu_seconds_by_process,
    machine_busy_cpu_seconds,
    session_cpu_seconds,
)
from bench.report import write_reports
from bench.scenarios import Scenario, probe, scenarios_for
from bench.servers import (
    LOOPBACK,
    ServerProcess,
    ServerStartError,
    ServiceSpec,
    command_exists,
    http_request,
    mnist_edge_spec,
    stop_all_servers,
)
from bench.wrk_load import LoadResult, WrkError, run_wrk

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_FILENAME = "mnist_dense.keras"
SERVICE_KINDS = ("ceiling", "ours", "ours-edge", "naive")
"""Every service the benchmark knows, in the order they are run."""

EDGE_SERVICE = "ours-edge"
"""Our service through the edge (nginx in front of ``mnist-serve``)."""

_UVICORN_QUIET = ("--no-access-log", "--log-level", "warning")


@dataclass(frozen=True)
class BenchSettings:
    """Everything a run needs to know, from the command line."""

    services: tuple[str, ...]
    variants: tuple[tuple[str, dict[str, str]], ...]
    concurrency: tuple[int, ...]
    duration_s: int
    warmup_s: int
    timeout_s: int
    batch_size: int
    batch_concurrency: int
    workers: int
    naive_workers: int
    server_cpus: str | None
    client_cpus: str | None
    model_dir: Path
    output_dir: Path
    raw_dir: Path
    ready_timeout_s: float
    quick: bool
    repeat: int = 1
    """Rounds of the whole sequence; the naive baseline runs in the first only."""


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """Read ``NAME:ENV=VALUE[,ENV=VALUE...]`` into a name and its environment variables.

    >>> parse_variant("no-telemetry:PROMETHEUS_ENABLED=false")
    ('no-telemetry', {'PROMETHEUS_ENABLED': 'false'})
    """
    name, separator, assignments = text.partition(":")
    if not separator or not name or not assignments:
        raise ValueError(f"a variant is NAME:ENV=VALUE[,ENV=VALUE...], not {text!r}")
    if name in SERVICE_KINDS:
        raise ValueError(f"the variant name {name!r} is taken by a built-in service")
    environment = {}
    for assignment in assignments.split(","):
        key, equals, value = assignment.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"{assignment!r} in variant {name!r} is not ENV=VALUE")
        environment[key.strip()] = value
    return name, environment


def _concurrency_levels(text: str) -> tuple[int, ...]:
    levels = tuple(int(part) for part in text.split(","))
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels are positive integers, e.g. 1,16,64")
    return levels


def _service_names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(names) - set(SERVICE_KINDS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"services are a comma-separated subset of {','.join(SERVICE_KINDS)}"
        )
    return names


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _cpu_list(text: str) -> str | None:
    return None if text in ("", "none", "all") else text


def parse_arguments(argv: Sequence[str] | None = None) -> BenchSettings:
    """Read the command line; ``--quick`` changes the defaults to a short smoke run."""
    last_cpu = str((os.cpu_count() or 1) - 1)
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Load-test our service, a naive Keras baseline and the framework ceiling.",
    )
    parser.add_argument(
        "--services",
        type=_service_names,
        default=SERVICE_KINDS,
        help="comma-separated subset of ceiling,ours,ours-edge,naive (default: all)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:ENV=VAL[,...]",
        help="also run our service with these environment variables",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency_levels,
        default=None,
        help="connection counts (default 1,16,64; quick: 1,16)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_int,
        default=None,
        help="seconds per measured point (default 8; quick: 1)",
    )
    parser.add_argument(
        "--warmup",
        type=_positive_int,
        default=None,
        help="seconds of unrecorded load before each scenario (default 2; quick: 1)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_int,
        default=10,
        help="wrk request timeout in seconds; slower answers count as errors",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=64,
        help="images per POST /predict/batch request",
    )
    parser.add_argument(
        "--batch-concurrency",
        type=_positive_int,
        default=4,
        help="connections for the batch measurement",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="worker processes of ours (WEB_CONCURRENCY) and of the ceiling",
    )
    parser.add_argument(
        "--naive-workers",
        type=_positive_int,
        default=1,
        help="worker processes of the naive baseline",
    )
    parser.add_argument(
        "--server-cpus",
        type=_cpu_list,
        default=None,
        metavar="LIST",
        help="taskset CPU list for the servers (default: all CPUs)",
    )
    parser.add_argument(
        "--client-cpus",
        type=_cpu_list,
        default=last_cpu,
        metavar="LIST",
        help=f"taskset CPU list for wrk (default: {last_cpu}; 'all' to not pin)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path("models"),
        help="folder with mnist_dense.keras (and metrics.json for ours)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where the JSON, Markdown and PNG go (default docs/; quick: bench/results/raw/quick)",
    )
    parser.add_argument(
        "--raw-dir",
        type=Path,
        default=Path("bench/results/raw"),
        help="server logs, wrk output and the generated images",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=180.0,
        help="seconds a server may take to answer /readyz with 200",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run the whole sequence N times (rounds) and report each target's spread; "
        "the naive baseline runs in the first round only (default 1)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 s points at concurrency 1 and 16, output outside docs/",
    )
    arguments = parser.parse_args(argv)
    try:
        variants = tuple(parse_variant(text) for text in arguments.variant)
    except ValueError as error:
        parser.error(str(error))
    quick = bool(arguments.quick)

    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else REPO_ROOT / path

    output_dir = arguments.output_dir or Path("bench/results/raw/quick" if quick else "docs")
    return BenchSettings(
        services=arguments.services,
        variants=variants,
        concurrency=arguments.concurrency or ((1, 16) if quick else (1, 16, 64)),
        duration_s=arguments.duration or (1 if quick else 8),
        warmup_s=arguments.warmup or (1 if quick else 2),
        timeout_s=arguments.timeout,
        batch_size=arguments.batch_size,
        batch_concurrency=arguments.batch_concurrency,
        workers=arguments.workers,
        naive_workers=arguments.naive_workers,
        server_cpus=arguments.server_cpus,
        client_cpus=arguments.client_cpus,
        model_dir=resolve(arguments.model_dir),
        output_dir=resolve(output_dir),
        raw_dir=resolve(arguments.raw_dir),
        ready_timeout_s=arguments.ready_timeout,
        quick=quick,
        repeat=arguments.repeat,
    )


def _uvicorn(factory: str, workers: int) -> tuple[str, ...]:
    return (
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        LOOPBACK,
        "--port",
        "{port}",
        "--workers",
        str(workers),
        *_UVICORN_QUIET,
    )


def _our_command() -> tuple[str, ...]:
    console_script = Path(sys.executable).parent / "mnist-serve"
    if console_script.is_file():
        return (str(console_script),)
    return (sys.executable, "-m", "app.cli")


def _edge_spec(settings: BenchSettings) -> ServiceSpec:
    """Our service through the edge, with the settings ``ours`` gets."""
    edge = mnist_edge_spec(
        "our service through the edge: nginx in front of it (scripts/serve-edge)",
        model_dir=settings.model_dir,
        WEB_CONCURRENCY=str(settings.workers),
        MAX_BATCH_FILES=str(settings.batch_size),
    )
    return dataclasses.replace(
        edge, name=EDGE_SERVICE, workers=settings.workers, raw_body=True, batch=True
    )


def is_edge(spec: ServiceSpec) -> bool:
    """Whether the service is our app behind nginx, not the app alone."""
    return spec.name == EDGE_SERVICE


def build_service_specs(settings: BenchSettings) -> list[ServiceSpec]:
    """The services of this run, in the order they are measured."""
    specs = []
    our_env = {
        "HOST": LOOPBACK,
        "PORT": "{port}",
        "WEB_CONCURRENCY": str(settings.workers),
        "MODEL_DIR": str(settings.model_dir),
        "MAX_BATCH_FILES": str(settings.batch_size),
    }
    for kind in SERVICE_KINDS:
        if kind not in settings.services:
            continue
        if kind == "ceiling":
            specs.append(
                ServiceSpec(
                    name="ceiling",
                    kind="ceiling",
                    description="FastAPI reads the upload, answers a constant",
                    command=_uvicorn(
                        "bench.baselines.ceiling_service:create_app", settings.workers
                    ),
                    workers=settings.workers,
                    batch=True,
                )
            )
        elif kind == EDGE_SERVICE:
            if "ours" not in settings.services:
                specs.append(_edge_spec(settings))
        elif kind == "ours":
            for name, extra_env in (("ours", {}), *settings.variants):
                specs.append(
                    ServiceSpec(
                        name=name,
                        kind="ours",
                        description="our service"
                        + (
                            " with " + " ".join(f"{k}={v}" for k, v in extra_env.items())
                            if extra_env
                            else ""
                        ),
                        command=_our_command(),
                        env={**our_env, **extra_env},
                        workers=settings.workers,
                        raw_body=True,
                        batch=True,
                    )
                )
                if name == "ours" and EDGE_SERVICE in settings.services:
                    specs.append(_edge_spec(settings))  # Right after ours, before its variants.
        else:
            specs.append(
                ServiceSpec(
                    name="naive",
                    kind="naive",
                    description="Keras model.predict per request in async def",
                    command=_uvicorn(
                        "bench.baselines.naive_service:create_app", settings.naive_workers
                    ),
                    env={
                        "BENCH_MODEL_FILE": str(settings.model_dir / MODEL_FILENAME),
                        "TF_CPP_MIN_LOG_LEVEL": "2",
                    },
                    workers=settings.naive_workers,
                )
            )
    return specs


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PointCpu:
    """CPU seconds used during one point besides the server's and wrk's own (in
    :class:`LoadResult`): other programs, and the server's busiest single process (of the app's
    processes, behind the edge); behind the edge also the app's processes' share of the server's
    CPU (the rest is nginx's and its log pipe's)."""

    other_s: float
    busiest_process_s: float
    app_s: float | None = None


def _point_record(
    service: ServiceSpec,
    scenario: Scenario,
    result: LoadResult,
    cpu: PointCpu,
    peak_kib: int,
    round_number: int = 1,
) -> dict[str, Any]:
    duration = result.duration_s or 1.0
    record = {
        "round": round_number,
        "service": service.name,
        "kind": service.kind,
        "image": scenario.image,
        "upload": scenario.upload,
        "path": scenario.path,
        "images_per_request": scenario.images_per_request,
        "concurrency": result.concurrency,
        "duration_s": round(result.duration_s, 3),
        "requests": result.requests,
        "requests_per_s": round(result.requests_per_s, 1),
        "images_per_s": round(result.requests_per_s * scenario.images_per_request, 1),
        "latency_ms": result.latency_ms,
        "errors": result.errors,
        "non_2xx": result.non_2xx,
        "status_counts": result.status_counts,
        "socket_errors": result.socket_errors,
        "server_cpu_percent": round(100 * result.server_cpu_s / duration, 1),
        "client_cpu_percent": round(100 * result.client_cpu_s / duration, 1),
        "other_cpu_percent": round(100 * cpu.other_s / duration, 1),
        "busiest_process_cpu_percent": round(100 * cpu.busiest_process_s / duration, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }
    if cpu.app_s is not None:
        record["app_cpu_percent"] = round(100 * cpu.app_s / duration, 1)
    return record


def _settle(server: ServerProcess, *, timeout_s: float, idle_window_s: float = 0.2) -> None:
    """Wait until the requests a previous wrk run left in flight are done.

    wrk closes its connections when its time is up, but a server that answers slowly (the naive
    baseline) still works through the requests it had accepted. The next point would queue
    behind them, so wait until a readiness probe has its answer and the server's processes use
    less than a tenth of a core.
    """
    deadline = time.perf_counter() + timeout_s
    with contextlib.suppress(OSError, http.client.HTTPException):
        http_request(server.port, "GET", "/readyz", timeout_s=timeout_s)
    previous = session_cpu_seconds(server.pid)
    while time.perf_counter() < deadline:
        time.sleep(idle_window_s)
        current = session_cpu_seconds(server.pid)
        if current - previous < 0.1 * idle_window_s:
            return
        previous = current


def _load_point(
    server: ServerProcess,
    scenario: Scenario,
    concurrency: int,
    duration_s: int,
    settings: BenchSettings,
    log_path: Path,
) -> tuple[LoadResult, PointCpu]:
    """Run wrk once; also return the CPU seconds other programs used meanwhile and those of
    the server's busiest process (with several workers, it shows how evenly the kernel spread
    wrk's connections over them); behind the edge, the busiest of the app's processes and the
    app's processes' CPU seconds."""
    _settle(server, timeout_s=settings.timeout_s + 5.0)
    app_pids = {memory.pid for memory in app_memory(server.pid)} if is_edge(server.spec) else None
    busy_before = machine_busy_cpu_seconds()
    processes_before = cpu_seconds_by_process(server.pid)
    result = run_wrk(
        f"http://{LOOPBACK}:{server.port}{scenario.path}",
        script=scenario.script,
        script_args=scenario.script_args,
        concurrency=concurrency,
        duration_s=duration_s,
        timeout_s=settings.timeout_s,
        client_cpus=settings.client_cpus,
        server_cpu_seconds=lambda: session_cpu_seconds(server.pid),
        log_path=log_path,
    )
    busy = machine_busy_cpu_seconds() - busy_before
    processes_after = cpu_seconds_by_process(server.pid)
    other_s = max(0.0, busy - result.client_cpu_s - result.server_cpu_s)
    if app_pids is None:
        busiest_s = busiest_process_cpu_seconds(processes_before, processes_after)
        return result, PointCpu(other_s=other_s, busiest_process_s=busiest_s)
    app_after = {pid: seconds for pid, seconds in processes_after.items() if pid in app_pids}
    return result, PointCpu(
        other_s=other_s,
        busiest_process_s=busiest_process_cpu_seconds(processes_before, app_after),
        app_s=sum(seconds - processes_before.get(pid, 0.0) for pid, seconds in app_after.items()),
    )


def measure_service(
    spec: ServiceSpec, images: BenchImages, settings: BenchSettings, round_number: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start one service, load it with every scenario, stop it; return its record and points."""
    raw_dir = settings.raw_dir / spec.name
    if settings.repeat > 1:
        raw_dir = settings.raw_dir / f"round{round_number}" / spec.name
    record: dict[str, Any] = {
        "round": round_number,
        "name": spec.name,
        "kind": spec.kind,
        "description": spec.description,
        "command": shlex.join(spec.command),
        "env": dict(spec.env),
        "workers": spec.workers,
        "start_to_ready_s": None,
        "error": None,
        "probes": {},
        "memory": None,
    }
    points: list[dict[str, Any]] = []
    _log(f"== {spec.name}: starting {shlex.join(spec.command)}")
    with ServerProcess(
        spec, cwd=REPO_ROOT, log_path=raw_dir / "server.log", cpus=settings.server_cpus
    ) as server:
        try:
            ready_s = server.wait_ready(timeout_s=settings.ready_timeout_s)
        except ServerStartError as error:
            record["error"] = str(error)
            _log(f"!! {spec.name} did not start: {error}")
            return record, points
        record["start_to_ready_s"] = round(ready_s, 3)
        _log(f"   ready after {ready_s:.2f} s on port {server.port}")
        with MemoryWatcher(server.pid) as watcher:
            try:
                for scenario in scenarios_for(spec, images):
                    answer = probe(server.port, scenario)
                    record["probes"][scenario.label] = dataclasses.asdict(answer)
                    if not answer.ok:
                        _log(f"!! {spec.name} {scenario.label}: probe got {answer.status}, skipped")
                        continue
                    slug = scenario.label.replace("/", "_")
                    levels = (
                        (settings.batch_concurrency,)
                        if scenario.images_per_request > 1
                        else settings.concurrency
                    )
                    _load_point(
                        server,
                        scenario,
                        max(levels),
                        settings.warmup_s,
                        settings,
                        raw_dir / f"{slug}_warmup.txt",
                    )
                    for concurrency in levels:
                        watcher.reset_window()
                        result, point_cpu = _load_point(
                            server,
                            scenario,
                            concurrency,
                            settings.duration_s,
                            settings,
                            raw_dir / f"{slug}_c{concurrency}.txt",
                        )
                        point = _point_record(
                            spec,
                            scenario,
                            result,
                            point_cpu,
                            watcher.window_peak_rss_kib(),
                            round_number,
                        )
                        points.append(point)
                        _log(f"   {scenario.label:<22} c={concurrency:<3} {_summary(result)}")
            except (WrkError, OSError, http.client.HTTPException) as error:
                # The server died under load (or was stopped by someone else): keep what was
                # measured, mark the service failed and go on with the next one.
                record["error"] = f"stopped answering: {error}\n{server.log_tail()}"
                _log(f"!! {spec.name} stopped answering: {error}")
            # Behind the edge, the app is not the session's leader: find its processes while
            # they run (their VmHWM is already the peak of the whole run).
            app_processes = app_memory(server.pid) if is_edge(spec) else None
        record["memory"] = _memory_summary(watcher, app_processes)
    return record, points


def _summary(result: LoadResult) -> str:
    latency = result.latency_ms
    if not latency:
        return f"no request completed in {result.duration_s:.1f} s, errors {result.errors}"
    return (
        f"{result.requests_per_s:9.1f} req/s  p50 {latency['p50']:8.2f} ms  "
        f"p99 {latency['p99']:8.2f} ms  errors {result.errors}"
    )


def _memory_summary(
    watcher: MemoryWatcher, app_processes: list[ProcessMemory] | None = None
) -> dict[str, Any]:
    """Peak memory of every process, and of the largest worker. ``app_processes``, the app's
    processes behind the edge, give the roles (the others, nginx included, are ``edge``)."""
    processes = watcher.processes()
    if app_processes is not None:
        roles = {memory.pid: memory.role for memory in app_processes}
        processes = [
            dataclasses.replace(memory, role=roles.get(memory.pid, "edge")) for memory in processes
        ]
    workers = [memory for memory in processes if memory.role == "worker"]
    return {
        "peak_rss_mib_total": round(sum(memory.peak_rss_kib for memory in processes) / 1024, 1),
        "peak_rss_mib_per_worker": round(
            max((memory.peak_rss_kib for memory in workers), default=0) / 1024, 1
        ),
        "processes": [dataclasses.asdict(memory) for memory in processes],
    }


def _git_state() -> dict[str, Any]:
    def git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return completed.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _software_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in (
        "fastapi",
        "starlette",
        "uvicorn",
        "python-multipart",
        "pillow",
        "numpy",
        "tensorflow",
        "keras",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    versions["wrk"] = (wrk.stdout + wrk.stderr).splitlines()[0].split(" Copyright")[0]
    with contextlib.suppress(OSError, IndexError):
        nginx = subprocess.run(
            ["nginx", "-v"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin"},
        )
        versions["nginx"] = (nginx.stdout + nginx.stderr).splitlines()[0].split(": ")[-1]
    return versions


def _check_prerequisites(settings: BenchSettings) -> list[str]:
    problems = []
    if not command_exists("wrk"):
        problems.append("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    pinning = settings.server_cpus is not None or settings.client_cpus is not None
    if pinning and not command_exists("taskset"):
        problems.append("taskset is missing (util-linux); pass --client-cpus all to not pin")
    if EDGE_SERVICE in settings.services:
        if not (command_exists("nginx") or Path("/usr/sbin/nginx").is_file()):
            problems.append("nginx is not installed (Debian/Ubuntu: apt-get install nginx-light)")
        edge_app = Path(_edge_spec(settings).env["MNIST_SERVE"])
        if not edge_app.is_file():
            problems.append(f"{edge_app} is missing (pip install -e . in this environment)")
    model_file = settings.model_dir / MODEL_FILENAME
    needs_model = {"ours", EDGE_SERVICE, "naive"} & set(settings.services)
    if needs_model and not model_file.is_file():
        problems.append(f"{model_file} is missing (train it first, or pass --model-dir)")
    return problems


def run_benchmark(settings: BenchSettings, argv: Sequence[str]) -> dict[str, Any]:
    """Measure every service of the run and return the full result document."""
    images = write_bench_images(
        settings.raw_dir / "images", batch_size=settings.batch_size, repo_root=REPO_ROOT
    )
    document: dict[str, Any] = {
        "schema_version": 1,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench.run", *argv]),
        "git": _git_state(),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "load_average_start": [round(value, 2) for value in os.getloadavg()],
        },
        "software": _software_versions(),
        "settings": {
            "concurrency": list(settings.concurrency),
            "duration_s": settings.duration_s,
            "warmup_s": settings.warmup_s,
            "timeout_s": settings.timeout_s,
            "batch_size": settings.batch_size,
            "batch_concurrency": settings.batch_concurrency,
            "workers": settings.workers,
            "naive_workers": settings.naive_workers,
            "repeat": settings.repeat,
            "server_cpus": settings.server_cpus or "all",
            "client": "wrk -t1"
            + (
                f" pinned with taskset to CPU {settings.client_cpus}"
                if settings.client_cpus
                else ""
            ),
            "quick": settings.quick,
        },
        "images": {
            "source": images.source,
            "single": [
                {
                    "name": image.name,
                    "file": image.path.name,
                    "bytes": image.path.stat().st_size,
                    "content_type": image.content_type,
                    "digit": image.digit,
                    "description": image.description,
                }
                for image in images.single
            ],
            "batch_files": len(images.batch),
        },
        "services": [],
        "results": [],
    }
    specs = build_service_specs(settings)
    for round_number in range(1, settings.repeat + 1):
        if settings.repeat > 1:
            _log(f"== round {round_number} of {settings.repeat}")
        for spec in specs:
            if spec.kind == "naive" and round_number > 1:
                continue  # Measured once: slow to start and to load.
            record, points = measure_service(spec, images, settings, round_number)
            document["services"].append(record)
            document["results"].extend(points)
    document["machine"]["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    return document


def _raise_system_exit(signal_number: int, _: object) -> None:
    raise SystemExit(128 + signal_number)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 1 if a service failed to start or a run failed."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    settings = parse_arguments(arguments)
    problems = _check_prerequisites(settings)
    if problems:
        for problem in problems:
            _log(f"error: {problem}")
        return 2
    # SIGTERM and SIGHUP unwind like Ctrl-C, so the finally clause stops the servers.
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGHUP, _raise_system_exit)
    started = time.perf_counter()
    try:
        document = run_benchmark(settings, arguments)
    except (WrkError, OSError) as error:
        _log(f"error: {error}")
        return 1
    finally:
        stop_all_servers()
    document["bench_seconds"] = round(time.perf_counter() - started, 1)
    # Kept first, so that a report that cannot be drawn can be redrawn from it (bench.report).
    settings.raw_dir.mkdir(parents=True, exist_ok=True)
    (settings.raw_dir / "benchmark.json").write_text(json.dumps(document, indent=2) + "\n")
    written = write_reports(document, settings.output_dir)
    (settings.raw_dir / "benchmark.json").write_text(json.dumps(document, indent=2) + "\n")
    for path in written:
        _log(f"wrote {path}")
    return 1 if any(service["error"] for service in document["services"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
