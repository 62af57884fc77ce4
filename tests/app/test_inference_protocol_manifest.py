"""``deploy/kserve/inferenceservice.yaml`` is a valid KServe InferenceService (the CRD's OpenAPI
schema, vendored in ``deploy/kserve/``, with unknown fields refused as ``kubectl apply
--validate=strict`` refuses them) and runs the service as this repository deploys it: the
protocol's health routes as probes on the port the app listens on, the resources of
``deploy/k8s``, and Prometheus pointed at the app's metrics."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Final

import jsonschema
import pytest
import yaml

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
KSERVE: Final = REPO_ROOT / "deploy" / "kserve"
MANIFEST: Final = KSERVE / "inferenceservice.yaml"
SCHEMA: Final = KSERVE / "inferenceservice-v1beta1.schema.json"
METRICS_PATH: Final = "/monitoring/prometheus/metrics"


def strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object that lists its properties
    and does not keep unknown fields: a misspelt field fails, as the API server's strict field
    validation makes it fail."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in result
        and "additionalProperties" not in result
        and not result.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = strict(json.loads(SCHEMA.read_text()))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return document


def predictor_container(manifest: dict[str, Any]) -> dict[str, Any]:
    (container,) = manifest["spec"]["predictor"]["containers"]
    assert isinstance(container, dict)
    return container


def test_schema_names_its_source() -> None:
    comment = json.loads(SCHEMA.read_text())["$comment"]

    assert "github.com/kserve/kserve" in comment
    assert "commit" in comment


def test_manifest_is_a_valid_inference_service(
    validator: jsonschema.Draft7Validator, manifest: dict[str, Any]
) -> None:
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    errors = [
        f"{'.'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("spec", "predictor"), "replicas"),
        (("spec", "predictor", "containers", 0), "readinesProbe"),
        (("spec", "predictor", "containers", 0, "resources"), "limit"),
    ],
)
def test_schema_refuses_a_misspelt_field(
    validator: jsonschema.Draft7Validator,
    manifest: dict[str, Any],
    path: tuple[str | int, ...],
    field: str,
) -> None:
    broken = copy.deepcopy(manifest)
    node: Any = broken
    for part in path:
        node = node[part]
    node[field] = {}

    assert not validator.is_valid(broken)


def test_probes_use_the_protocols_health_routes_on_the_apps_port(
    manifest: dict[str, Any],
) -> None:
    container = predictor_container(manifest)
    environment = {variable["name"]: variable.get("value") for variable in container["env"]}
    (port,) = container["ports"]

    assert container["name"] == "kserve-container"
    assert environment["HOST"] == "0.0.0.0"
    assert int(environment["PORT"]) == port["containerPort"]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/v2/health/ready",
        "port": port["containerPort"],
    }
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/v2/health/live",
        "port": port["containerPort"],
    }


def test_resources_match_the_kubernetes_deployment(manifest: dict[str, Any]) -> None:
    deployment = yaml.safe_load((REPO_ROOT / "deploy" / "k8s" / "deployment.yaml").read_text())
    (api,) = [
        container
        for container in deployment["spec"]["template"]["spec"]["containers"]
        if container["name"] == "api"
    ]

    assert predictor_container(manifest)["resources"] == api["resources"]


def test_prometheus_scrapes_the_apps_metrics(manifest: dict[str, Any]) -> None:
    annotations = manifest["metadata"]["annotations"]
    port = str(predictor_container(manifest)["ports"][0]["containerPort"])

    assert annotations["serving.kserve.io/enable-prometheus-scraping"] == "true"
    assert annotations["prometheus.kserve.io/path"] == METRICS_PATH
    assert annotations["prometheus.kserve.io/port"] == port
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert annotations["prometheus.io/port"] == port
