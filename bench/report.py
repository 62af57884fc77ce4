"""Turn the benchmark's result document into ``benchmark.json``, ``benchmark.md`` and a chart.

The document (see ``bench.run``) is the single source: the Markdown table and the PNG chart are
drawn from it, so ``python -m bench.report docs/benchmark.json`` redraws them without
measuring again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGET_CONCURRENCY = 16
"""The concurrency the issue's throughput and latency targets are stated at."""

BUSY_MACHINE_PERCENT = 20
"""CPU use by other programs (percent of one core) above which a point is flagged."""
UNEVEN_WORKER_SHARE = 0.85
"""A point whose busiest server process did more than this share of the server's CPU ran, in
effect, on one worker: the kernel handed that worker (nearly) all of wrk's connections."""
NOT_COMPARABLE = "not judged: only one of the two ran on a single worker (see the caution)"


@dataclass(frozen=True)
class Target:
    """One target of issue 5, as measured in this run."""

    name: str
    value: float | None
    goal: str
    met: bool | None
    """``None`` when the run lacks a service it needs, or the target has no threshold."""
    unit: str = ""


def find_point(
    results: Sequence[dict[str, Any]],
    service: str,
    image: str,
    upload: str = "multipart",
    concurrency: int | None = TARGET_CONCURRENCY,
) -> dict[str, Any] | None:
    """The result of one service, image, upload and concurrency, if it was measured."""
    for point in results:
        if (
            point["service"] == service
            and point["image"] == image
            and point["upload"] == upload
            and (concurrency is None or point["concurrency"] == concurrency)
        ):
            return point
    return None


def _ratio(numerator: dict[str, Any] | None, denominator: dict[str, Any] | None) -> float | None:
    if numerator is None or denominator is None or not denominator["requests_per_s"]:
        return None
    return round(float(numerator["requests_per_s"]) / float(denominator["requests_per_s"]), 3)


def server_cpu_us_per_request(point: dict[str, Any]) -> float | None:
    """Server CPU time per request in microseconds: its cost, whatever else the machine ran."""
    if not point["requests"]:
        return None
    cpu_s = float(point["server_cpu_percent"]) / 100.0 * float(point["duration_s"])
    return round(cpu_s / int(point["requests"]) * 1e6, 1)


def _cpu_ratio(ours: dict[str, Any] | None, ceiling: dict[str, Any] | None) -> float | None:
    """How many times the ceiling's CPU per request ours spends (1.0 = as cheap)."""
    ours_cost = server_cpu_us_per_request(ours) if ours else None
    ceiling_cost = server_cpu_us_per_request(ceiling) if ceiling else None
    if ours_cost is None or not ceiling_cost:
        return None
    return round(ours_cost / ceiling_cost, 3)


def _on_one_worker(point: dict[str, Any] | None, workers: int) -> bool:
    """Whether a point of a service with ``workers`` workers ran, in effect, on one of them."""
    return (
        point is not None
        and workers > 1
        and point["server_cpu_percent"] >= 50
        and point.get("busiest_process_cpu_percent", 0.0)
        > UNEVEN_WORKER_SHARE * point["server_cpu_percent"]
    )


def _comparable(
    document: dict[str, Any], first: dict[str, Any] | None, second: dict[str, Any] | None
) -> bool:
    """Whether two points may be compared by requests/s: not when one service had all its
    connections on one worker and the other spread them over several (the kernel decides
    which worker accepts a connection, and may give one worker all of wrk's)."""
    workers = {service["name"]: service.get("workers", 1) for service in document["services"]}
    spread = [
        _on_one_worker(point, workers.get(point["service"], 1))
        for point in (first, second)
        if point is not None
    ]
    return len(set(spread)) <= 1


def _judged(met: bool | None, comparable: bool) -> bool | None:
    return met if comparable else None


def _at_least(value: float | None, goal: float) -> bool | None:
    return None if value is None else value >= goal


