"""The report: targets computed from the results, and the three files written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import compute_targets, render_markdown, spread_targets, write_reports


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
    vs_ceiling = targets["ours multipart / ceiling req/s, 28x28 PNG, c=16"]
    assert (vs_ceiling.value, vs_ceiling.met) == (0.9, True)
    vs_naive = targets["ours multipart / naive req/s, 28x28 PNG, c=16"]
    assert (vs_naive.value, vs_naive.met) == (180.0, None)  # Reported: the goal is the raw one.
    raw_vs_naive = targets["ours raw body / naive multipart req/s, 28x28 PNG, c=16"]
    assert (raw_vs_naive.value, raw_vs_naive.met) == (220.0, True)
    raw = targets["ours raw body / ceiling multipart req/s, 28x28 PNG, c=16"]
    assert (raw.value, raw.met) == (1.1, True)
    batch = targets["ours POST /predict/batch, 64 images"]
    assert (batch.value, batch.met) == (6400.0, True)
    assert targets["ours-lean multipart / ours req/s, 28x28 PNG, c=16"].value == 1.05


def test_compute_targets_judges_the_foundation_goals() -> None:
    document = _document()
    document["results"][3]["requests_per_s"] = 3500.0  # Raw body: 0.875 of the ceiling.
    document["results"][2]["requests_per_s"] = 2000.0  # Multipart: 0.5 of the ceiling.
    document["results"][2]["latency_ms"]["p99"] = 21.0
    targets = {target.name: target for target in compute_targets(document)}
    assert targets["ours raw body / ceiling multipart req/s, 28x28 PNG, c=16"].met is False
    assert targets["ours multipart / ceiling req/s, 28x28 PNG, c=16"].met is False
    assert targets["ours p99, 28x28 PNG multipart, c=16"].met is False
    assert targets["ours p99, 28x28 PNG raw body, c=16"].met is True


def test_compute_targets_does_not_judge_ratio_when_only_ceiling_ran_on_one_worker() -> None:
    document = _document()
    ceiling = document["results"][0]
    ceiling["server_cpu_percent"], ceiling["busiest_process_cpu_percent"] = 100.0, 99.0
    for point in document["results"][1:]:
        point["busiest_process_cpu_percent"] = 95.0  # Of 180 %: spread over both workers.
    targets = {target.name: target for target in compute_targets(document)}
    vs_ceiling = targets["ours multipart / ceiling req/s, 28x28 PNG, c=16"]
    assert (vs_ceiling.value, vs_ceiling.met) == (0.9, None)
    assert "not judged" in vs_ceiling.goal
    assert targets["ours raw body / naive multipart req/s, 28x28 PNG, c=16"].met is True


def test_compute_targets_missing_service_is_not_met_nor_failed() -> None:
    document = _document()
    document["results"] = [point for point in document["results"] if point["service"] != "naive"]
    targets = {target.name: target for target in compute_targets(document)}
    vs_naive = targets["ours raw body / naive multipart req/s, 28x28 PNG, c=16"]
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


def _with_edge(document: dict[str, Any]) -> dict[str, Any]:
    """The document with ``ours-edge`` measured too: 0.8 of ours' requests/s, nginx using a
    sixth of the server's CPU."""
    document["services"].insert(2, _service("ours-edge", "ours"))
    edge_points: list[dict[str, Any]] = []
    for point in document["results"]:
        if point["service"] == "ours":
            edge = {
                **point,
                "service": "ours-edge",
                "requests_per_s": point["requests_per_s"] * 0.8,
                "requests": int(point["requests"] * 0.8),
                "images_per_s": point["images_per_s"] * 0.8,
                "app_cpu_percent": 150.0,
            }
            edge_points.append(edge)
    document["results"].extend(edge_points)
    return document


def test_compute_targets_gives_the_edge_every_target_of_ours() -> None:
    targets = {target.name: target for target in compute_targets(_with_edge(_document()))}
    raw = targets["ours-edge raw body / ceiling multipart req/s, 28x28 PNG, c=16"]
    assert (raw.value, raw.met) == (0.88, False)
    assert raw.service == "ours-edge"
    assert raw.measure == "raw body / ceiling multipart req/s, 28x28 PNG, c=16"
    assert targets["ours-edge raw body / naive multipart req/s, 28x28 PNG, c=16"].value == 176.0
    assert targets["ours-edge p50, 900x900 JPEG multipart, c=1"].met is True
    assert targets["ours-edge multipart / ours req/s, 28x28 PNG, c=16"].value == 0.8
    assert targets["ours-edge raw body / ours raw body req/s, 28x28 PNG, c=16"].value == 0.8


