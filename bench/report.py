"""Turn the benchmark's result document into ``benchmark.json``, ``benchmark.md`` and a chart.

The document (see ``bench.run``) is the single source: the Markdown table and the PNG chart are
drawn from it, so ``python -m bench.report docs/benchmark.json`` redraws them without
measuring again.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
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

COMPARED_SERVICES = ("ours", "ours-edge")
"""Our service measured directly and through the edge: each gets every target, side by side."""

MULTIPART_VS_CEILING = 0.55
RAW_VS_CEILING = 0.90
RAW_VS_NAIVE = 100.0
P99_MS = 20.0
PHOTO_P50_MS = 10.0
BATCH_IMAGES_PER_S = 5000.0
TELEMETRY_COST = 0.05
"""The goals: the issue "Foundation" (ceiling, naive, p99, photo) and issue 5 (batch,
telemetry)."""


@dataclass(frozen=True)
class Target:
    """One target, as measured in this run (or one round of it)."""

    name: str
    value: float | None
    goal: str
    met: bool | None
    """``None`` when the run lacks a service it needs, the target has no threshold, or its
    points may not be compared (see :data:`NOT_COMPARABLE`)."""
    unit: str = ""
    service: str = ""
    """The service the target is about (a column of the Markdown table)."""
    measure: str = ""
    """What is measured, without the service's name (a row of the Markdown table)."""
    limit: tuple[str, float] | None = None
    """``(">=", x)`` or ``("<=", x)``, for a target with a threshold."""


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


def edge_cpu_us_per_request(point: dict[str, Any]) -> float | None:
    """Behind the edge, the server CPU per request spent outside the app's processes (nginx),
    in microseconds; ``None`` for a service measured directly."""
    if "app_cpu_percent" not in point or not point["requests"]:
        return None
    edge_percent = float(point["server_cpu_percent"]) - float(point["app_cpu_percent"])
    return round(
        edge_percent / 100.0 * float(point["duration_s"]) / int(point["requests"]) * 1e6, 1
    )


def _cpu_ratio(ours: dict[str, Any] | None, ceiling: dict[str, Any] | None) -> float | None:
    """How many times the ceiling's CPU per request ours spends (1.0 = as cheap)."""
    ours_cost = server_cpu_us_per_request(ours) if ours else None
    ceiling_cost = server_cpu_us_per_request(ceiling) if ceiling else None
    if ours_cost is None or not ceiling_cost:
        return None
    return round(ours_cost / ceiling_cost, 3)


