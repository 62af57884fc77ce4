"""Packaging tests: the Docker image's own start command serves the committed model, and the
README, lockfiles, compose file and Kubernetes manifests agree with the service they describe.

No container engine runs in these tests, so the image's CMD, ENV and HEALTHCHECK are read from
the Dockerfile and run outside a container, with the image's paths mapped onto this checkout.
The image and the compose file are built and run for real by scripts/container-check (a step of
CI of its own); the tests here keep that check in step with the files it runs.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import importlib.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import types
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0


@dataclass
class DockerStage:
    """One build stage of the Dockerfile: its name and the instructions that matter here."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = ""
    exposed_ports: list[int] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    copy_sources: list[str] = field(default_factory=list)
    copy_arguments: list[str] = field(default_factory=list)
    run_commands: list[str] = field(default_factory=list)


def _dockerfile_instructions(text: str) -> Iterator[tuple[str, str]]:
    """Yield (INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical_line = ""
    for raw_line in text.splitlines():
        stripped = raw_line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            logical_line += stripped[:-1] + " "
            continue
        logical_line += stripped
        instruction, _, arguments = logical_line.partition(" ")
        yield instruction.upper(), arguments.strip()
        logical_line = ""


def _parse_env_arguments(arguments: str) -> dict[str, str]:
    """Parse ``ENV A=1 B="two words"`` (the key=value form) into a dict."""
    pairs = {}
    for token in shlex.split(arguments):
        key, separator, value = token.partition("=")
        if not separator:
            raise ValueError(f"ENV uses the legacy 'ENV key value' form: {arguments!r}")
        pairs[key] = value
    return pairs


def parse_dockerfile(path: Path) -> list[DockerStage]:
    """Read the build stages of a Dockerfile, in order."""
    stages: list[DockerStage] = []
    for instruction, arguments in _dockerfile_instructions(path.read_text(encoding="utf-8")):
        if instruction == "FROM":
            words = arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(DockerStage(name=name))
            continue
        if not stages:
            continue
        stage = stages[-1]
        if instruction == "ENV":
            stage.env.update(_parse_env_arguments(arguments))
        elif instruction == "WORKDIR":
            stage.workdir = arguments
        elif instruction == "USER":
            stage.user = arguments
        elif instruction == "EXPOSE":
            stage.exposed_ports.extend(int(port.split("/")[0]) for port in arguments.split())
        elif instruction == "CMD":
            stage.cmd = json.loads(arguments)
        elif instruction == "HEALTHCHECK":
            exec_form = arguments[arguments.index("CMD") + len("CMD") :].strip()
            stage.healthcheck = json.loads(exec_form)
        elif instruction == "RUN":
            stage.run_commands.append(arguments)
        if instruction == "COPY":
            stage.copy_arguments.append(arguments)
        if instruction == "COPY" and "--from=" not in arguments:
            words = [word for word in arguments.split() if not word.startswith("--")]
            stage.copy_sources.extend(words[:-1])
    return stages


@pytest.fixture(scope="module")
def docker_stages() -> list[DockerStage]:
    """The Dockerfile's stages; the last one is the image `docker build .` produces."""
    return parse_dockerfile(REPO_ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def runtime_stage(docker_stages: list[DockerStage]) -> DockerStage:
    """The serving image: the Dockerfile's last (default) stage."""
    return docker_stages[-1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _outside_docker(command: list[str]) -> list[str]:
    """Map an exec-form command of the image onto this environment's executables.

    In the image, PATH starts with the virtual environment's bin folder; here the same role is
    played by the folder of the Python running the tests.
    """
    executable = command[0]
    if executable in {"python", "python3"}:
        return [sys.executable, *command[1:]]
    candidate = Path(sys.executable).parent / executable
    if not candidate.exists():
        raise FileNotFoundError(
            f"{executable!r} (the image's CMD) is not installed next to {sys.executable}; "
            "install the project with `pip install --no-deps -e .` (./scripts/test does)"
        )
    return [str(candidate), *command[1:]]


def _image_environment(stage: DockerStage, port: int) -> dict[str, str]:
    """The image's ENV with its paths under WORKDIR mapped onto this checkout, on 127.0.0.1."""
    environment = dict(os.environ)
    for key, value in stage.env.items():
        if key == "PATH":
            continue
        if value == stage.workdir or value.startswith(stage.workdir.rstrip("/") + "/"):
            value = str(REPO_ROOT / Path(value).relative_to(stage.workdir))
        environment[key] = value
    environment["HOST"] = "127.0.0.1"
    environment["PORT"] = str(port)
    return environment


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str) -> int:
    """Poll /readyz until it answers 200, the process exits or the time runs out."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    status = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status, _ = _get(f"{base_url}/readyz")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status = 0
        if status == 200:
            return status
        time.sleep(0.2)
    return status


def test_image_command_serves_committed_model_and_stops_on_sigterm(
    runtime_stage: DockerStage, tmp_path: Path
) -> None:
    """The image's CMD, run with its ENV, gets ready on the committed model and stops cleanly."""
    model_sha256 = hashlib.sha256((REPO_ROOT / "models" / "mnist_dense.keras").read_bytes())
    port = _free_port()
    environment = _image_environment(runtime_stage, port)
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            _outside_docker(runtime_stage.cmd),
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        ready_status = _wait_until_ready(process, base_url)
        server_log = log_path.read_text(errors="replace")[-3000:]
        assert ready_status == 200, f"/readyz never answered 200; server output:\n{server_log}"

        model_status, model_body = _get(f"{base_url}/model")
        assert model_status == 200
        assert model_sha256.hexdigest() in model_body.decode(), "/model names another model"

        healthcheck = subprocess.run(
            _outside_docker(runtime_stage.healthcheck),
            env=environment,
            capture_output=True,
            timeout=10,
            check=False,
        )
        assert healthcheck.returncode == 0, healthcheck.stderr.decode(errors="replace")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"the server ignored SIGTERM for {STOP_TIMEOUT_SECONDS:.0f} s")
    # Uvicorn shuts down gracefully on SIGTERM, then may re-raise the signal so that its parent
    # sees a process ended by SIGTERM (Docker: exit status 143); both are a clean stop.
    server_log = log_path.read_text(errors="replace")
    assert exit_code in {0, -signal.SIGTERM}, server_log[-3000:]
    assert "shutdown complete" in server_log.lower(), "the lifespan shutdown did not run"