def test_render_markdown_puts_edge_beside_ours_and_its_nginx_cpu_apart() -> None:
    document = _with_edge(_document())
    markdown = render_markdown(document, compute_targets(document))
    assert "| target | ours | ours-edge | ours-lean | goal |" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| raw body / ceiling"))
    assert "| 1.100 (yes) | 0.880 (**no**) |" in row
    assert row.endswith("| >= 0.9 |")
    # 180 % of 8 s over 28,160 requests (511 µs each), 30 % outside the app: 85 µs.
    edge_raw = next(
        line for line in markdown.splitlines() if line.startswith("| ours-edge | png28 | raw")
    )
    assert "| 511 | 85 |" in edge_raw


def test_edge_point_on_one_app_worker_is_judged_by_the_app_share() -> None:
    document = _with_edge(_document())
    for point in document["results"]:
        point["busiest_process_cpu_percent"] = 70.0  # Spread: 70 of 180 (or 150) %.
    edge = next(p for p in document["results"] if p["service"] == "ours-edge")
    edge["busiest_process_cpu_percent"] = 140.0  # Of the app's 150 %: one worker did it all.
    markdown = render_markdown(document, compute_targets(document))
    caution = next(line for line in markdown.splitlines() if "one worker process" in line)
    assert "ours-edge png28 multipart c=1," in caution
    assert caution.count(" c=") == 1


def _rounds(document: dict[str, Any], count: int) -> dict[str, Any]:
    """The document run ``count`` times, each round 10 % faster for ours; naive in round 1."""
    services: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        for service in document["services"]:
            if service["name"] != "naive" or number == 1:
                services.append({**service, "round": number})
        for point in document["results"]:
            if point["service"] == "naive" and number > 1:
                continue
            speed = 1.0 + 0.1 * (number - 1) if point["service"] == "ours" else 1.0
            results.append(
                {**point, "round": number, "requests_per_s": point["requests_per_s"] * speed}
            )
    return {**document, "services": services, "results": results}


def test_spread_targets_gives_every_round_and_judges_the_median() -> None:
    document = _rounds(_document(), 3)
    spreads = {spread.target.name: spread for spread in spread_targets(document)}
    vs_ceiling = spreads["ours multipart / ceiling req/s, 28x28 PNG, c=16"]
    assert vs_ceiling.values == [0.9, 0.99, 1.08]
    assert (vs_ceiling.minimum, vs_ceiling.target.value, vs_ceiling.maximum) == (0.9, 0.99, 1.08)
    assert vs_ceiling.target.met is True
    # Naive ran in round 1 only: every round divides by that measurement.
    assert spreads["ours raw body / naive multipart req/s, 28x28 PNG, c=16"].values == [
        220.0,
        242.0,
        264.0,
    ]
    assert spreads["ours errors, all points"].target.value == 0


def test_spread_targets_median_leaves_out_rounds_not_judged() -> None:
    document = _rounds(_document(), 3)
    for point in document["results"]:
        point["busiest_process_cpu_percent"] = 95.0
    first_ceiling = document["results"][0]
    first_ceiling["server_cpu_percent"], first_ceiling["busiest_process_cpu_percent"] = 100.0, 99.0
    spread = next(
        s for s in spread_targets(document) if s.target.name.startswith("ours multipart / ceiling")
    )
    assert spread.judged == [None, True, True]
    assert spread.target.value == 1.035  # Median of rounds 2 and 3.
    assert spread.target.goal == ">= 0.55"


def test_write_reports_of_several_rounds_adds_the_spread(tmp_path: Path) -> None:
    write_reports(_rounds(_with_edge(_document()), 3), tmp_path)
    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert saved["targets"][0]["value"] == 0.99  # The median.
    first = saved["target_rounds"][0]
    assert (first["values"], first["median"]) == ([0.9, 0.99, 1.08], 0.99)
    markdown = (tmp_path / "benchmark.md").read_text()
    assert "## Targets: median of 3 rounds" in markdown
    assert "| round 1 | round 2 | round 3 | min | median | max |" in markdown
    spread_rows = [
        line
        for line in markdown.split("## Spread over the rounds")[1]
        .split("## Services")[0]
        .splitlines()
        if line.startswith("| raw body / ceiling multipart req/s")
    ]
    assert [row.split(" | ")[1] for row in spread_rows] == ["ours", "ours-edge"]
    assert "| 3 | ours-edge | png28 | raw | 16 |" in markdown
    assert (tmp_path / "benchmark.png").read_bytes().startswith(b"\x89PNG")
