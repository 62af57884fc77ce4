"""The benchmark's command line: variants of our service and the quick mode."""

from __future__ import annotations

import pytest

from bench.run import REPO_ROOT, SERVICE_KINDS, build_service_specs, parse_arguments, parse_variant
from bench.servers import SERVE_EDGE


def test_parse_variant_reads_name_and_environment() -> None:
    assert parse_variant("no-telemetry:PROMETHEUS_ENABLED=false,LOG_LEVEL=warning") == (
        "no-telemetry",
        {"PROMETHEUS_ENABLED": "false", "LOG_LEVEL": "warning"},
    )


@pytest.mark.parametrize("text", ["no-telemetry", "no-telemetry:", ":A=1", "x:A", "x:=1"])
def test_parse_variant_malformed_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_variant(text)


def test_parse_variant_builtin_name_is_refused() -> None:
    with pytest.raises(ValueError, match="taken"):
        parse_variant("naive:A=1")


def test_build_service_specs_variant_runs_our_command_with_extra_environment() -> None:
    settings = parse_arguments(["--services", "ours", "--variant", "lean:PROMETHEUS_ENABLED=0"])
    ours, lean = build_service_specs(settings)
    assert lean.command == ours.command
    assert lean.env == {**ours.env, "PROMETHEUS_ENABLED": "0"}
    assert ours.env["HOST"] == "127.0.0.1"


def test_parse_arguments_quick_writes_outside_docs() -> None:
    settings = parse_arguments(["--quick"])
    assert settings.duration_s == 1
    assert settings.concurrency == (1, 16)
    assert not settings.output_dir.is_relative_to(REPO_ROOT / "docs")


def test_parse_arguments_unknown_service_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse_arguments(["--services", "ours,nginx"])


def test_build_service_specs_runs_the_edge_right_after_ours() -> None:
    settings = parse_arguments(["--workers", "2", "--variant", "lean:PROMETHEUS_ENABLED=0"])
    specs = build_service_specs(settings)
    assert [spec.name for spec in specs] == ["ceiling", "ours", "ours-edge", "lean", "naive"]
    edge = specs[2]
    assert edge.command == (str(SERVE_EDGE),)
    assert (edge.kind, edge.workers, edge.raw_body, edge.batch) == ("ours", 2, True, True)
    assert edge.env["WEB_CONCURRENCY"] == "2"
    assert edge.env["MAX_BATCH_FILES"] == specs[1].env["MAX_BATCH_FILES"]
    assert edge.env["PORT"] == "{port}"


def test_build_service_specs_edge_alone() -> None:
    (edge,) = build_service_specs(parse_arguments(["--services", "ours-edge"]))
    assert edge.name == "ours-edge"


def test_parse_arguments_repeat() -> None:
    assert parse_arguments([]).repeat == 1
    assert parse_arguments(["--repeat", "3"]).repeat == 3
    assert "ours-edge" in SERVICE_KINDS
    with pytest.raises(SystemExit):
        parse_arguments(["--repeat", "0"])