def _at_most(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


def _telemetry_off(service: dict[str, Any]) -> bool:
    """Whether a variant of our service runs with ``TELEMETRY_ENABLED=false``."""
    value = str((service.get("env") or {}).get("TELEMETRY_ENABLED", "true"))
    return value.strip().lower() in ("false", "0", "no", "off", "f", "n")


def _telemetry_cost_targets(
    ours: dict[str, Any] | None, without: dict[str, Any] | None, *, comparable: bool = True
) -> list[Target]:
    """What telemetry costs: the throughput lost against the same service without it (goal
    at most 5 %), and the extra server CPU per request (reported; less noisy than req/s)."""
    ratio = _ratio(ours, without)
    throughput_cost = None if ratio is None else round(1.0 - ratio, 3)
    cpu_ratio = _cpu_ratio(ours, without)
    cpu_cost = None if cpu_ratio is None else round(cpu_ratio - 1.0, 3)
    return [
        Target(
            "telemetry cost: 1 - ours / without telemetry req/s, 28x28 PNG multipart, c=16",
            throughput_cost,
            "<= 0.05" if comparable else f"<= 0.05; {NOT_COMPARABLE}",
            _judged(_at_most(throughput_cost, 0.05), comparable),
        ),
        Target(
            "telemetry cost: ours / without telemetry server CPU per request - 1, same point",
            cpu_cost,
            "reported",
            None,
        ),
    ]


def compute_targets(document: dict[str, Any]) -> list[Target]:
    """The issue's targets, from the results of ``ours``, ``ceiling`` and ``naive``."""
    results: list[dict[str, Any]] = document["results"]
    ours = find_point(results, "ours", "png28")
    ceiling = find_point(results, "ceiling", "png28")
    naive = find_point(results, "naive", "png28")
    ours_raw = find_point(results, "ours", "png28", "raw")
    batch = next(
        (p for p in results if p["service"] == "ours" and p["images_per_request"] > 1), None
    )
    photo = find_point(results, "ours", "jpeg900", concurrency=1)
    ours_points = [point for point in results if point["service"] == "ours"]
    ours_p99 = ours["latency_ms"].get("p99") if ours else None
    ours_errors = sum(point["errors"] for point in ours_points) if ours_points else None
    vs_ceiling = _ratio(ours, ceiling)
    vs_naive = _ratio(ours, naive)
    raw_vs_ceiling = _ratio(ours_raw, ceiling)
    batch_rate = batch["images_per_s"] if batch else None
    photo_p50 = photo["latency_ms"].get("p50") if photo else None
    multipart_comparable = _comparable(document, ours, ceiling)
    raw_comparable = _comparable(document, ours_raw, ceiling)
    targets = [
        Target(
            "ours / ceiling req/s, 28x28 PNG multipart, c=16",
            vs_ceiling,
            ">= 0.85" if multipart_comparable else f">= 0.85; {NOT_COMPARABLE}",
            _judged(_at_least(vs_ceiling, 0.85), multipart_comparable),
        ),
        Target(
            "ours / ceiling server CPU per request, 28x28 PNG multipart, c=16",
            _cpu_ratio(ours, ceiling),
            "reported (<= 1 / 0.85 = 1.18 when CPU-bound)",
            None,
        ),
        Target(
            "ours / naive req/s, 28x28 PNG multipart, c=16",
            vs_naive,
            ">= 50",
            _at_least(vs_naive, 50.0),
        ),
        Target(
            "ours p99, 28x28 PNG multipart, c=16", ours_p99, "<= 20", _at_most(ours_p99, 20.0), "ms"
        ),
        Target("ours errors, all points", ours_errors, "0", _at_most(ours_errors, 0)),
        Target(
            "ours raw body / ceiling multipart req/s, 28x28 PNG, c=16",
            raw_vs_ceiling,
            ">= 1.0" if raw_comparable else f">= 1.0; {NOT_COMPARABLE}",
            _judged(_at_least(raw_vs_ceiling, 1.0), raw_comparable),
        ),
        Target(
            f"ours POST /predict/batch, {batch['images_per_request'] if batch else 64} images",
            batch_rate,
            ">= 5000",
            _at_least(batch_rate, 5000.0),
            "images/s",
        ),
        Target(
            "ours p50, 900x900 JPEG multipart, c=1",
            photo_p50,
            "<= 10",
            _at_most(photo_p50, 10.0),
            "ms",
        ),
    ]
    for service in document["services"]:
        if service["kind"] == "ours":
            targets.append(
                Target(
                    f"{service['name']} start to ready (/readyz 200)",
                    service["start_to_ready_s"],
                    "reported",
                    None,
                    "s",
                )
            )
            memory = service["memory"] or {}
            targets.append(
                Target(
                    f"{service['name']} peak RSS per worker",
                    memory.get("peak_rss_mib_per_worker"),
                    "reported",
                    None,
                    "MiB",
                )
            )
        if service["kind"] == "ours" and _telemetry_off(service):
            without = find_point(results, service["name"], "png28")
            targets.extend(
                _telemetry_cost_targets(
                    ours, without, comparable=_comparable(document, ours, without)
                )
            )
        if service["kind"] == "ours" and service["name"] != "ours":
            ratio = _ratio(find_point(results, service["name"], "png28"), ours)
            targets.append(
                Target(
                    f"{service['name']} / ours req/s, 28x28 PNG multipart, c=16",
                    ratio,
                    "reported",
                    None,
                )
            )
    return targets


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[met]


def _uneven_points(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Points of multi-worker services where one process did nearly all the server's work
    (points recorded before this was measured are never listed)."""
    workers = {service["name"]: service.get("workers", 1) for service in document["services"]}
    return [
        point
        for point in document["results"]
        if _on_one_worker(point, workers.get(point["service"], 1))
    ]


def render_markdown(document: dict[str, Any], targets: Sequence[Target]) -> str:
    """The human-readable report: how it was run, the targets, the services and every point."""
    settings = document["settings"]
    machine = document["machine"]
    software = document["software"]
    lines = [
        "# Benchmark: our service vs a naive baseline and the framework ceiling",
        "",
        f"Generated by `{document['command']}` at {document['generated_at']} "
        f"(commit `{document['git']['commit'][:12]}`"
        f"{', uncommitted changes' if document['git']['dirty'] else ''}); "
        f"the run took {_number(document.get('bench_seconds'))} s. "
        "Numbers come from that one run; rerun the command to reproduce them.",
        "",
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}); load average "
        f"{machine['load_average_start']} at start, {machine.get('load_average_end')} at end.",
        f"- Software: Python {software.get('python')}, FastAPI {software.get('fastapi')}, "
        f"Starlette {software.get('starlette')}, uvicorn {software.get('uvicorn')}, "
        f"{software.get('wrk')}.",
        f"- Load: {settings['client']}; servers on CPUs {settings['server_cpus']}; "
        f"{settings['duration_s']} s per point after {settings['warmup_s']} s of warm-up per "
        f"scenario; request timeout {settings['timeout_s']} s; keep-alive connections.",
        f"- Workers: ours and ceiling {settings['workers']}, naive {settings['naive_workers']}.",
        f"- Images ({document['images']['source']}): "
        + "; ".join(
            f"`{image['name']}` = {image['description']} ({image['bytes']:,} bytes, "
            f"digit {image['digit']})"
            for image in document["images"]["single"]
        )
        + f"; batch = {document['images']['batch_files']} different test digits as PNGs.",
    ]
    busy_points = [p for p in document["results"] if p["other_cpu_percent"] > BUSY_MACHINE_PERCENT]
    if busy_points:
        worst = max(point["other_cpu_percent"] for point in busy_points)
        lines.append(
            f"- **Caution:** other programs used more than {BUSY_MACHINE_PERCENT} % CPU during "
            f"{len(busy_points)} of {len(document['results'])} points (up to {worst:.0f} %, "
            "column *other CPU %*); those figures understate what the services can do."
        )
    uneven = _uneven_points(document)
    if uneven:
        lines.append(
            "- **Caution:** at "
            + ", ".join(
                f"{point['service']} {point['image']} {point['upload']} c={point['concurrency']}"
                for point in uneven
            )
            + f", one worker process did more than {UNEVEN_WORKER_SHARE:.0%} of the service's "
            "CPU work (the kernel gave it nearly all of wrk's connections), so that service "
            "ran on one core there; compare its *server CPU µs/req*, which does not depend on "
            "how the connections were spread."
        )
    lines += [
        "",
        "## Targets (issue 5)",
        "",
        "| target | measured | goal | met |",
        "| --- | ---: | --- | --- |",
    ]
    for target in targets:
        unit = f" {target.unit}" if target.unit and target.value is not None else ""
        lines.append(
            f"| {target.name} | {_number(target.value, 3 if target.unit == '' else 1)}{unit} "
            f"| {target.goal}{' ' + target.unit if target.unit and target.met is not None else ''} "
            f"| {_met(target.met)} |"
        )
    lines += [
        "",
        "## Services",
        "",
        "| service | what | workers | start to ready s | peak RSS total MiB "
        "| peak RSS per worker MiB | answer png28 | answer jpeg900 |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for service in document["services"]:
        memory = service["memory"] or {}
        answers = [
            _answer(service["probes"].get(f"{image}/multipart")) for image in ("png28", "jpeg900")
        ]
        description = service["description"] + (
            " (**failed to start**)" if service["error"] else ""
        )
        lines.append(
            f"| {service['name']} | {description} | {service['workers']} "
            f"| {_number(service['start_to_ready_s'], 2)} "
            f"| {_number(memory.get('peak_rss_mib_total'))} "
            f"| {_number(memory.get('peak_rss_mib_per_worker'))} | {answers[0]} | {answers[1]} |"
        )
    lines += [
        "",
        "## Results",
        "",
        "| service | image | upload | c | req/s | images/s | p50 ms | p99 ms | errors "
        "| peak RSS MiB | server CPU % | server CPU µs/req | wrk CPU % | other CPU % |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    for point in document["results"]:
        latency = point["latency_ms"]
        lines.append(
            f"| {point['service']} | {point['image']} | {point['upload']} "
            f"| {point['concurrency']} | {_number(point['requests_per_s'])} "
            f"| {_number(point['images_per_s'])} | {_number(latency.get('p50'), 2)} "
            f"| {_number(latency.get('p99'), 2)} | {point['errors']} "
            f"| {_number(point['peak_rss_mib'])} | {_number(point['server_cpu_percent'], 0)} "
            f"| {_number(server_cpu_us_per_request(point), 0)} "
            f"| {_number(point['client_cpu_percent'], 0)} "
            f"| {_number(point['other_cpu_percent'], 0)} |"
        )
    lines += [
        "",
        "![Throughput and p99 latency by concurrency](benchmark.png)",
        "",
        "## How to read this",
        "",
        "- **req/s** counts every completed response; **errors** adds non-2xx responses and "
        "wrk's socket errors and timeouts (a Lua `response` hook counts responses by status). "
        "Before each scenario one request is sent from Python and must answer 2xx, or the "
        "scenario is skipped; its answer is the *answer* column above (expected digit: "
        f"{document['images']['single'][0]['digit']}).",
        "- **p50/p99** are wrk's latency percentiles over completed requests, from the client.",
        "- **peak RSS** per point is the highest sum of VmRSS over all the server's processes "
        "while the point ran; per service, *total* is the sum of every process's VmHWM "
        "(supervisor, workers, helpers) and *per worker* the largest worker's VmHWM.",
        "- **CPU %** is CPU time per wall-clock second (100 = one core): the server's processes, "
        "wrk itself, and everything else on the machine (*other*: other jobs skew the point). "
        "**Server CPU µs/req** is the server's CPU time divided by the requests it answered: "
        "its cost per request, which other jobs on the machine barely change.",
        "- *ceiling* reads the multipart upload in FastAPI and answers a constant JSON: no "
        "decoding, no model. *naive* is `model.predict` per request in `async def` after "
        "`convert('L').resize((28, 28))`. Batch images/s = req/s x images per request.",
        "",
        "## Running it",
        "",
        "Needs `wrk` (`apt-get install wrk`) and the project's virtual environment with the "
        "`train` extra (TensorFlow, for the naive baseline). From the repository root:",
        "",
        "```sh",
        ".venv/bin/python -m bench.run            # full run, rewrites docs/benchmark.*",
        ".venv/bin/python -m bench.run --quick    # smoke run, writes bench/results/raw/quick/",
        ".venv/bin/python -m bench.run --services ours,ceiling \\",
        "    --variant notelemetry:TELEMETRY_ENABLED=false   # also ours without telemetry",
        ".venv/bin/python -m bench.report docs/benchmark.json   # redraw table and chart",
        "```",
        "",
        "Every server is started on 127.0.0.1 and stopped at the end, also on Ctrl-C; server "
        "logs and wrk's output of each point are kept in `bench/results/raw/`.",
        "",
    ]
    return "\n".join(lines)


def _answer(probe: dict[str, Any] | None) -> str:
    if probe is None:
        return "n/a"
    if probe.get("digit") is not None:
        return f"{probe['digit']} ({probe['confidence']:.2f})"
    return f"HTTP {probe['status']}"


def draw_chart(document: dict[str, Any], path: Path) -> None:
    """Throughput and p99 latency by concurrency, one line per service, image and upload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for point in document["results"]:
        if point["images_per_request"] == 1:
            series.setdefault((point["service"], point["image"], point["upload"]), []).append(point)
    services = list(dict.fromkeys(key[0] for key in series))
    colours = plt.get_cmap("tab10")
    figure, (throughput_axes, latency_axes) = plt.subplots(1, 2, figsize=(13, 6))
    for (service, image, upload), points in series.items():
        points = sorted(points, key=lambda point: point["concurrency"])
        concurrency = [point["concurrency"] for point in points]
        style = {
            "color": colours(services.index(service) % 10),
            "linestyle": "-" if image == "png28" else "--",
            "marker": "o" if upload == "multipart" else "s",
            "label": f"{service} · {image} · {upload}",
        }
        throughput_axes.plot(concurrency, [point["requests_per_s"] for point in points], **style)
        latency_axes.plot(
            concurrency, [point["latency_ms"].get("p99", float("nan")) for point in points], **style
        )
    for axes, title, unit in (
        (throughput_axes, "Throughput", "requests/s"),
        (latency_axes, "p99 latency", "ms"),
    ):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xticks(document["settings"]["concurrency"])
        axes.set_xticklabels([str(level) for level in document["settings"]["concurrency"]])
        axes.set_xlabel("concurrent connections")
        axes.set_ylabel(unit)
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
    handles, labels = throughput_axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    figure.suptitle(
        f"POST /predict on {document['machine']['cpus']} CPUs, {document['settings']['client']}",
        fontsize=10,
    )
    rows_of_legend = -(-len(labels) // 4)
    figure.tight_layout(rect=(0.0, 0.035 * rows_of_legend + 0.02, 1.0, 1.0))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_reports(document: dict[str, Any], output_dir: Path) -> list[Path]:
    """Write ``benchmark.json`` (with the targets), ``benchmark.md`` and ``benchmark.png``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    targets = compute_targets(document)
    document["targets"] = [target.__dict__ for target in targets]
    json_path = output_dir / "benchmark.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    markdown_path = output_dir / "benchmark.md"
    markdown_path.write_text(render_markdown(document, targets))
    chart_path = output_dir / "benchmark.png"
    draw_chart(document, chart_path)
    return [json_path, markdown_path, chart_path]


def main(argv: Sequence[str] | None = None) -> int:
    """Redraw the Markdown and the chart next to an existing ``benchmark.json``."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        print("usage: python -m bench.report path/to/benchmark.json", file=sys.stderr)
        return 2
    json_path = Path(arguments[0])
    document = json.loads(json_path.read_text())
    for path in write_reports(document, json_path.parent):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
