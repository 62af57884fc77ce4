"""The report: targets computed from the results, and the three files written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import compute_targets, render_markdown, write_reports


def _point(service: str, image: str, upload: str, concurrency: int, rps: float) -> dict[str, Any]:
    images_per_request = 64 if image == "batch64" else 1
    return {
        "service": service,
        "kind": "ours" if service.startswith("ours") else service,
        "image": image,
        "upload": upload,
        "path": "/predict/batch" if images_per_request > 1 else "/predict",
        "images_per_request": images_per_request,
        "concurrency": concurrency,
        "duration_s": 8.0,
        "requests": int(rps * 8),
        "requests_per_s": rps,
        "images_per_s": rps * images_per_request,
        "latency_ms": {"p50": 4.0, "p90": 7.0, "p99": 12.5},
        "errors": 0,
        "non_2xx": 0,
        "status_counts": {"200": int(rps * 8)},
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "server_cpu_percent": 180.0,
        "client_cpu_percent": 15.0,
        "other_cpu_percent": 2.0,
        "peak_rss_mib": 120.0,
    }


def _service(name: str, kind: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "description": name,
        "command": "x",
        "env": {},
        "workers": 2,
        "start_to_ready_s": 1.5,
        "error": None,
        "probes": {"png28/multipart": {"status": 200, "digit": 7, "confidence": 0.99}},
        "memory": {"peak_rss_mib_total": 150.0, "peak_rss_mib_per_worker": 60.0, "processes": []},
    }


def _document() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "generated_at": "2025-01-01T00:00:00+00:00",
        "command": "python -m bench.run",
        "git": {"commit": "0" * 40, "dirty": False},
        "machine": {"cpus": 2, "cpu_model": "test", "load_average_start": [0.1, 0.1, 0.1]},
        "software": {"python": "3.11", "wrk": "wrk 4.1.0"},
        "settings": {
            "concurrency": [1, 16],
            "duration_s": 8,
            "warmup_s": 2,
            "timeout_s": 10,
            "workers": 2,
            "naive_workers": 1,
            "server_cpus": "all",
            "client": "wrk -t1",
        },
        "images": {
            "source": "test",
            "single": [
                {"name": "png28", "description": "d", "bytes": 250, "digit": 7},
            ],
            "batch_files": 64,
        },
        "services": [
            _service("ceiling", "ceiling"),
            _service("ours", "ours"),
            _service("ours-lean", "ours"),
            _service("naive", "naive"),
        ],
        "results": [
            _point("ceiling", "png28", "multipart", 16, 4000.0),
            _point("ours", "png28", "multipart", 1, 2000.0),
            _point("ours", "png28", "multipart", 16, 3600.0),
            _point("ours", "png28", "raw", 16, 4400.0),
            _point("ours", "jpeg900", "multipart", 1, 150.0),
            _point("ours", "batch64", "multipart", 4, 100.0),
            _point("ours-lean", "png28", "multipart", 16, 3780.0),
            _point("naive", "png28", "multipart", 16, 20.0),
        ],
    }


def test_compute_targets_reads_ratios_and_limits_from_the_run() -> None:
    targets = {target.name: target for target in compute_targets(_document())}
    vs_ceiling = targets["ours / ceiling req/s, 28x28 PNG multipart, c=16"]
    assert (vs_ceiling.value, vs_ceiling.met) == (0.9, True)
    vs_naive = targets["ours / naive req/s, 28x28 PNG multipart, c=16"]
    assert (vs_naive.value, vs_naive.met) == (180.0, True)
    raw = targets["ours raw body / ceiling multipart req/s, 28x28 PNG, c=16"]
    assert (raw.value, raw.met) == (1.1, True)
    batch = targets["ours POST /predict/batch, 64 images"]
    assert (batch.value, batch.met) == (6400.0, True)
    assert targets["ours-lean / ours req/s, 28x28 PNG multipart, c=16"].value == 1.05


def test_compute_targets_does_not_judge_ratio_when_only_ceiling_ran_on_one_worker() -> None:
    document = _document()
    ceiling = document["results"][0]
    ceiling["server_cpu_percent"], ceiling["busiest_process_cpu_percent"] = 100.0, 99.0
    for point in document["results"][1:]:
        point["busiest_process_cpu_percent"] = 95.0  # Of 180 %: spread over both workers.
    targets = {target.name: target for target in compute_targets(document)}
    vs_ceiling = targets["ours / ceiling req/s, 28x28 PNG multipart, c=16"]
    assert (vs_ceiling.value, vs_ceiling.met) == (0.9, None)
    assert "not judged" in vs_ceiling.goal
    assert targets["ours / naive req/s, 28x28 PNG multipart, c=16"].met is True


def test_compute_targets_missing_service_is_not_met_nor_failed() -> None:
    document = _document()
    document["results"] = [point for point in document["results"] if point["service"] != "naive"]
    targets = {target.name: target for target in compute_targets(document)}
    vs_naive = targets["ours / naive req/s, 28x28 PNG multipart, c=16"]
    assert (vs_naive.value, vs_naive.met) == (None, None)


def test_compute_targets_reports_telemetry_cost_of_a_variant_without_it() -> None:
    document = _document()
    document["services"][2]["env"] = {"TELEMETRY_ENABLED": "false"}

    targets = {target.name: target for target in compute_targets(document)}

    cost = targets["telemetry cost: 1 - ours / without telemetry req/s, 28x28 PNG multipart, c=16"]
    assert (cost.value, cost.met) == (0.048, True)
    cpu = targets["telemetry cost: ours / without telemetry server CPU per request - 1, same point"]
    assert cpu.value is not None and cpu.value > 0


def test_compute_targets_slow_photo_is_not_met() -> None:
    document = _document()
    document["results"][4]["latency_ms"]["p50"] = 25.0
    targets = {target.name: target for target in compute_targets(document)}
    assert targets["ours p50, 900x900 JPEG multipart, c=1"].met is False


def test_write_reports_writes_json_markdown_and_chart(tmp_path: Path) -> None:
    written = write_reports(_document(), tmp_path)
    assert [path.name for path in written] == ["benchmark.json", "benchmark.md", "benchmark.png"]
    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert saved["targets"][0]["value"] == 0.9
    markdown = (tmp_path / "benchmark.md").read_text()
    assert "| ours | png28 | raw | 16 | 4,400.0 |" in markdown
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")


def test_render_markdown_flags_point_served_by_one_worker() -> None:
    document = _document()
    for point in document["results"]:
        point["busiest_process_cpu_percent"] = 95.0
    document["results"][0]["busiest_process_cpu_percent"] = 99.0
    document["results"][0]["server_cpu_percent"] = 100.0
    markdown = render_markdown(document, compute_targets(document))
    first = document["results"][0]
    caution = next(line for line in markdown.splitlines() if "one worker process" in line)
    assert f"{first['service']} {first['image']} {first['upload']} c={first['concurrency']}" in (
        caution
    )
    assert caution.count(" c=") == 1
