"""The benchmark command end to end, on the framework ceiling alone (about 15 s)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.run import main
from bench.servers import _running


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_main_quick_ceiling_writes_reports_and_stops_servers(tmp_path: Path) -> None:
    status = main(
        [
            "--quick",
            "--services",
            "ceiling",
            "--concurrency",
            "1,4",
            "--output-dir",
            str(tmp_path / "out"),
            "--raw-dir",
            str(tmp_path / "raw"),
        ]
    )
    assert status == 0
    document = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    (ceiling,) = document["services"]
    assert ceiling["start_to_ready_s"] > 0
    assert ceiling["memory"]["peak_rss_mib_per_worker"] > 10
    measured = {(p["image"], p["upload"], p["concurrency"]) for p in document["results"]}
    assert measured == {
        ("png28", "multipart", 1),
        ("png28", "multipart", 4),
        ("jpeg900", "multipart", 1),
        ("jpeg900", "multipart", 4),
        ("batch64", "multipart", 4),
    }
    assert all(point["errors"] == 0 and point["requests"] > 0 for point in document["results"])
    assert (tmp_path / "out" / "benchmark.png").stat().st_size > 0
    assert not _running