def test_image_healthcheck_fails_when_nothing_listens(runtime_stage: DockerStage) -> None:
    """The HEALTHCHECK command reports unhealthy (non-zero) when the service is down."""
    environment = _image_environment(runtime_stage, _free_port())
    healthcheck = subprocess.run(
        _outside_docker(runtime_stage.healthcheck),
        env=environment,
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert healthcheck.returncode != 0


def test_image_runs_as_non_root_with_service_port(runtime_stage: DockerStage) -> None:
    """The serving image has a numeric non-root USER, exposes PORT and listens on all interfaces."""
    user_id = runtime_stage.user.split(":")[0]
    assert user_id.isdigit() and int(user_id) != 0
    assert runtime_stage.exposed_ports == [int(runtime_stage.env["PORT"])]
    assert runtime_stage.env["HOST"] == "0.0.0.0"
    assert "/readyz" in " ".join(runtime_stage.healthcheck)


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last matching rule wins)."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern.removeprefix("**/"))
        if pattern.endswith("/**"):
            candidates.append(pattern.removesuffix("/**"))
        for candidate in candidates:
            if any(fnmatch.fnmatchcase(prefix, candidate) for prefix in prefixes):
                excluded = not negated
                break
    return excluded


def test_dockerignore_keeps_every_copied_file_and_drops_local_state(
    docker_stages: list[DockerStage],
) -> None:
    """Everything the Dockerfile copies is in the build context; venv, git and tests are not."""
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copied = [source for stage in docker_stages for source in stage.copy_sources]
    assert copied, "the Dockerfile copies nothing"
    for source in copied:
        tracked = [
            str(path.relative_to(REPO_ROOT))
            for path in [REPO_ROOT / source, *(REPO_ROOT / source).rglob("*")]
            if path.is_file() and "__pycache__" not in path.parts
        ]
        assert tracked, f"the Dockerfile copies {source}, which does not exist"
        for file in tracked:
            assert not _dockerignore_excludes(patterns, file), f".dockerignore drops {file}"
    assert (REPO_ROOT / "models" / "mnist_dense.keras").is_file()
    for local_state in [".venv/bin/python", ".git/HEAD", "tests/test_packaging.py", ".env"]:
        assert _dockerignore_excludes(patterns, local_state), f"{local_state} enters the image"


