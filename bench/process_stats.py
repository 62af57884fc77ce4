"""Memory and CPU figures of a server's processes, read from ``/proc`` (Linux only).

A server started by the benchmark runs in its own session, so "the server" is every process
whose session id is the pid of the process the benchmark started: the uvicorn supervisor, its
workers and helpers such as multiprocessing's resource tracker.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessStat:
    """The fields of ``/proc/<pid>/stat`` the benchmark uses."""

    pid: int
    parent_pid: int
    session_id: int
    cpu_seconds: float
    """User plus system CPU time the process has used so far."""


@dataclass(frozen=True)
class ProcessMemory:
    """Resident memory of one process, from ``/proc/<pid>/status``."""

    pid: int
    parent_pid: int
    role: str
    """``worker`` (runs the application), ``supervisor`` or ``helper``."""
    command: str
    peak_rss_kib: int
    """``VmHWM``: the highest resident set size the process has had."""
    rss_kib: int
    """``VmRSS``: its resident set size now."""


def read_process_stat(pid: int) -> ProcessStat | None:
    """Read one process's stat line, or ``None`` if the process has exited."""
    try:
        line = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may itself contain spaces and parentheses.
    fields = line[line.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None  # A zombie has exited already; only its exit status is left to collect.
    return ProcessStat(
        pid=pid,
        parent_pid=int(fields[1]),
        session_id=int(fields[3]),
        cpu_seconds=(int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_PER_SECOND,
    )


def session_processes(session_id: int) -> list[ProcessStat]:
    """Every live (not zombie) process in the given session, in pid order."""
    processes = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = read_process_stat(int(entry.name))
            if stat is not None and stat.session_id == session_id:
                processes.append(stat)
    return sorted(processes, key=lambda stat: stat.pid)


def session_cpu_seconds(session_id: int) -> float:
    """CPU seconds used so far by the live processes of a session."""
    return sum(stat.cpu_seconds for stat in session_processes(session_id))


def cpu_seconds_by_process(session_id: int) -> dict[int, float]:
    """CPU seconds used so far by each live process of a session, by pid."""
    return {stat.pid: stat.cpu_seconds for stat in session_processes(session_id)}


def busiest_process_cpu_seconds(before: dict[int, float], after: dict[int, float]) -> float:
    """The most CPU seconds any one process used between two :func:`cpu_seconds_by_process`
    snapshots (a process started in between counts from zero)."""
    return max((seconds - before.get(pid, 0.0) for pid, seconds in after.items()), default=0.0)


def _command_line(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _status_kib(pid: int, field: str) -> int:
    try:
        status = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _role(stat: ProcessStat, command: str, processes: list[ProcessStat], root_pid: int) -> str:
    """Tell the processes that run the application from the supervisor and helpers."""
    if "resource_tracker" in command or "semaphore_tracker" in command:
        return "helper"
    if "multiprocessing.forkserver" in command:
        # The image decoders of a worker (app/imaging/sandbox.py) and the fork server that
        # starts them.
        return "decoder"
    has_workers = any(
        other.parent_pid == root_pid and "multiprocessing.spawn" in _command_line(other.pid)
        for other in processes
    )
    if stat.pid == root_pid:
        return "supervisor" if has_workers else "worker"
    if stat.parent_pid == root_pid and "multiprocessing.spawn" in command:
        return "worker"
    return "helper"


def session_memory(root_pid: int) -> list[ProcessMemory]:
    """Memory of every live process in the session led by ``root_pid``."""
    processes = session_processes(root_pid)
    memories = []
    for stat in processes:
        command = _command_line(stat.pid)
        memories.append(
            ProcessMemory(
                pid=stat.pid,
                parent_pid=stat.parent_pid,
                role=_role(stat, command, processes, root_pid),
                command=command[:160],
                peak_rss_kib=_status_kib(stat.pid, "VmHWM"),
                rss_kib=_status_kib(stat.pid, "VmRSS"),
            )
        )
    return memories


def app_memory(session_id: int, program: str = "mnist-serve") -> list[ProcessMemory]:
    """Memory of the processes that run the app in a session, whether the app leads it (as
    ``mnist-serve`` started alone) or not (``scripts/serve-edge``: a shell, nginx and
    ``mnist-serve``): the outermost process whose command line names ``program``, and its
    descendants, with the roles :func:`session_memory` gives them when the app leads."""
    processes = session_processes(session_id)
    commands = {stat.pid: _command_line(stat.pid) for stat in processes}
    named = {stat.pid for stat in processes if program in commands[stat.pid]}
    roots = [stat for stat in processes if stat.pid in named and stat.parent_pid not in named]
    if not roots:
        return []
    root = roots[0]
    tree = [root]
    members = {root.pid}
    for stat in processes:  # In pid order, so parents come before their children.
        if stat.parent_pid in members and stat.pid not in members:
            tree.append(stat)
            members.add(stat.pid)
    return [
        ProcessMemory(
            pid=stat.pid,
            parent_pid=stat.parent_pid,
            role=_role(stat, commands[stat.pid], tree, root.pid),
            command=commands[stat.pid][:160],
            peak_rss_kib=_status_kib(stat.pid, "VmHWM"),
            rss_kib=_status_kib(stat.pid, "VmRSS"),
        )
        for stat in tree
    ]


def app_peak_growth_kib(session_id: int, action: Callable[[], object]) -> int:
    """How far the summed peak RSS of the app's worker and its decoder processes (fork server
    and decoders) rose above their summed RSS before ``action``, in KiB: what ``action`` cost
    the server at its worst, wherever the decoding happened. Peaks are reset first
    (``/proc/<pid>/clear_refs``)."""
    pids = [memory.pid for memory in app_memory(session_id) if memory.role in ("worker", "decoder")]
    for pid in pids:
        (_PROC / str(pid) / "clear_refs").write_text("5")
    before = sum(memory.rss_kib for memory in app_memory(session_id) if memory.pid in pids)
    action()
    after = {memory.pid: memory.peak_rss_kib for memory in app_memory(session_id)}
    return max(0, sum(after.get(pid, 0) for pid in pids) - before)


class MemoryWatcher:
    """Samples a server's memory in a background thread while a measurement runs.

    It keeps, per process, the last ``VmHWM`` seen (so processes that exit are not lost) and the
    highest sum of ``VmRSS`` over the session since the last :meth:`reset_window`. Use it as a
    context manager around the measurements.
    """

    def __init__(self, root_pid: int, *, interval_s: float = 0.25) -> None:
        self._root_pid = root_pid
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._by_pid: dict[int, ProcessMemory] = {}
        self._window_peak_rss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watcher", daemon=True)

    def __enter__(self) -> MemoryWatcher:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def sample(self) -> None:
        """Read the session's memory now."""
        memories = session_memory(self._root_pid)
        total_rss_kib = sum(memory.rss_kib for memory in memories)
        with self._lock:
            for memory in memories:
                self._by_pid[memory.pid] = memory
            self._window_peak_rss_kib = max(self._window_peak_rss_kib, total_rss_kib)

    def reset_window(self) -> None:
        """Start a new window for :meth:`window_peak_rss_kib`."""
        with self._lock:
            self._window_peak_rss_kib = 0
        self.sample()

    def window_peak_rss_kib(self) -> int:
        """Highest sum of ``VmRSS`` over the session seen since the last window reset."""
        self.sample()
        with self._lock:
            return self._window_peak_rss_kib

    def processes(self) -> list[ProcessMemory]:
        """The last reading of every process seen, including processes that have exited."""
        with self._lock:
            return sorted(self._by_pid.values(), key=lambda memory: memory.pid)


def machine_busy_cpu_seconds() -> float:
    """CPU seconds all CPUs of the machine have spent busy (not idle or waiting) since boot."""
    fields = [int(value) for value in (_PROC / "stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS_PER_SECOND
