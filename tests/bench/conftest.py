"""Fixtures of the benchmark tests: a running framework-ceiling server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.run import REPO_ROOT, build_service_specs, parse_arguments
from bench.servers import ServerProcess


def _ceiling_server(log_dir: Path, workers: int) -> ServerProcess:
    settings = parse_arguments(["--services", "ceiling", "--workers", str(workers)])
    (spec,) = build_service_specs(settings)
    return ServerProcess(spec, cwd=REPO_ROOT, log_path=log_dir / "ceiling.log")


@pytest.fixture()
def make_ceiling(tmp_path: Path) -> Callable[[int], ServerProcess]:
    """Build a (not yet started) ceiling server with the given number of workers."""
    return lambda workers: _ceiling_server(tmp_path, workers)


@pytest.fixture(scope="module")
def running_ceiling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ceiling worker, ready to answer, stopped after the module's tests."""
    with _ceiling_server(tmp_path_factory.mktemp("ceiling"), workers=1) as server:
        server.wait_ready(timeout_s=60)
        yield server
