"""The edge's one nginx configuration (deploy/nginx/nginx.conf) and the three deployments that use
it: the Kubernetes ConfigMap holds it unchanged, docker compose mounts it, every deployment's two
include files complete it into a configuration nginx accepts, and its limits agree with the
app's settings."""

from __future__ import annotations

import importlib.util
import inspect
import re
import shutil
import subprocess
import types
from pathlib import Path
from typing import Any, Final

import pytest
import uvicorn
import yaml

from app.core.config import Settings
from app.core.request_context import acceptable_request_id

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
NGINX_CONF: Final = REPO_ROOT / "deploy" / "nginx" / "nginx.conf"
CONFIGMAP: Final = REPO_ROOT / "deploy" / "k8s" / "edge-configmap.yaml"
EDGE_CONFIG_DIR: Final = "/etc/nginx/edge"


def _nginx_conf() -> str:
    return NGINX_CONF.read_text(encoding="utf-8")


def _nginx_directives() -> str:
    """nginx.conf without its comments."""
    return re.sub(r"#[^\n]*", "", _nginx_conf())


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _edge_configmap_script() -> types.ModuleType:
    """Import scripts/edge_configmap.py, which is a script and not part of a package."""
    spec = importlib.util.spec_from_file_location(
        "edge_configmap", REPO_ROOT / "scripts" / "edge_configmap.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _k8s_pod() -> dict[str, Any]:
    pod: dict[str, Any] = _load_yaml(REPO_ROOT / "deploy" / "k8s" / "deployment.yaml")
    return pod["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_k8s_configmap_holds_the_repository_nginx_conf() -> None:
    configmap = _load_yaml(CONFIGMAP)

    assert configmap["data"]["nginx.conf"] == _nginx_conf(), (
        "deploy/k8s/edge-configmap.yaml differs from deploy/nginx/nginx.conf: "
        "run .venv/bin/python scripts/edge_configmap.py"
    )
    assert set(configmap["data"]) == {"nginx.conf", "upstream.conf", "server.conf"}
    assert _edge_configmap_script().main(["--check"]) == 0


def test_k8s_edge_runs_the_configmap() -> None:
    pod = _k8s_pod()
    (edge,) = [container for container in pod["containers"] if container["name"] == "edge"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount for mount in edge["volumeMounts"]}
    configmap_name = _load_yaml(CONFIGMAP)["metadata"]["name"]

    assert edge["command"][edge["command"].index("-c") + 1] == f"{EDGE_CONFIG_DIR}/nginx.conf"
    config_volume = volumes[mounts[EDGE_CONFIG_DIR]["name"]]
    assert config_volume["configMap"]["name"] == configmap_name
    assert "/tmp" in mounts  # The pid file and buffered bodies, on a read-only root.
    assert edge["securityContext"]["readOnlyRootFilesystem"] is True


def test_compose_edge_mounts_the_repository_nginx_conf() -> None:
    services = _load_yaml(REPO_ROOT / "docker-compose.yml")["services"]
    edge = services["edge"]
    mounts = {}
    for volume in edge["volumes"]:
        source, target, mode = volume.split(":")
        assert mode == "ro"
        mounts[target] = (REPO_ROOT / source).resolve()

    assert mounts[f"{EDGE_CONFIG_DIR}/nginx.conf"] == NGINX_CONF
    assert set(mounts) == {
        f"{EDGE_CONFIG_DIR}/{name}" for name in ("nginx.conf", "upstream.conf", "server.conf")
    }
    assert all(path.is_file() for path in mounts.values())
    assert edge["command"][edge["command"].index("-c") + 1] == f"{EDGE_CONFIG_DIR}/nginx.conf"
    assert "ports" not in services["api"]  # Only the edge is published ...
    assert all(port.startswith("127.0.0.1:") for port in edge["ports"])  # ... on loopback.
    assert edge["depends_on"]["api"]["condition"] == "service_healthy"


def _deployment_includes() -> dict[str, dict[str, str]]:
    """Each deployment's upstream.conf and server.conf."""
    compose_dir = REPO_ROOT / "deploy" / "nginx" / "compose"
    configmap = _load_yaml(CONFIGMAP)["data"]
    return {
        "compose": {
            name: (compose_dir / name).read_text(encoding="utf-8")
            for name in ("upstream.conf", "server.conf")
        },
        "kubernetes": {name: configmap[name] for name in ("upstream.conf", "server.conf")},
    }


@pytest.mark.parametrize("deployment", ["compose", "kubernetes"])
def test_deployment_includes_complete_the_config_nginx_accepts(
    deployment: str, tmp_path: Path
) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not nginx:
        pytest.skip("nginx is not installed (apt install nginx-light)")
    includes = _deployment_includes()[deployment]
    # Compose names the app by its service name, which only compose's DNS resolves.
    upstream = includes["upstream.conf"].replace("server api:", "server 127.0.0.1:")
    shutil.copy(NGINX_CONF, tmp_path / "nginx.conf")
    (tmp_path / "upstream.conf").write_text(upstream, encoding="utf-8")
    (tmp_path / "server.conf").write_text(includes["server.conf"], encoding="utf-8")

    checked = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert checked.returncode == 0, checked.stderr
    assert re.fullmatch(r"(#.*\n)*listen 8080;\n", includes["server.conf"])
    assert re.fullmatch(r"(#.*\n)*server [a-z0-9.]+:8000;\n", includes["upstream.conf"])


def test_body_limit_is_the_app_s_default() -> None:
    match = re.search(r"^\s*client_max_body_size (\d+)m;", _nginx_conf(), re.MULTILINE)

    assert match is not None
    assert int(match.group(1)) * 1024 * 1024 == Settings.model_fields["MAX_UPLOAD_BYTES"].default


@pytest.mark.parametrize(
    "candidate",
    ["req-42", "a" * 128, "a" * 129, "", "two words", '"quoted"', "é", "x:y/z+w=v@u.t_s-r", "a;b"],
)
def test_request_id_pattern_is_the_app_s(candidate: str) -> None:
    # nginx passes the client's X-Request-ID on exactly when the app would keep it.
    match = re.search(r'"~\^(\[[^"]+)\$" \$http_x_request_id;', _nginx_conf())
    assert match is not None

    kept_by_nginx = re.fullmatch(match.group(1), candidate) is not None

    assert kept_by_nginx == (acceptable_request_id(candidate.encode()) is not None)


def test_upstream_keepalive_ends_before_uvicorn_closes_idle_connections() -> None:
    # Otherwise nginx may send a request on a connection uvicorn is closing: a 502. mnist-serve
    # leaves uvicorn's keep-alive timeout at its default.
    assert "timeout_keep_alive" not in (REPO_ROOT / "app" / "cli.py").read_text(encoding="utf-8")
    upstream = re.search(r"upstream mnist_app \{(.*?)\}", _nginx_directives(), re.DOTALL)
    assert upstream is not None
    timeout = re.search(r"keepalive_timeout (\d+)s;", upstream.group(1))
    assert timeout is not None
    uvicorn_default = inspect.signature(uvicorn.Config).parameters["timeout_keep_alive"].default

    assert int(timeout.group(1)) < uvicorn_default


def test_retries_never_resend_a_non_idempotent_request() -> None:
    directives = re.findall(r"^\s*proxy_next_upstream (.*);", _nginx_directives(), re.MULTILINE)

    assert directives == ["error timeout"]
    assert "non_idempotent" not in _nginx_directives()
