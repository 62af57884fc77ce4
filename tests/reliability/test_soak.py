"""The soak script in its short mode, as CI runs it: ``python -m bench.soak --requests 1500``
against the real ``mnist-serve``, a mix of good and hostile requests at concurrency 64. Every
request is answered with the status its kind expects, none with a 5xx, no connection fails, and
the server's memory does not grow (the full 10,000-request run is documented in docs/soak.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

from bench.soak import build_request_mix

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
SHORT_MODE_REQUESTS: Final = 1500
MAX_RSS_GROWTH: Final = 0.10


@pytest.mark.slow
def test_short_soak_answers_every_request_as_expected_without_memory_growth(
    tmp_path: Path,
) -> None:
    figures_path = tmp_path / "soak.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--requests",
            str(SHORT_MODE_REQUESTS),
            "--json",
            str(figures_path),
            "--log",
            str(tmp_path / "server.log"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = completed.stdout + completed.stderr
    figures = json.loads(figures_path.read_text())

    assert completed.returncode == 0, report
    assert figures["requests"] == SHORT_MODE_REQUESTS
    assert figures["server_errors"] == 0, report
    assert figures["connection_errors"] == {}, report
    assert figures["unexpected_statuses"] == 0, report
    assert sum(figures["statuses"].values()) == SHORT_MODE_REQUESTS
    assert figures["rss_kib"]["growth"] < MAX_RSS_GROWTH, report
    # Every kind in the mix was sent and got only the answers it should.
    kinds = {kind.name: kind for kind in build_request_mix()}
    assert set(figures["by_kind"]) == set(kinds)
    for name, tally in figures["by_kind"].items():
        assert tally["sent"] > 0, name
        assert {int(status) for status in tally["statuses"]} <= kinds[name].expected, name
    assert {"200", "400", "404", "405", "413", "415", "422"} <= set(figures["statuses"])
    assert "Traceback" not in (tmp_path / "server.log").read_text()