def _on_one_worker(point: dict[str, Any] | None, workers: int) -> bool:
    """Whether a point of a service with ``workers`` workers ran, in effect, on one of them."""
    if point is None or workers <= 1:
        return False
    # Behind the edge, nginx's share is left out: only the app's workers are compared.
    app_percent = float(point.get("app_cpu_percent", point["server_cpu_percent"]))
    return (
        app_percent >= 50
        and point.get("busiest_process_cpu_percent", 0.0) > UNEVEN_WORKER_SHARE * app_percent
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


def _meets(value: float | None, limit: tuple[str, float] | None) -> bool | None:
    if limit is None:
        return None
    operator, threshold = limit
    return _at_least(value, threshold) if operator == ">=" else _at_most(value, threshold)


def _target(
    service: str,
    measure: str,
    value: float | None,
    limit: tuple[str, float] | None = None,
    *,
    unit: str = "",
    comparable: bool = True,
    name: str | None = None,
) -> Target:
    """A target of ``service``; judged against ``limit`` when its points are ``comparable``."""
    goal = "reported" if limit is None else f"{limit[0]} {_plain(limit[1])}"
    if limit is not None and not comparable:
        goal += f"; {NOT_COMPARABLE}"
    return Target(
        name=name or f"{service} {measure}",
        value=value,
        goal=goal,
        met=_judged(_meets(value, limit), comparable),
        unit=unit,
        service=service,
        measure=measure,
        limit=limit,
    )


def _plain(number: float) -> str:
    return f"{number:g}" if number < 1000 else f"{number:.0f}"


def _telemetry_cost_targets(
    service: str,
    ours: dict[str, Any] | None,
    without: dict[str, Any] | None,
    *,
    comparable: bool = True,
) -> list[Target]:
    """What telemetry costs: the throughput lost against the same service without it (goal
    at most 5 %), and the extra server CPU per request (reported; less noisy than req/s)."""
    ratio = _ratio(ours, without)
    throughput_cost = None if ratio is None else round(1.0 - ratio, 3)
    cpu_ratio = _cpu_ratio(ours, without)
    cpu_cost = None if cpu_ratio is None else round(cpu_ratio - 1.0, 3)
    return [
        _target(
            service,
            "telemetry cost: 1 - ours / this req/s, 28x28 PNG multipart, c=16",
            throughput_cost,
            ("<=", TELEMETRY_COST),
            comparable=comparable,
            name="telemetry cost: 1 - ours / without telemetry req/s, 28x28 PNG multipart, c=16",
        ),
        _target(
            service,
            "telemetry cost: ours / this server CPU per request - 1, same point",
            cpu_cost,
            name="telemetry cost: ours / without telemetry server CPU per request - 1, same point",
        ),
    ]


def _service_targets(document: dict[str, Any], service: str) -> list[Target]:
    """The issue's targets for our service measured directly or through the edge."""
    results: list[dict[str, Any]] = document["results"]
    multipart = find_point(results, service, "png28")
    raw = find_point(results, service, "png28", "raw")
    ceiling = find_point(results, "ceiling", "png28")
    naive = find_point(results, "naive", "png28")
    photo = find_point(results, service, "jpeg900", concurrency=1)
    batch = next(
        (p for p in results if p["service"] == service and p["images_per_request"] > 1), None
    )
    points = [point for point in results if point["service"] == service]

    def latency(point: dict[str, Any] | None, percentile: str) -> float | None:
        return point["latency_ms"].get(percentile) if point else None

    return [
        _target(
            service,
            "multipart / ceiling req/s, 28x28 PNG, c=16",
            _ratio(multipart, ceiling),
            (">=", MULTIPART_VS_CEILING),
            comparable=_comparable(document, multipart, ceiling),
        ),
        _target(
            service,
            "raw body / ceiling multipart req/s, 28x28 PNG, c=16",
            _ratio(raw, ceiling),
            (">=", RAW_VS_CEILING),
            comparable=_comparable(document, raw, ceiling),
        ),
        _target(
            service,
            "raw body / naive multipart req/s, 28x28 PNG, c=16",
            _ratio(raw, naive),
            (">=", RAW_VS_NAIVE),
        ),
        _target(service, "multipart / naive req/s, 28x28 PNG, c=16", _ratio(multipart, naive)),
        _target(
            service,
            "multipart / ceiling server CPU per request, 28x28 PNG, c=16",
            _cpu_ratio(multipart, ceiling),
        ),
        _target(
            service,
            "raw body / ceiling multipart server CPU per request, 28x28 PNG, c=16",
            _cpu_ratio(raw, ceiling),
        ),
        _target(
            service,
            "p99, 28x28 PNG multipart, c=16",
            latency(multipart, "p99"),
            ("<=", P99_MS),
            unit="ms",
        ),
        _target(
            service, "p99, 28x28 PNG raw body, c=16", latency(raw, "p99"), ("<=", P99_MS), unit="ms"
        ),
        _target(
            service,
            "p50, 900x900 JPEG multipart, c=1",
            latency(photo, "p50"),
            ("<=", PHOTO_P50_MS),
            unit="ms",
        ),
        _target(
            service,
            "errors, all points",
            sum(point["errors"] for point in points) if points else None,
            ("<=", 0),
        ),
        _target(
            service,
            f"POST /predict/batch, {batch['images_per_request'] if batch else 64} images",
            batch["images_per_s"] if batch else None,
            (">=", BATCH_IMAGES_PER_S),
            unit="images/s",
        ),
    ]


def compute_targets(document: dict[str, Any], round_number: int | None = None) -> list[Target]:
    """The targets, from the results of ``ours``, ``ours-edge``, ``ceiling`` and ``naive``
    (of one round, with ``round_number``; else of the only or first round)."""
    document = round_view(document, round_number or 1)
    results: list[dict[str, Any]] = document["results"]
    names = [service["name"] for service in document["services"]]
    targets = [
        target
        for service in COMPARED_SERVICES
        if service in names or service == "ours"
        for target in _service_targets(document, service)
    ]
    ours = find_point(results, "ours", "png28")
    ours_raw = find_point(results, "ours", "png28", "raw")
    for service in document["services"]:
        name = service["name"]
        if service["kind"] == "ours":
            targets.append(
                _target(name, "start to ready (/readyz 200)", service["start_to_ready_s"], unit="s")
            )
            memory = service["memory"] or {}
            targets.append(
                _target(
                    name, "peak RSS per worker", memory.get("peak_rss_mib_per_worker"), unit="MiB"
                )
            )
        if service["kind"] == "ours" and _telemetry_off(service):
            without = find_point(results, name, "png28")
            targets.extend(
                _telemetry_cost_targets(
                    name, ours, without, comparable=_comparable(document, ours, without)
                )
            )
        if service["kind"] == "ours" and name != "ours":
            targets.append(
                _target(
                    name,
                    "multipart / ours req/s, 28x28 PNG, c=16",
                    _ratio(find_point(results, name, "png28"), ours),
                )
            )
            raw = find_point(results, name, "png28", "raw")
            if raw is not None:
                targets.append(
                    _target(
                        name,
                        "raw body / ours raw body req/s, 28x28 PNG, c=16",
                        _ratio(raw, ours_raw),
                    )
                )
    return targets


def rounds_of(document: dict[str, Any]) -> list[int]:
    """The round numbers of a run (``[1]`` for a run without ``--repeat``)."""
    return sorted({int(service.get("round", 1)) for service in document["services"]}) or [1]


def round_view(document: dict[str, Any], round_number: int) -> dict[str, Any]:
    """The document as if only ``round_number`` had run: its services and points, plus those
    of services measured in an earlier round only (the naive baseline)."""
    rounds = rounds_of(document)
    if rounds == [1]:
        return document
    available: dict[str, set[int]] = {}
    for service in document["services"]:
        available.setdefault(service["name"], set()).add(int(service.get("round", 1)))
    chosen: dict[str, int] = {}
    for name, service_rounds in available.items():
        candidates = [number for number in service_rounds if number <= round_number]
        if candidates:
            chosen[name] = max(candidates)
    return {
        **document,
        "services": [
            service
            for service in document["services"]
            if chosen.get(service["name"]) == int(service.get("round", 1))
        ],
        "results": [
            point
            for point in document["results"]
            if chosen.get(point["service"]) == int(point.get("round", 1))
        ],
    }


@dataclass(frozen=True)
class Spread:
    """One target over the rounds of a run."""

    target: Target
    """The median over the rounds whose value may be judged, judged against the goal."""
    values: list[float | None]
    """Each round's value (``None`` where it was not measured)."""
    judged: list[bool | None]
    """Each round's verdict."""
    minimum: float | None
    maximum: float | None


def _tidy(median: float, values: Sequence[float]) -> float:
    """The median rounded to 3 decimals; a whole number when every value is one (counts)."""
    if all(isinstance(value, int) for value in values) and float(median).is_integer():
        return int(median)
    return round(median, 3)


def spread_targets(document: dict[str, Any]) -> list[Spread]:
    """Every target in every round, with its minimum, median and maximum over the rounds. The
    median leaves out the rounds where a threshold target could not be judged."""
    per_round = [compute_targets(document, number) for number in rounds_of(document)]
    names = list(dict.fromkeys(target.name for targets in per_round for target in targets))
    spreads = []
    for name in names:
        found = [next((t for t in targets if t.name == name), None) for targets in per_round]
        first = next(target for target in found if target is not None)
        measured: list[float] = [
            target.value for target in found if target is not None and target.value is not None
        ]
        usable = [
            target.value
            for target in found
            if target is not None
            and target.value is not None
            and not (target.limit is not None and target.met is None)
        ]
        summary = first
        if usable:
            median = _tidy(statistics.median(usable), usable)
            summary = dataclasses.replace(
                first, value=median, met=_meets(median, first.limit), goal=first.goal.split(";")[0]
            )
        elif measured:
            summary = dataclasses.replace(first, value=_tidy(statistics.median(measured), measured))
        spreads.append(
            Spread(
                target=summary,
                values=[target.value if target else None for target in found],
                judged=[target.met if target else None for target in found],
                minimum=min(usable or measured) if measured else None,
                maximum=max(usable or measured) if measured else None,
            )
        )
    return spreads


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


def _label(document: dict[str, Any], point: dict[str, Any]) -> str:
    prefix = f"round {point.get('round', 1)}: " if len(rounds_of(document)) > 1 else ""
    return f"{prefix}{point['service']} {point['image']} {point['upload']} c={point['concurrency']}"


def _value(target: Target) -> str:
    if target.value is None:
        return "n/a"
    text = _number(target.value, 3 if target.unit == "" else 1)
    return f"{text} {target.unit}" if target.unit else text


def _goal(target: Target) -> str:
    if target.limit is None:
        return "reported"
    return f"{target.limit[0]} {_plain(target.limit[1])}" + (
        f" {target.unit}" if target.unit else ""
    )


def _verdict(target: Target) -> str:
    if target.limit is None or target.value is None:
        return ""
    return " (not judged)" if target.met is None else f" ({_met(target.met)})"


def _targets_table(targets: Sequence[Target]) -> list[str]:
    """One row per measure, one column per service: ours and ours-edge side by side."""
    services = list(dict.fromkeys(target.service or target.name for target in targets))
    rows: dict[str, dict[str, Target]] = {}
    for target in targets:
        rows.setdefault(target.measure or target.name, {})[target.service or target.name] = target
    lines = [
        "| target | " + " | ".join(services) + " | goal |",
        "| --- | " + " | ".join("---:" for _ in services) + " | --- |",
    ]
    for measure, by_service in rows.items():
        cells = [
            _value(by_service[service]) + _verdict(by_service[service])
            if service in by_service
            else ""
            for service in services
        ]
        first = next(iter(by_service.values()))
        lines.append(f"| {measure} | " + " | ".join(cells) + f" | {_goal(first)} |")
    return lines


def _spread_table(spreads: Sequence[Spread], rounds: Sequence[int]) -> list[str]:
    """Each round's value of every ratio and threshold target, edge rows beside ours'."""
    chosen = [
        spread
        for spread in spreads
        if spread.target.limit is not None or " / " in spread.target.measure
    ]
    order = list(dict.fromkeys(spread.target.measure or spread.target.name for spread in chosen))
    chosen.sort(key=lambda spread: order.index(spread.target.measure or spread.target.name))
    lines = [
        "| target | service | "
        + " | ".join(f"round {number}" for number in rounds)
        + " | min | median | max | goal | median met |",
        "| --- | --- | "
        + " | ".join("---:" for _ in rounds)
        + " | ---: | ---: | ---: | --- | --- |",
    ]
    for spread in chosen:
        target = spread.target

        def number(value: float | None, target: Target = target) -> str:
            return _number(value, 3 if target.unit == "" else 1)

        values = [
            number(value)
            + (" (not judged)" if value is not None and target.limit and met is None else "")
            for value, met in zip(spread.values, spread.judged, strict=True)
        ]
        lines.append(
            f"| {target.measure or target.name} | {target.service} | "
            + " | ".join(values)
            + f" | {number(spread.minimum)} | {number(target.value)} | {number(spread.maximum)} "
            f"| {_goal(target)} | {_met(target.met)} |"
        )
    return lines


def render_markdown(document: dict[str, Any], targets: Sequence[Target]) -> str:
    """The human-readable report: how it was run, the targets, the services and every point."""
    settings = document["settings"]
    machine = document["machine"]
    software = document["software"]
    rounds = rounds_of(document)
    repeated = len(rounds) > 1
    names = {service["name"] for service in document["services"]}
    workers_line = f"- Workers: ours{', ours-edge (the app)' if 'ours-edge' in names else ''} "
    workers_line += f"and ceiling {settings['workers']}, naive {settings['naive_workers']}"
    if "ours-edge" in names:
        workers_line += "; ours-edge's nginx: `worker_processes 1` (`deploy/nginx/nginx.conf`)"
    lines = [
        "# Benchmark: our service, directly and through the edge, vs a naive baseline and the "
        "framework ceiling",
        "",
        f"Generated by `{document['command']}` at {document['generated_at']} "
        f"(commit `{document['git']['commit'][:12]}`"
        f"{', uncommitted changes' if document['git']['dirty'] else ''}); "
        f"the run took {_number(document.get('bench_seconds'))} s. "
        + (
            f"Numbers come from that one run of {len(rounds)} rounds (the whole sequence of "
            "services, one after the other, repeated); rerun the command to reproduce them."
            if repeated
            else "Numbers come from that one run; rerun the command to reproduce them."
        ),
        "",
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}); load average "
        f"{machine['load_average_start']} at start, {machine.get('load_average_end')} at end.",
        f"- Software: Python {software.get('python')}, FastAPI {software.get('fastapi')}, "
        f"Starlette {software.get('starlette')}, uvicorn {software.get('uvicorn')}, "
        + (f"{software['nginx']}, " if software.get("nginx") else "")
        + f"{software.get('wrk')}.",
        f"- Load: {settings['client']}; servers on CPUs {settings['server_cpus']}; "
        f"{settings['duration_s']} s per point after {settings['warmup_s']} s of warm-up per "
        f"scenario; request timeout {settings['timeout_s']} s; keep-alive connections.",
        workers_line + ".",
    ]
    if repeated:
        once = sorted(
            name
            for name in names
            if {int(s.get("round", 1)) for s in document["services"] if s["name"] == name}
            != set(rounds)
        )
        lines.append(
            f"- Rounds: {len(rounds)}"
            + (
                f"; {', '.join(once)} measured in fewer rounds (the ratios of a round without "
                "it divide by its measurement of an earlier round)"
                if once
                else ""
            )
            + "."
        )
    lines.append(
        f"- Images ({document['images']['source']}): "
        + "; ".join(
            f"`{image['name']}` = {image['description']} ({image['bytes']:,} bytes, "
            f"digit {image['digit']})"
            for image in document["images"]["single"]
        )
        + f"; batch = {document['images']['batch_files']} different test digits as PNGs."
    )
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
            + ", ".join(_label(document, point) for point in uneven)
            + f", one worker process did more than {UNEVEN_WORKER_SHARE:.0%} of the service's "
            "CPU work (the kernel gave it nearly all of wrk's connections), so that service "
            "ran on one core there; compare its *server CPU µs/req*, which does not depend on "
            "how the connections were spread."
        )
    lines += [
        "",
        "## Targets" + (f": median of {len(rounds)} rounds" if repeated else ""),
        "",
        "*ours* is the app measured directly (`mnist-serve`, stock uvicorn); *ours-edge* the "
        "same app through nginx, as deployed; the ceiling and the naive baseline are measured "
        "directly. Ratios divide requests/s (or server CPU per request) of the same point."
        + (
            " Each value is the median over the rounds where it could be judged; every round's "
            "value is in the next table."
            if repeated
            else ""
        ),
        "",
        *_targets_table(targets),
    ]
    if repeated:
        lines += [
            "",
            "## Spread over the rounds",
            "",
            *_spread_table(spread_targets(document), rounds),
        ]
    round_header = "round | " if repeated else ""
    round_rule = "---: | " if repeated else ""
    lines += [
        "",
        "## Services",
        "",
        f"| {round_header}service | what | workers | start to ready s | peak RSS total MiB "
        "| peak RSS per worker MiB | answer png28 | answer jpeg900 |",
        f"| {round_rule}--- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for service in document["services"]:
        memory = service["memory"] or {}
        answers = [
            _answer(service["probes"].get(f"{image}/multipart")) for image in ("png28", "jpeg900")
        ]
        description = service["description"]
        if service["error"]:
            stopped = str(service["error"]).startswith("stopped answering")
            description += " (**stopped answering**)" if stopped else " (**failed to start**)"
        round_cell = f"{service.get('round', 1)} | " if repeated else ""
        lines.append(
            f"| {round_cell}{service['name']} | {description} | {service['workers']} "
            f"| {_number(service['start_to_ready_s'], 2)} "
            f"| {_number(memory.get('peak_rss_mib_total'))} "
            f"| {_number(memory.get('peak_rss_mib_per_worker'))} | {answers[0]} | {answers[1]} |"
        )
    lines += [
        "",
        "## Results",
        "",
        f"| {round_header}service | image | upload | c | req/s | images/s | p50 ms | p99 ms "
        "| errors | peak RSS MiB | server CPU % | server CPU µs/req | edge CPU µs/req "
        "| wrk CPU % | other CPU % |",
        f"| {round_rule}--- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: |",
    ]
    for point in document["results"]:
        latency = point["latency_ms"]
        round_cell = f"{point.get('round', 1)} | " if repeated else ""
        edge_cost = edge_cpu_us_per_request(point)
        lines.append(
            f"| {round_cell}{point['service']} | {point['image']} | {point['upload']} "
            f"| {point['concurrency']} | {_number(point['requests_per_s'])} "
            f"| {_number(point['images_per_s'])} | {_number(latency.get('p50'), 2)} "
            f"| {_number(latency.get('p99'), 2)} | {point['errors']} "
            f"| {_number(point['peak_rss_mib'])} | {_number(point['server_cpu_percent'], 0)} "
            f"| {_number(server_cpu_us_per_request(point), 0)} "
            f"| {'' if edge_cost is None else _number(edge_cost, 0)} "
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
        "(supervisor, workers, helpers, and nginx behind the edge) and *per worker* the "
        "largest app worker's VmHWM.",
        "- **CPU %** is CPU time per wall-clock second (100 = one core): the server's processes, "
        "wrk itself, and everything else on the machine (*other*: other jobs skew the point). "
        "**Server CPU µs/req** is the server's CPU time divided by the requests it answered: "
        "its cost per request, which other jobs on the machine barely change. For *ours-edge* "
        "it counts nginx and the app together; **edge CPU µs/req** is the part outside the "
        "app's processes (nginx, its access-log pipe and the start script).",
        "- *ceiling* reads the multipart upload in FastAPI and answers a constant JSON: no "
        "decoding, no model. *naive* is `model.predict` per request in `async def` after "
        "`convert('L').resize((28, 28))`. *ours-edge* is `scripts/serve-edge`: nginx with "
        "`deploy/nginx/nginx.conf` (access log on) on the TCP port, the app on a Unix socket "
        "behind it. Batch images/s = req/s x images per request.",
        "",
        "## Running it",
        "",
        "Needs `wrk` (`apt-get install wrk`), nginx for *ours-edge* (`apt-get install "
        "nginx-light`) and the project's virtual environment with the `train` extra "
        "(TensorFlow, for the naive baseline). From the repository root:",
        "",
        "```sh",
        ".venv/bin/python -m bench.run            # full run, rewrites docs/benchmark.*",
        ".venv/bin/python -m bench.run --quick    # smoke run, writes bench/results/raw/quick/",
        ".venv/bin/python -m bench.run --repeat 3 # three rounds (naive in the first): spread",
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


def _median_points(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per service, image, upload and concurrency: with several rounds, the median
    requests/s and p99 over them."""
    grouped: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    for point in results:
        key = (point["service"], point["image"], point["upload"], point["concurrency"])
        grouped.setdefault(key, []).append(point)
    merged = []
    for points in grouped.values():
        p99s = [point["latency_ms"]["p99"] for point in points if "p99" in point["latency_ms"]]
        merged.append(
            {
                **points[0],
                "requests_per_s": statistics.median(p["requests_per_s"] for p in points),
                "latency_ms": {"p99": statistics.median(p99s)} if p99s else {},
            }
        )
    return merged


def draw_chart(document: dict[str, Any], path: Path) -> None:
    """Throughput and p99 latency by concurrency, one line per service, image and upload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for point in _median_points(document["results"]):
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
    rounds = rounds_of(document)
    if len(rounds) > 1:
        spreads = spread_targets(document)
        targets = [spread.target for spread in spreads]
        document["target_rounds"] = [
            {
                "name": spread.target.name,
                "service": spread.target.service,
                "measure": spread.target.measure,
                "rounds": rounds,
                "values": spread.values,
                "met": spread.judged,
                "min": spread.minimum,
                "median": spread.target.value,
                "max": spread.maximum,
                "goal": spread.target.goal,
                "median_met": spread.target.met,
            }
            for spread in spreads
        ]
    else:
        targets = compute_targets(document)
    document["targets"] = [dataclasses.asdict(target) for target in targets]
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