def _yaml_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [document for document in yaml.safe_load_all(handle) if document]


def test_compose_api_matches_image(runtime_stage: DockerStage) -> None:
    """The compose `api` service builds the serving stage, publishes nothing (the `edge`
    service reaches it on the image's port) and checks /readyz."""
    (compose,) = _yaml_documents(REPO_ROOT / "docker-compose.yml")
    api = compose["services"]["api"]
    assert api["build"]["target"] == runtime_stage.name
    assert "ports" not in api
    upstream = (REPO_ROOT / "deploy" / "nginx" / "compose" / "upstream.conf").read_text()
    upstream_ports = [int(port) for port in re.findall(r"^server api:(\d+);", upstream, re.M)]
    assert upstream_ports == runtime_stage.exposed_ports
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert api["read_only"] is True
    assert any(str(mount).startswith("/tmp") for mount in api["tmpfs"])
    assert api["restart"] == "unless-stopped"
    assert api["deploy"]["resources"]["limits"]["memory"]


def test_compose_edge_is_published_and_hardened() -> None:
    """The compose `edge` service (nginx) publishes the port on loopback, waits for a healthy
    `api`, checks /readyz through itself, and runs unprivileged on a read-only root."""
    (compose,) = _yaml_documents(REPO_ROOT / "docker-compose.yml")
    edge = compose["services"]["edge"]
    server = (REPO_ROOT / "deploy" / "nginx" / "compose" / "server.conf").read_text()
    (listen_port,) = [int(port) for port in re.findall(r"^listen (\d+);", server, re.M)]
    assert [int(str(mapping).rsplit(":", 1)[-1]) for mapping in edge["ports"]] == [listen_port]
    assert all(str(mapping).startswith("127.0.0.1:") for mapping in edge["ports"])
    assert edge["depends_on"]["api"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(edge["healthcheck"]["test"])
    assert edge["read_only"] is True
    assert any(str(mount).startswith("/tmp") for mount in edge["tmpfs"])
    assert edge["cap_drop"] == ["ALL"]
    assert not str(edge["user"]).startswith("0")
    assert edge["stop_signal"] == "SIGQUIT"


def _volume_target(volume: str) -> str:
    """The container path of a short-syntax volume (``source:target[:mode]``)."""
    for mode in (":ro", ":rw"):
        volume = volume.removesuffix(mode)
    return volume.rsplit(":", 1)[1]


def test_compose_train_writes_models_from_read_only_data(
    docker_stages: list[DockerStage],
) -> None:
    """The `train` service (profile train) builds the train stage and mounts data read-only."""
    (compose,) = _yaml_documents(REPO_ROOT / "docker-compose.yml")
    train = compose["services"]["train"]
    assert train["profiles"] == ["train"]
    assert train["build"]["target"] in {stage.name for stage in docker_stages}
    volumes = {_volume_target(volume): volume for volume in train["volumes"]}
    assert volumes["/data/mnist"].endswith(":ro")
    assert volumes["/models"].startswith("./models:")
    command = train["command"]
    assert command[:3] == ["python", "-m", "training"]
    assert command[command.index("--data") + 1] == "/data/mnist"
    assert command[command.index("--output-dir") + 1] == "/models"


def test_dockerfile_pulls_no_frontend_and_keeps_its_healthcheck_documented(
    docker_stages: list[DockerStage],
) -> None:
    """No `# syntax=` directive (BuildKit would pull a frontend image: air-gapped builders
    fail), and since the image has a HEALTHCHECK, the Dockerfile tells Podman and Buildah users
    to build in docker format (their default OCI format drops it)."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)
    assert any(stage.healthcheck for stage in docker_stages)
    header = text[: text.index("\nFROM ")]
    assert "--format docker" in header


def _option_values(command: str, option: str) -> list[str]:
    """The values of `--option VALUE` / `-K VALUE` in a shell command."""
    words = shlex.split(command.replace("&&", " && "))
    return [words[index + 1] for index, word in enumerate(words[:-1]) if word == option]


def test_runtime_user_is_the_images_user_and_made_without_warnings(
    runtime_stage: DockerStage,
) -> None:
    """groupadd and useradd make USER's ids as system ids, and raise SYS_GID_MAX and
    SYS_UID_MAX to them, so that they do not warn that the ids are above the system range."""
    user_id, group_id = runtime_stage.user.split(":")
    (command,) = [run for run in runtime_stage.run_commands if "useradd" in run]
    groupadd, useradd = command.split("&&")
    assert _option_values(groupadd, "--gid") == [group_id]
    assert _option_values(useradd, "--uid") == [user_id]
    for part, key, value in (
        (groupadd, "SYS_GID_MAX", group_id),
        (useradd, "SYS_UID_MAX", user_id),
    ):
        assert "--system" in part
        settings = dict(item.split("=", 1) for item in _option_values(part, "-K"))
        assert int(settings.get(key, "999")) >= int(value), f"{key} below {value}: {part}"


def test_runtime_code_and_model_belong_to_root(runtime_stage: DockerStage) -> None:
    """What the runtime stage copies stays root's (no --chown to the app user), so the service
    cannot change its own code or model; scripts/container-check checks the built image."""
    assert runtime_stage.copy_arguments
    for arguments in runtime_stage.copy_arguments:
        owners = [word for word in arguments.split() if word.startswith("--chown=")]
        assert all(
            owner.removeprefix("--chown=").split(":")[0] in {"0", "root"} for owner in owners
        )


def _load_container_check() -> types.ModuleType:
    """Import scripts/container_check.py, which is a script and not part of a package."""
    spec = importlib.util.spec_from_file_location(
        "container_check", REPO_ROOT / "scripts" / "container_check.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_container_check_runs_the_image_with_composes_constraints() -> None:
    """The check's `podman run` of the image alone takes compose's constraints for `api`."""
    container_check = _load_container_check()
    (compose,) = _yaml_documents(REPO_ROOT / "docker-compose.yml")
    api = compose["services"]["api"]
    options = container_check.alone_run_options(api)
    pairs = set(zip(options, options[1:], strict=False))
    # Only compose's tmpfs mounts are writable, as with Docker (Podman adds /run, /var/tmp).
    assert "--read-only" in options and "--read-only-tmpfs=false" in options
    assert all(("--tmpfs", mount) in pairs for mount in api["tmpfs"])
    assert ("--cap-drop", "ALL") in pairs
    assert all(("--security-opt", option) in pairs for option in api["security_opt"])
    limits = api["deploy"]["resources"]["limits"]
    assert ("--memory", limits["memory"]) in pairs
    assert ("--cpus", limits["cpus"]) in pairs
    assert container_check.parse_duration(api["stop_grace_period"], 0) == 30
    assert container_check.parse_duration("1m30s", 0) == 90
    assert container_check.parse_bytes("1G") == 1 << 30
    assert container_check.parse_bytes("512M") == 512 << 20
    edge_image = compose["services"]["edge"]["image"]
    assert container_check.fully_qualified(edge_image) == f"docker.io/library/{edge_image}"
    assert container_check.fully_qualified("localhost/a:b") == "localhost/a:b"


def test_container_check_is_a_ci_step_with_pinned_tools() -> None:
    """.ci/run runs scripts/container-check; podman-compose is hash-pinned, at the versions of
    the project's lockfile for the packages both have."""
    script = REPO_ROOT / "scripts" / "container-check"
    assert os.access(script, os.X_OK)
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False)
    assert syntax.returncode == 0, syntax.stderr.decode()
    assert "./scripts/container-check" in (REPO_ROOT / ".ci" / "run").read_text()
    lock = (REPO_ROOT / "deploy" / "container" / "podman-compose.txt").read_text()
    pins = {
        canonicalize_name(match["name"]): match["version"]
        for match in map(_PIN.match, lock.splitlines())
        if match is not None
    }
    assert "podman-compose" in pins
    requirement_lines = [line for line in lock.splitlines() if _PIN.match(line)]
    assert lock.count("--hash=sha256:") >= len(requirement_lines)
    development = _lockfile_pins("dev.txt")
    for name, version in pins.items():
        if name in development:
            assert development[name] == version, f"{name}: podman-compose.txt and dev.txt disagree"


