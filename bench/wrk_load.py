"""Drive one load point with ``wrk`` and read its result.

``wrk`` runs with one thread (``-t1``), optionally pinned with ``taskset`` to CPUs the server
does not use, and one of the Lua scripts in ``bench/wrk/``. Those scripts count responses by
HTTP status and print a ``BENCH_RESULT <json>`` line when the run ends.
"""

from __future__ import annotations

import json
import resource
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPTS = Path(__file__).resolve().parent / "wrk"
"""Folder of the Lua scripts."""

MULTIPART_SCRIPT = WRK_SCRIPTS / "multipart.lua"
RAW_BODY_SCRIPT = WRK_SCRIPTS / "raw_body.lua"

_RESULT_PREFIX = "BENCH_RESULT "


class WrkError(RuntimeError):
    """wrk failed or printed no result."""


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured."""

    concurrency: int
    duration_s: float
    requests: int
    requests_per_s: float
    latency_ms: dict[str, float]
    """``min``, ``mean``, ``p50``, ``p90``, ``p99`` and ``max`` over completed requests."""
    status_counts: dict[str, int]
    """Responses by HTTP status code."""
    socket_errors: dict[str, int]
    """wrk's ``connect``, ``read``, ``write`` and ``timeout`` error counts."""
    client_cpu_s: float
    """CPU time wrk itself used (user plus system)."""
    server_cpu_s: float
    """CPU time the server's processes used during the run."""

    @property
    def non_2xx(self) -> int:
        """Responses whose status is not 2xx."""
        return sum(
            count for status, count in self.status_counts.items() if not status.startswith("2")
        )

    @property
    def errors(self) -> int:
        """Non-2xx responses plus socket errors and timeouts."""
        return self.non_2xx + sum(self.socket_errors.values())


def parse_wrk_output(stdout: str) -> dict[str, object]:
    """Find and decode the ``BENCH_RESULT`` line the Lua scripts print."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(_RESULT_PREFIX):
            decoded: dict[str, object] = json.loads(line[len(_RESULT_PREFIX) :])
            return decoded
    raise WrkError(
        "wrk printed no BENCH_RESULT line; was the Lua script loaded?\n" + stdout[-2000:]
    )


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str,
    *,
    script: Path,
    script_args: Sequence[str],
    concurrency: int,
    duration_s: int,
    timeout_s: int,
    client_cpus: str | None,
    server_cpu_seconds: Callable[[], float],
    log_path: Path | None = None,
) -> LoadResult:
    """Run wrk against ``url`` for ``duration_s`` seconds with ``concurrency`` connections.

    ``server_cpu_seconds`` reads the server's CPU time; it is called before and after the run.
    """
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the benchmark only loads 127.0.0.1, not {url}")
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{duration_s}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
        url,
        "--",
        *script_args,
    ]
    if client_cpus is not None:
        command = ["taskset", "--cpu-list", client_cpus, *command]
    server_cpu_before = server_cpu_seconds()
    client_cpu_before = _children_cpu_seconds()
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration_s + timeout_s + 30,
        check=False,
    )
    client_cpu_s = _children_cpu_seconds() - client_cpu_before
    server_cpu_s = server_cpu_seconds() - server_cpu_before
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(" ".join(command) + "\n\n" + completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise WrkError(f"wrk exited with {completed.returncode}: {completed.stderr[-2000:]}")
    raw = parse_wrk_output(completed.stdout)
    return load_result_from_wrk(
        raw,
        concurrency=concurrency,
        client_cpu_s=client_cpu_s,
        server_cpu_s=server_cpu_s,
    )


def load_result_from_wrk(
    raw: dict[str, object], *, concurrency: int, client_cpu_s: float, server_cpu_s: float
) -> LoadResult:
    """Turn the decoded ``BENCH_RESULT`` document into a :class:`LoadResult`."""
    requests = int(str(raw["requests"]))
    duration_s = int(str(raw["duration_us"])) / 1e6
    latency_us = raw["latency_us"]
    errors = raw["errors"]
    statuses = raw["status_counts"]
    if not (
        isinstance(latency_us, dict) and isinstance(errors, dict) and isinstance(statuses, dict)
    ):
        raise WrkError(f"unexpected BENCH_RESULT document: {raw}")
    # Without a completed request wrk's latency statistics hold placeholders, not times.
    latency_ms = (
        {name: round(float(value) / 1000.0, 3) for name, value in latency_us.items()}
        if requests
        else {}
    )
    return LoadResult(
        concurrency=concurrency,
        duration_s=duration_s,
        requests=requests,
        requests_per_s=requests / duration_s if duration_s > 0 else 0.0,
        latency_ms=latency_ms,
        status_counts={str(status): int(count) for status, count in statuses.items()},
        socket_errors={name: int(errors[name]) for name in ("connect", "read", "write", "timeout")},
        client_cpu_s=round(client_cpu_s, 3),
        server_cpu_s=round(server_cpu_s, 3),
    )