def test_nginx_stand_in_matches_what_compose_expects_of_the_edge_image() -> None:
    """The stand-in the check makes where the official nginx image cannot be pulled has the
    user compose runs `edge` as, its stop signal, and curl for its healthcheck."""
    (compose,) = _yaml_documents(REPO_ROOT / "docker-compose.yml")
    edge = compose["services"]["edge"]
    standin = (REPO_ROOT / "deploy" / "container" / "nginx-standin.Containerfile").read_text()
    user_id, group_id = str(edge["user"]).split(":")
    assert f"--uid {user_id}" in standin and f"--gid {group_id}" in standin
    assert re.search(rf"^STOPSIGNAL {edge['stop_signal']}$", standin, re.M)
    assert edge["healthcheck"]["test"][1] == "curl" and " curl" in standin


def _k8s_resources() -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = {}
    for path in sorted((REPO_ROOT / "deploy" / "k8s").glob("*.yaml")):
        for document in _yaml_documents(path):
            resources[document["kind"]] = document
    return resources


def _k8s_containers() -> dict[str, dict[str, Any]]:
    pod = _k8s_resources()["Deployment"]["spec"]["template"]["spec"]
    return {container["name"]: container for container in pod["containers"]}


def test_k8s_deployment_probes_ports_and_security(runtime_stage: DockerStage) -> None:
    """The app on the image's port with liveness on /healthz, the edge (nginx) ready when
    /readyz answers through it; both non-root, read-only root, bounded memory."""
    resources = _k8s_resources()
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    containers = _k8s_containers()
    assert set(containers) == {"api", "edge"}
    app, edge = containers["api"], containers["edge"]
    app_ports = {port["name"]: port["containerPort"] for port in app["ports"]}
    edge_ports = {port["name"]: port["containerPort"] for port in edge["ports"]}
    assert list(app_ports.values()) == runtime_stage.exposed_ports
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert app["livenessProbe"]["httpGet"]["port"] in app_ports
    assert edge["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert edge["readinessProbe"]["httpGet"]["port"] in edge_ports
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == runtime_stage.user.split(":")[0]
    for container in (app, edge):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}
        assert container["resources"]["requests"]["memory"]
        assert container["resources"]["limits"]["memory"]


def test_k8s_service_and_autoscaler_target_the_deployment() -> None:
    """The Service selects the Deployment's pods on the edge's named port; the HPA scales it."""
    resources = _k8s_resources()
    deployment = resources["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    edge = _k8s_containers()["edge"]
    service = resources["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {port["name"] for port in edge["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_readme_commands_exist_as_scripts() -> None:
    """The README's serve and test commands and docker compose up are there and runnable."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("./scripts/serve", "./scripts/test", "docker compose up"):
        assert command in readme, f"the README does not show {command}"
    for script in ("serve", "serve-edge", "test", "train", "lock", "audit", "container-check"):
        path = REPO_ROOT / "scripts" / script
        assert os.access(path, os.X_OK), f"scripts/{script} is not executable"
        syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, check=False)
        assert syntax.returncode == 0, syntax.stderr.decode()


_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^ ;\\]+)"
    r"\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)


def _lockfile_pins(name: str) -> dict[str, str]:
    """Pins that apply to this interpreter, as {canonical name: version}."""
    pins: dict[str, str] = {}
    for line in (REPO_ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match is None:
            continue
        marker = match["marker"]
        if marker is None or Marker(marker).evaluate():
            pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def _project_requirements() -> dict[str, list[Requirement]]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        pyproject = tomllib.load(handle)
    serving = [Requirement(text) for text in pyproject["project"]["dependencies"]]
    training = [
        Requirement(text) for text in pyproject["project"]["optional-dependencies"]["train"]
    ]
    development = [Requirement(text) for text in pyproject["dependency-groups"]["dev"]]
    return {
        "serve.txt": serving,
        "train.txt": serving + training,
        "dev.txt": serving + training + development,
    }


@pytest.mark.parametrize("lockfile", ["serve.txt", "train.txt", "dev.txt"])
def test_lockfile_satisfies_pyproject(lockfile: str) -> None:
    """Each lockfile pins every dependency pyproject.toml asks for, at an allowed version."""
    pins = _lockfile_pins(lockfile)
    for requirement in _project_requirements()[lockfile]:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is missing from {lockfile}: run ./scripts/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lockfile} pins {name}=={pins[name]}, outside {requirement}: run ./scripts/lock"
        )


def test_lockfiles_pin_same_versions_and_serve_stays_serving_only() -> None:
    """A package has one version across lockfiles; the serving lock has no training/test tools."""
    development = _lockfile_pins("dev.txt")
    for lockfile in ("serve.txt", "train.txt", "build.txt"):
        for name, version in _lockfile_pins(lockfile).items():
            if name in development:
                assert development[name] == version, f"{name}: {lockfile} and dev.txt disagree"
    serving = _lockfile_pins("serve.txt")
    for heavy in ("tensorflow", "keras", "matplotlib", "pytest", "hypothesis", "ruff", "mypy"):
        assert heavy not in serving, f"{heavy} would enter the serving image"


def _load_readme_tables() -> types.ModuleType:
    """Import scripts/readme_tables.py, which is a script and not part of a package."""
    spec = importlib.util.spec_from_file_location(
        "readme_tables", REPO_ROOT / "scripts" / "readme_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_match_metrics_and_settings() -> None:
    """The README's results and configuration tables equal models/metrics.json and Settings."""
    readme_tables = _load_readme_tables()
    current = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    expected = readme_tables.render_readme(current)
    stale_lines = [
        line
        for line in difflib.unified_diff(current.splitlines(), expected.splitlines(), lineterm="")
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
    ]
    assert not stale_lines, (
        "README.md is stale; run .venv/bin/python scripts/readme_tables.py\n"
        + "\n".join(stale_lines[:20])
    )


@pytest.mark.slow
def test_environment_starts_from_the_interpreters_bundled_pip(tmp_path: Path) -> None:
    """A venv made by the interpreter (with its bundled pip, 23.x on Python 3.11) first gets the
    hash-pinned pip of requirements/pip.txt, which reads every lockfile: the bundled pip refuses
    dev.txt in --require-hashes mode ("must have their versions pinned with ==")."""
    base_python = getattr(sys, "_base_executable", sys.executable)
    venv = tmp_path / "venv"
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=300)
    venv_python = str(venv / "bin" / "python")
    script = (
        f"source {shlex.quote(str(REPO_ROOT / 'scripts' / '_venv.sh'))} && "
        'venv_pip install --quiet --require-hashes -r "$repo_root/requirements/pip.txt"'
    )
    subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "VENV_DIR": str(venv)},
        check=True,
        timeout=300,
    )

    installed = subprocess.run(
        [venv_python, "-m", "pip", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert installed.split()[1] == _lockfile_pins("pip.txt")["pip"]
    assert int(installed.split()[1].split(".")[0]) >= 24
    venv_script = (REPO_ROOT / "scripts" / "_venv.sh").read_text(encoding="utf-8")
    assert venv_script.index('requirements/pip.txt"\n') < venv_script.index('-r "$lockfile"')
