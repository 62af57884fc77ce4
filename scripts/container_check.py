"""Builds the service's image from the Dockerfile and runs it, and the compose file, for real,
with rootful Podman from Debian 12's packages: what `scripts/container-check` runs (CI too).

Steps, each timed:

1. Debian packages: Podman, runc, netavark and aardvark-dns (compose's services find each other
   by name), catatonit, the CNI plugins, iptables, debootstrap; installed when missing.
2. podman-compose, hash-pinned (deploy/container/podman-compose.txt), in a tool environment of
   its own in the cache folder.
3. A containers.conf for this machine (CONTAINERS_CONF): the hard rlimits the machine allows as
   the containers' ulimits (it refuses to raise one, even for root) and runc (crun refuses the
   hybrid cgroup layout).
4. The base image: the official python:3.11-slim-bookworm where it can be pulled; otherwise a
   stand-in made from Debian packages (debootstrap minbase with python3, python3-venv,
   python-is-python3, ca-certificates; `podman import`), cached in Podman's storage under a
   tag keyed by its recipe.
5. The runtime image, from the Dockerfile unmodified, in docker format (the OCI format drops
   HEALTHCHECK), through the PYTHON_IMAGE build argument. pip in the build steps gets the
   host's CA bundle (and PIP_INDEX_URL, when set) from a pip.conf in a read-only folder mounted
   over root's home while a step runs; the check then makes sure that none of it is in the
   image, that HEALTHCHECK and USER are, and that the app user cannot write its code or model.
6. The image alone, with compose's constraints for `api` (read-only root where only the tmpfs
   /tmp is writable, as with Docker, all capabilities dropped, no-new-privileges, memory and
   CPU limits, published on 127.0.0.1): /readyz, real predictions (a PNG and a JPEG of a drawn
   7, which go through the decoder processes and their fork server), every process uid 10001
   with no capabilities and no new privileges, the image's HEALTHCHECK (`podman healthcheck
   run`: no systemd here to run it on a timer), and SIGTERM: exit status 0 well within the
   grace period.
7. The edge image: the official nginx image where it can be pulled; otherwise a stand-in
   (deploy/container/nginx-standin.Containerfile: Debian's nginx-light on the base above),
   tagged as the name docker-compose.yml gives.
8. `podman-compose up -d` with the project's docker-compose.yml, the same checks through the
   edge (nginx), a JSON error from nginx itself (a body over its limit: 413
   payload_too_large), `stop` (exit status 0 for both) and `down`.
9. With --train (or CONTAINER_CHECK_TRAIN=1): the `train` image and a smoke training through
   `podman-compose --profile train run` into a temporary folder, after the same run as the
   default HOST_UID has been refused at once by the output-folder check.

Exits non-zero on the first failure, after printing the containers' logs. Needs root.

Podman logs "unable to get systemd connection to add healthchecks" for every container with a
healthcheck: without systemd it cannot run them on a timer. The check runs them itself, and
podman-compose (with Podman 4.3) starts `edge` without waiting for `api` to be healthy, which
the check's wait for /readyz through the edge covers; Docker Compose waits. On a read-only root
Podman also mounts /run and /var/tmp as tmpfs (Docker does not): podman-compose's containers
have them, the image run alone does not (--read-only-tmpfs=false).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTAINER_DIR = REPO_ROOT / "deploy" / "container"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
PODMAN_COMPOSE_LOCK = CONTAINER_DIR / "podman-compose.txt"
NGINX_STANDIN_FILE = CONTAINER_DIR / "nginx-standin.Containerfile"

DEBIAN_PACKAGES = (
    "podman",
    "runc",
    "netavark",
    "aardvark-dns",
    "catatonit",
    "containernetworking-plugins",
    "iptables",
    "debootstrap",
)
OFFICIAL_PYTHON_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
STANDIN_REPOSITORY = "localhost/mnist-container-check/python-standin"
STANDIN_SUITE = "bookworm"
# python:3.11-slim-bookworm's equivalents from Debian: python3 (3.11) and venv, `python`, the CA
# bundle; passwd (useradd, groupadd) is in debian:bookworm-slim but not in debootstrap's minbase.
STANDIN_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd")
STANDIN_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
STANDIN_RECIPE_VERSION = 1
STANDIN_LABEL = "org.mnist-digit-service.container-check.standin"

PROJECT = "mnist-container-check"
"""Compose project name of the check (-p), so that it never touches a user's own project."""
ALONE = "mnist-container-check-api"
"""The container of the image run alone."""
APP_UID = 10001
READY_TIMEOUT_SECONDS = 120.0
MIB = 1 << 20

# Run inside the service's image (it has Pillow): a 7 drawn with a marker, as a 600 x 600 PNG,
# and in chalk on a dark board as a JPEG. Both are over the size the app decodes inline, so both
# go through its decoder processes. The strokes are tests/app/test_handdrawn.py's 7.
DRAW_DIGITS = textwrap.dedent(
    """
    import base64, io, json
    from PIL import Image, ImageDraw

    def seven(canvas, box, pen_width, paper, ink, image_format):
        image = Image.new("RGB", canvas, paper)
        pen = ImageDraw.Draw(image)
        left, top, height = box
        points = [(left + x * 0.7 * height, top + y * height)
                  for x, y in ((0.08, 0.04), (0.92, 0.04), (0.4, 0.98))]
        pen.line(points, fill=ink, width=pen_width, joint="curve")
        radius = pen_width / 2
        for x, y in (points[0], points[-1]):
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)
        buffer = io.BytesIO()
        options = {"quality": 80} if image_format == "JPEG" else {}
        image.save(buffer, format=image_format, **options)
        return base64.b64encode(buffer.getvalue()).decode()

    print(json.dumps({
        "png": seven((600, 600), (190, 90, 420), 38, (255, 255, 255), (0, 0, 0), "PNG"),
        "jpeg": seven((480, 360), (300, 150, 190), 9, (30, 60, 40), (235, 235, 225), "JPEG"),
    }))
    """
)
EXPECTED_DIGIT = 7

# Run inside the image as its own user, on a writable root: nothing it ships is writable by
# that user, and everything is owned by root.
NOT_WRITABLE = textwrap.dedent(
    """
    import json, os
    found = {"writable": [], "not_root_owned": [], "files": 0}
    for top in ("/opt/venv", "/srv"):
        for folder, folders, files in os.walk(top):
            for path in [folder] + [os.path.join(folder, name) for name in files]:
                found["files"] += 1
                if os.access(path, os.W_OK):
                    found["writable"].append(path)
                if os.lstat(path).st_uid != 0:
                    found["not_root_owned"].append(path)
    print(json.dumps(found))
    """
)


class CheckFailed(Exception):
    """A check did not pass; the message says what was expected and what was found."""


# --------------------------------------------------------------------------------------------
# Output, commands and steps


def say(text: str) -> None:
    print(text, flush=True)


def run(
    command: Sequence[str | Path],
    *,
    capture: bool = False,
    check: bool = True,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    quiet: bool = False,
    input_bytes: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command, printing it first; its output goes to ours unless ``capture``."""
    words = [str(word) for word in command]
    if not quiet:
        say(f"$ {shlex.join(words)}")
    try:
        completed = subprocess.run(
            words,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT,
            input=input_bytes,
            stdin=None if input_bytes is not None else subprocess.DEVNULL,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"`{shlex.join(words)}` did not finish in {timeout:g} s") from None
    if check and completed.returncode != 0:
        detail = ""
        if capture:
            output = (completed.stdout or b"") + (completed.stderr or b"")
            detail = "\n" + output.decode(errors="replace")[-3000:]
        raise CheckFailed(f"`{shlex.join(words)}` exited {completed.returncode}{detail}")
    return completed


def output_of(command: Sequence[str | Path], **options: Any) -> str:
    """The standard output of a command that must succeed, as text."""
    return run(command, capture=True, **options).stdout.decode(errors="replace").strip()


def podman(*arguments: str | Path, **options: Any) -> subprocess.CompletedProcess[bytes]:
    return run(["podman", *arguments], **options)


class Steps:
    """Runs named steps in order, timing each, and prints a summary at the end."""

    def __init__(self) -> None:
        self.timings: list[tuple[str, float, str]] = []
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        say(f"\n=== {name}")
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.timings.append((name, time.monotonic() - started, "FAIL"))
            raise
        took = time.monotonic() - started
        self.timings.append((name, took, "PASS"))
        say(f"--- {name}: {took:.1f} s")

    def summary(self) -> None:
        say("\n=== container check summary")
        for name, took, verdict in self.timings:
            say(f"{verdict}  {took:6.1f} s  {name}")
        say(f"total {time.monotonic() - self.started:.1f} s")


# --------------------------------------------------------------------------------------------
# Set-up: packages, podman-compose, containers.conf


def install_debian_packages() -> None:
    missing = []
    for package in DEBIAN_PACKAGES:
        status = run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", package],
            capture=True,
            check=False,
            quiet=True,
        )
        if status.stdout.decode().strip() != "installed":
            missing.append(package)
    if missing:
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], env=environment, timeout=600)
        run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env=environment,
            timeout=900,
        )
    else:
        say("already installed: " + " ".join(DEBIAN_PACKAGES))
    say(output_of(["podman", "--version"], quiet=True))
    say(output_of(["runc", "--version"], quiet=True).splitlines()[0])


def clean_pip_environment() -> dict[str, str]:
    """The environment for pip: the machine's pip configuration files, local wheel folders,
    extra indexes and global constraints left out, as scripts/_venv.sh does."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX"}
    }
    environment.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return environment


def install_podman_compose(cache: Path) -> Path:
    """podman-compose from its hash-pinned lockfile, in a tool environment of its own; reused
    while the lockfile is unchanged. Returns the environment's folder."""
    digest = hashlib.sha256(
        PODMAN_COMPOSE_LOCK.read_bytes() + (REPO_ROOT / "requirements" / "pip.txt").read_bytes()
    ).hexdigest()[:12]
    tools = cache / "tools"
    venv = tools / f"podman-compose-{digest}"
    stamp = venv / ".installed"
    if not stamp.is_file():
        if tools.is_dir():
            for old in tools.glob("podman-compose-*"):
                shutil.rmtree(old, ignore_errors=True)
        run([sys.executable, "-m", "venv", venv], timeout=300)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        environment = clean_pip_environment()
        # The interpreter's bundled pip may be too old for hash-pinned lockfiles (README).
        lock = REPO_ROOT / "requirements" / "pip.txt"
        run([*pip, "--require-hashes", "-r", lock], env=environment, timeout=600)
        run([*pip, "--require-hashes", "-r", PODMAN_COMPOSE_LOCK], env=environment, timeout=600)
        stamp.write_text(digest)
    else:
        say(f"reusing {venv}")
    say(output_of([venv / "bin" / "podman-compose", "--version"], quiet=True).splitlines()[-1])
    return venv


def hard_limit(limit: int) -> int:
    value = resource.getrlimit(limit)[1]
    return 1 << 20 if value == resource.RLIM_INFINITY else value


def write_containers_conf(cache: Path) -> Path:
    """This machine's quirks, for Podman alone (CONTAINERS_CONF; the system's file is left)."""
    nofile = hard_limit(resource.RLIMIT_NOFILE)
    # Podman first lowers its own process limit to kernel.pid_max, and a container cannot get
    # more than the runtime that starts it has.
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = min(hard_limit(resource.RLIMIT_NPROC), pid_max)
    text = textwrap.dedent(
        f"""\
        # Written by scripts/container-check; Podman reads it through CONTAINERS_CONF.
        [containers]
        # This machine refuses to raise a hard rlimit, even for root, and Podman's default
        # ulimits would (crun/runc: setrlimit RLIMIT_NOFILE: Operation not permitted): the
        # containers get the machine's own hard limits (ulimit -Hn; ulimit -Hu, at most
        # kernel.pid_max, to which Podman lowers its own).
        default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

        [engine]
        # crun refuses the hybrid cgroup layout (cgroups in hybrid mode not supported); runc
        # works with it, and with cgroup v2.
        runtime = "runc"

        [network]
        # Debian's Podman 4.3 defaults to CNI, whose bridge has no DNS without the dnsname
        # plugin; with netavark and aardvark-dns, compose's services find each other by name.
        network_backend = "netavark"
        """
    )
    path = cache / "containers.conf"
    path.write_text(text)
    say(text)
    os.environ["CONTAINERS_CONF"] = str(path)
    say(
        output_of(
            [
                "podman",
                "info",
                "--format",
                "runtime {{.Host.OCIRuntime.Name}}, network {{.Host.NetworkBackend}}, "
                "cgroups {{.Host.CgroupsVersion}} ({{.Host.CgroupManager}}), "
                "storage {{.Store.GraphDriverName}}",
            ],
            timeout=60,
        )
    )
    return path


# --------------------------------------------------------------------------------------------
# Images


def fully_qualified(image: str) -> str:
    """docker.io/library/nginx:1.27-bookworm for nginx:1.27-bookworm, as Docker reads it."""
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def image_label(image: str, label: str) -> str | None:
    """A label of a local image; None when there is no such image."""
    inspected = run(
        ["podman", "image", "inspect", image, "--format", "{{json .Labels}}"],
        capture=True,
        check=False,
        quiet=True,
    )
    if inspected.returncode != 0:
        return None
    labels = json.loads(inspected.stdout.decode() or "null") or {}
    return str(labels.get(label, ""))


PULL = {"enabled": True}
"""Whether official images are tried at all (--no-pull: straight to the stand-ins)."""


def try_pull(image: str) -> bool:
    if not PULL["enabled"]:
        say(f"not trying {image} (--no-pull)")
        return False
    say(f"trying the official image {image}")
    pulled = run(["podman", "pull", "--quiet", image], capture=True, check=False, timeout=300)
    if pulled.returncode == 0:
        return True
    reason = (pulled.stderr or b"").decode(errors="replace").strip().splitlines()
    say(f"cannot pull it: {reason[-1] if reason else f'exit {pulled.returncode}'}")
    return False


def debian_mirror() -> str:
    """The host's Debian mirror (apt sources), or DEBIAN_MIRROR, or deb.debian.org."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    for path in sources:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and words[1].endswith("/debian"):
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and words[-3:-2] != ["bookworm-security"]:
                candidates = [word for word in words[1:] if "://" in word]
                if candidates and candidates[0].endswith("/debian"):
                    return candidates[0]
    return "http://deb.debian.org/debian"


def standin_recipe_key() -> str:
    recipe = {
        "version": STANDIN_RECIPE_VERSION,
        "suite": STANDIN_SUITE,
        "variant": "minbase",
        "packages": STANDIN_PACKAGES,
        "changes": STANDIN_CHANGES,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def make_python_standin(cache: Path, tag: str, key: str) -> None:
    """debootstrap minbase bookworm with Python, cleaned, imported as one layer."""
    work = cache / "work"
    shutil.rmtree(work, ignore_errors=True)
    rootfs = work / "rootfs"
    rootfs.mkdir(parents=True)
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(STANDIN_PACKAGES)}",
                "--components=main",
                STANDIN_SUITE,
                rootfs,
                debian_mirror(),
            ],
            capture=True,
            timeout=1200,
        )
        # What slim images leave out: package lists and caches, logs, the build's host name.
        for pattern in (
            "var/lib/apt/lists/*",
            "var/cache/apt/*.bin",
            "var/cache/apt/archives/*.deb",
            "var/cache/debconf/*-old",
            "var/log/*.log",
            "var/log/apt/*",
        ):
            for path in rootfs.glob(pattern):
                if path.is_file() or path.is_symlink():
                    path.unlink()
        for path in (rootfs / "etc" / "hostname", rootfs / "etc" / "resolv.conf"):
            path.unlink(missing_ok=True)
        archive = work / "rootfs.tar"
        run(["tar", "--numeric-owner", "-C", rootfs, "-cf", archive, "."])
        changes = [*STANDIN_CHANGES, f"LABEL {STANDIN_LABEL}={key}"]
        change_options = [word for change in changes for word in ("--change", change)]
        podman(
            "import",
            *change_options,
            "--message",
            "stand-in for python:3.11-slim-bookworm, made by scripts/container-check",
            archive,
            tag,
            timeout=600,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def base_image(cache: Path) -> tuple[str, str]:
    """The image to build on, and which it is (printed and in the summary)."""
    if try_pull(OFFICIAL_PYTHON_IMAGE):
        return OFFICIAL_PYTHON_IMAGE, "the official python:3.11-slim-bookworm (pulled)"
    if image_label(OFFICIAL_PYTHON_IMAGE, STANDIN_LABEL) == "":
        return OFFICIAL_PYTHON_IMAGE, "the official python:3.11-slim-bookworm (pulled before)"
    key = standin_recipe_key()
    tag = f"{STANDIN_REPOSITORY}:{STANDIN_SUITE}-{key}"
    if image_label(tag, STANDIN_LABEL) == key:
        return tag, f"a stand-in made from Debian 12 packages, cached ({tag})"
    say("making a stand-in from Debian 12's packages: " + ", ".join(STANDIN_PACKAGES))
    make_python_standin(cache, tag, key)
    return tag, f"a stand-in made from Debian 12 packages, made now ({tag})"


def edge_image(name: str, base: str) -> str:
    """The image compose's `edge` names: official if it can be pulled, else a stand-in."""
    image = fully_qualified(name)
    if try_pull(image):
        return f"the official {name} (pulled)"
    key = hashlib.sha256(NGINX_STANDIN_FILE.read_bytes() + base.encode()).hexdigest()[:12]
    label = image_label(image, STANDIN_LABEL)
    if label == "":
        return f"the official {name} (pulled before)"
    if label == key:
        return f"a stand-in for {name}: Debian's nginx-light on {base}, cached"
    podman(
        "build",
        "--format",
        "docker",
        "--file",
        NGINX_STANDIN_FILE,
        "--build-arg",
        f"BASE_IMAGE={base}",
        "--label",
        f"{STANDIN_LABEL}={key}",
        "--tag",
        image,
        CONTAINER_DIR,
        timeout=900,
    )
    return f"a stand-in for {name}: Debian's nginx-light on {base}, made now"


BUILD_HOME = "/root"
"""HOME of the build steps, which run as root: pip reads $HOME/.config/pip/pip.conf."""
BUILD_FILES = (".config/pip/pip.conf", "host-ca-certificates.crt")


def build_mounts(scratch: Path) -> list[str]:
    """A read-only mount for the build's RUN steps: a folder over root's home (which both base
    images have, so that no mount point is left in a layer) holding a pip.conf that points pip
    at the host's CA bundle, copied next to it, and at PIP_INDEX_URL when that is set."""
    candidates = [
        os.environ.get("PIP_CERT", ""),
        os.environ.get("SSL_CERT_FILE", ""),
        "/etc/ssl/certs/ca-certificates.crt",
    ]
    ca_bundle = next((Path(path) for path in candidates if path and Path(path).is_file()), None)
    home = scratch / "build-home"
    (home / ".config" / "pip").mkdir(parents=True)
    lines = ["[global]"]
    if ca_bundle is not None:
        shutil.copyfile(ca_bundle, home / BUILD_FILES[1])
        lines.append(f"cert = {BUILD_HOME}/{BUILD_FILES[1]}")
    for variable, option in (
        ("PIP_INDEX_URL", "index-url"),
        ("PIP_TRUSTED_HOST", "trusted-host"),
        ("PIP_DEFAULT_TIMEOUT", "timeout"),
    ):
        if os.environ.get(variable):
            lines.append(f"{option} = {os.environ[variable]}")
    (home / BUILD_FILES[0]).write_text("\n".join(lines) + "\n")
    home.chmod(0o755)
    say(f"pip in the build steps: {', '.join(lines[1:]) or 'defaults'}")
    return ["--volume", f"{home}:{BUILD_HOME}:ro"]


def image_id(image: str) -> str | None:
    inspected = run(
        ["podman", "image", "inspect", image, "--format", "{{.Id}}"],
        capture=True,
        check=False,
        quiet=True,
    )
    return inspected.stdout.decode().strip() if inspected.returncode == 0 else None


def build_image(target: str, tag: str, base: str, mounts: list[str]) -> None:
    """Build a target of the Dockerfile in docker format; the image the tag named before, if
    this build replaced it, is removed (and with it the layers only it used), so that repeated
    runs on one machine do not pile up images."""
    previous = image_id(tag)
    podman(
        "build",
        "--format",
        "docker",
        "--target",
        target,
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        *mounts,
        "--tag",
        tag,
        "--file",
        REPO_ROOT / "Dockerfile",
        REPO_ROOT,
        timeout=1800,
    )
    if previous is not None and previous != image_id(tag):
        removed = podman("rmi", previous, capture=True, check=False, timeout=120)
        if removed.returncode == 0:
            say(f"removed the image {tag} was before ({previous[:12]})")


def check_runtime_image(tag: str) -> None:
    """HEALTHCHECK and USER survived the build; the build's mounts left nothing behind; the
    code and model are root's and not writable by the app user."""
    config = json.loads(output_of(["podman", "image", "inspect", tag, "--format", "json"]))[0]
    healthcheck = config.get("Healthcheck") or (config.get("Config") or {}).get("Healthcheck")
    if not healthcheck or not healthcheck.get("Test"):
        raise CheckFailed(f"{tag} has no HEALTHCHECK: was it built in OCI format?")
    user = config["Config"].get("User", "")
    say(f"HEALTHCHECK: {shlex.join(healthcheck['Test'][1:])[:100]}...; USER {user}")
    if user.split(":")[0] != str(APP_UID):
        raise CheckFailed(f"{tag} runs as {user!r}, not {APP_UID}")
    mount_point = Path(output_of(["podman", "image", "mount", tag]))
    try:
        leftovers = [
            name
            for name in (*BUILD_FILES, ".config/pip")
            if (mount_point / BUILD_HOME.lstrip("/") / name).exists()
        ]
    finally:
        podman("image", "unmount", tag, capture=True, check=False)
    if leftovers:
        raise CheckFailed(f"the build's mounts were left in the image: {leftovers}")
    say("the build's CA bundle and pip.conf are not in the image")
    found = json.loads(
        output_of(
            ["podman", "run", "--rm", "--network", "none", tag, "python", "-c", NOT_WRITABLE],
            timeout=120,
        )
    )
    if found["writable"] or found["not_root_owned"]:
        raise CheckFailed(
            f"the app user may change its own code or model: writable {found['writable'][:5]}, "
            f"not owned by root {found['not_root_owned'][:5]}"
        )
    say(f"{found['files']} files and folders in /opt/venv and /srv: root's, read-only to the app")


# --------------------------------------------------------------------------------------------
# Running and checking


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def container_state(name: str) -> dict[str, Any]:
    inspected = run(
        ["podman", "container", "inspect", name, "--format", "{{json .State}}"],
        capture=True,
        check=False,
        quiet=True,
    )
    if inspected.returncode != 0:
        return {}
    state: dict[str, Any] = json.loads(inspected.stdout.decode())
    return state


def wait_until_ready(port: int, containers: Sequence[str]) -> float:
    """Poll /readyz on 127.0.0.1:port until it answers 200; return how long it took."""
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < READY_TIMEOUT_SECONDS:
        for name in containers:
            state = container_state(name)
            if state and not state.get("Running"):
                raise CheckFailed(f"{name} stopped (exit {state.get('ExitCode')}) before ready")
        try:
            status, _, body = http_request(port, "GET", "/readyz", timeout=5)
            if status == 200:
                took = time.monotonic() - started
                say(f"/readyz 200 after {took:.1f} s: {body.decode(errors='replace')[:200]}")
                return took
            last = f"{status} {body[:200]!r}"
        except OSError as error:
            last = str(error)
        time.sleep(0.5)
    raise CheckFailed(f"/readyz did not answer 200 in {READY_TIMEOUT_SECONDS:g} s: {last}")


def draw_digits(container: str) -> dict[str, bytes]:
    drawn = json.loads(
        output_of(["podman", "exec", container, "python", "-c", DRAW_DIGITS], timeout=60)
    )
    return {kind: base64.b64decode(data) for kind, data in drawn.items()}


def multipart(field: str, filename: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    boundary = "container-check-" + hashlib.sha256(data).hexdigest()[:16]
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def check_predictions(port: int, digits: dict[str, bytes], model_sha256: str) -> None:
    """A multipart PNG (as `curl -F file=@digit.png`) and a raw JPEG body: 200, digit 7."""
    body, content_type = multipart("file", "seven.png", "image/png", digits["png"])
    uploads = [
        ("multipart PNG", body, content_type),
        ("raw JPEG", digits["jpeg"], "image/jpeg"),
    ]
    for kind, payload, payload_type in uploads:
        status, headers, answer = http_request(
            port, "POST", "/predict", payload, {"Content-Type": payload_type}
        )
        if status != 200 or not headers.get("content-type", "").startswith("application/json"):
            raise CheckFailed(f"/predict ({kind}) answered {status}: {answer[:500]!r}")
        result = json.loads(answer)
        say(
            f"/predict {kind} ({len(payload):,} bytes): digit {result.get('digit')}, "
            f"confidence {result.get('confidence')}, model {result.get('model_sha256')}"
        )
        if result.get("digit") != EXPECTED_DIGIT:
            raise CheckFailed(f"/predict ({kind}) read a {EXPECTED_DIGIT} as {result}")
        if not model_sha256.startswith(str(result.get("model_sha256"))):
            raise CheckFailed(f"/predict answered with another model: {result}")


def check_processes(container: str, uid: int, gid: int, *, decoders: bool) -> None:
    """Every process of the container (read from the host's /proc) runs as uid:gid, real,
    effective, saved and file-system ids alike; with ``decoders``, the app's fork server and
    decoder processes are among them."""
    host_pids = output_of(["podman", "top", container, "hpid"]).split()[1:]
    rows = []
    for pid in host_pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except FileNotFoundError:
            continue
        fields = {
            key: value.strip()
            for key, value in (line.split(":", 1) for line in status.splitlines() if ":" in line)
        }
        uids = {int(value) for value in fields["Uid"].split()}
        gids = {int(value) for value in fields["Gid"].split()}
        # cap_drop ALL leaves an empty bounding set; no-new-privileges sets NoNewPrivs.
        hardened = int(fields["CapBnd"], 16) == 0 and fields["NoNewPrivs"] == "1"
        rows.append((pid, uids, gids, hardened, cmdline.decode(errors="replace").strip()))
    for pid, uids, gids, hardened, command in rows:
        flags = "no capabilities, no new privileges" if hardened else "NOT HARDENED"
        say(f"  pid {pid:>7}  uid {sorted(uids)}  gid {sorted(gids)}  {flags}  {command[:80]}")
    wrong = [row for row in rows if row[1] != {uid} or row[2] != {gid} or not row[3]]
    if not rows or wrong:
        raise CheckFailed(
            f"processes of {container} not running as {uid}:{gid} without capabilities and "
            f"with no-new-privileges: {wrong or rows}"
        )
    if decoders and not any("forkserver" in row[4] for row in rows):
        raise CheckFailed(f"{container}: no fork server or decoder process after the uploads")
    say(f"{len(rows)} processes, every one as {uid}:{gid}, no capabilities, no new privileges")


def parse_bytes(value: Any) -> int:
    """A compose memory size (1G, 512M, 1024k, 2048) in bytes."""
    text = str(value).strip().lower().removesuffix("b")
    factor = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:], 1)
    return int(float(text.rstrip("kmg")) * factor)


def check_host_config(container: str, service: dict[str, Any]) -> None:
    """The container got the service's read-only root, tmpfs mounts and memory limit."""
    host = json.loads(
        output_of(["podman", "container", "inspect", container, "--format", "{{json .HostConfig}}"])
    )
    tmpfs = sorted(host.get("Tmpfs") or {})
    memory = host.get("Memory", 0)
    say(
        f"{container}: read-only root {host.get('ReadonlyRootfs')}, tmpfs {tmpfs}, {memory:,} bytes"
    )
    if service.get("read_only") and not host.get("ReadonlyRootfs"):
        raise CheckFailed(f"{container}: its root is writable")
    wanted = {str(mount).split(":", 1)[0] for mount in service.get("tmpfs") or []}
    if not wanted <= set(tmpfs):
        raise CheckFailed(f"{container}: tmpfs {tmpfs}, expected {sorted(wanted)}")
    limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    if limits.get("memory") and memory != parse_bytes(limits["memory"]):
        raise CheckFailed(f"{container}: memory limit {memory}, expected {limits['memory']}")


def check_healthcheck(container: str) -> None:
    test = output_of(
        ["podman", "container", "inspect", container, "--format", "{{json .Config.Healthcheck}}"]
    )
    if test in {"", "null", "<nil>"}:
        raise CheckFailed(f"{container} has no healthcheck")
    podman("healthcheck", "run", container, timeout=60)
    say(f"{container}: healthcheck passed")


def stop_and_check(container: str, grace_seconds: int) -> None:
    """SIGTERM (the image's stop signal) stops the container with exit status 0 in less than
    half the grace period."""
    started = time.monotonic()
    podman(
        "stop", "--time", str(grace_seconds), container, capture=True, timeout=grace_seconds + 30
    )
    took = time.monotonic() - started
    state = container_state(container)
    say(f"{container} stopped in {took:.1f} s, exit status {state.get('ExitCode')}")
    if state.get("ExitCode") != 0:
        raise CheckFailed(f"{container} exited {state.get('ExitCode')} on its stop signal")
    if took > grace_seconds / 2:
        raise CheckFailed(f"{container} took {took:.1f} s to stop (grace {grace_seconds} s)")


def check_published_on_loopback(container: str, expect_ports: bool) -> None:
    ports = output_of(["podman", "port", container])
    say(f"{container} publishes: {ports or 'nothing'}")
    lines = [line for line in ports.splitlines() if line.strip()]
    if expect_ports and not lines:
        raise CheckFailed(f"{container} publishes no port")
    if not expect_ports and lines:
        raise CheckFailed(f"{container} should publish no port: {ports}")
    for line in lines:
        if "-> 127.0.0.1:" not in line:
            raise CheckFailed(f"{container} publishes beyond the host's loopback: {line}")


def print_logs(containers: Sequence[str]) -> None:
    for name in containers:
        if not container_state(name):
            continue
        say(f"\n=== logs of {name} (last 150 lines)")
        run(["podman", "logs", "--tail", "150", name], check=False, timeout=60)


def parse_duration(value: Any, default: int) -> int:
    """Compose durations as podman-compose normalizes them (30s, 1m30s) in whole seconds."""
    if value is None:
        return default
    text = str(value)
    total, number = 0, ""
    for character in text:
        if character.isdigit() or character == ".":
            number += character
        else:
            factor = {"h": 3600, "m": 60, "s": 1}.get(character)
            if factor is None or not number:
                raise CheckFailed(f"cannot read the duration {value!r}")
            total += int(float(number) * factor)
            number = ""
    return total + (int(float(number)) if number else 0)


def alone_run_options(api: dict[str, Any]) -> list[str]:
    """`podman run` options equal to what docker-compose.yml sets for `api`."""
    options: list[str] = []
    if api.get("read_only"):
        # As Docker has it: only the tmpfs mounts the file lists are writable (Podman would
        # also mount /run and /var/tmp writable on a read-only root).
        options += ["--read-only", "--read-only-tmpfs=false"]
    for mount in api.get("tmpfs") or []:
        options += ["--tmpfs", str(mount)]
    for capability in api.get("cap_drop") or []:
        options += ["--cap-drop", str(capability)]
    for option in api.get("security_opt") or []:
        options += ["--security-opt", str(option)]
    limits = ((api.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    if limits.get("memory"):
        options += ["--memory", str(limits["memory"])]
    if limits.get("cpus"):
        options += ["--cpus", str(limits["cpus"])]
    environment = api.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(str(item).split("=", 1) for item in environment)
    for key, value in environment.items():
        options += ["--env", f"{key}={value}"]
    return options


# --------------------------------------------------------------------------------------------
# Compose


class Compose:
    """podman-compose on the project's docker-compose.yml, as its own project (-p)."""

    def __init__(self, venv: Path, environment: dict[str, str]) -> None:
        self.program = venv / "bin" / "podman-compose"
        self.python = venv / "bin" / "python"
        self.environment = environment

    def __call__(
        self, *arguments: str | Path, **options: Any
    ) -> subprocess.CompletedProcess[bytes]:
        return run(
            [self.program, "-p", PROJECT, "-f", COMPOSE_FILE, *arguments],
            env=self.environment,
            **options,
        )

    def config(self) -> dict[str, Any]:
        """The compose file as podman-compose reads it, with the variables filled in."""
        # With the train profile, so that `train` is in it too (`up` leaves it out all the same).
        text = self("--profile", "train", "config", capture=True, timeout=60).stdout
        loaded = run(
            [
                self.python,
                "-c",
                "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
            ],
            capture=True,
            quiet=True,
            input_bytes=text,
        )
        config: dict[str, Any] = json.loads(loaded.stdout)
        return config

    def containers(self) -> dict[str, str]:
        """{service: container name} of this project's containers."""
        listed = run(
            [
                "podman",
                "ps",
                "--all",
                "--filter",
                f"label=io.podman.compose.project={PROJECT}",
                "--format",
                "json",
            ],
            capture=True,
            quiet=True,
        )
        found = {}
        for container in json.loads(listed.stdout.decode() or "[]"):
            service = (container.get("Labels") or {}).get("com.docker.compose.service", "")
            found[service] = container["Names"][0]
        return found


# --------------------------------------------------------------------------------------------
# The check


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/container-check",
        description="Build the image and run it and the compose file with Podman (as root).",
    )
    parser.add_argument(
        "--train",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("CONTAINER_CHECK_TRAIN", "") == "1",
        help="also build the train image and run a smoke training through compose "
        "(default: CONTAINER_CHECK_TRAIN=1)",
    )
    parser.add_argument(
        "--pull",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="try to pull the official python and nginx images first (default); --no-pull "
        "goes straight to the stand-ins made from Debian packages",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(
            os.environ.get("CONTAINER_CHECK_CACHE")
            or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            / "mnist-container-check"
        ),
        help="tool environment, containers.conf and scratch files "
        "(default: CONTAINER_CHECK_CACHE or ~/.cache/mnist-container-check)",
    )
    return parser.parse_args(argv)


def stop_on_sigterm(signal_number: int, frame: object) -> None:
    """SIGTERM (CI's timeout) ends the check like a failure: containers removed, summary."""
    raise SystemExit(128 + signal_number)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    PULL["enabled"] = arguments.pull
    if os.geteuid() != 0:
        say("error: the container check runs rootful Podman and installs packages: run as root")
        return 2
    cache: Path = arguments.cache.absolute()
    cache.mkdir(parents=True, exist_ok=True)
    steps = Steps()
    scratch = Path(tempfile.mkdtemp(prefix="container-check-"))
    model_sha256 = hashlib.sha256((REPO_ROOT / "models" / "mnist_dense.keras").read_bytes())
    watched: list[str] = []
    compose: Compose | None = None
    compose_started = False
    notes: list[str] = []
    try:
        with steps.step("Debian packages (podman, runc, netavark, debootstrap, ...)"):
            install_debian_packages()
        with steps.step("podman-compose (hash-pinned tool environment)"):
            venv = install_podman_compose(cache)
        with steps.step("containers.conf (this machine's rlimits, runc)"):
            write_containers_conf(cache)
            port = free_port()
            compose_environment = {**os.environ, "API_PORT": str(port)}
            for variable in ("HOST_UID", "HOST_GID", "WEB_CONCURRENCY", "LOG_LEVEL"):
                compose_environment.pop(variable, None)
            compose = Compose(venv, compose_environment)
            config = compose.config()
            services = config["services"]
        with steps.step("base image"):
            base, which = base_image(cache)
            say(f"base image: {which}")
            notes.append(f"base image: {which}")
        runtime_tag = str(services["api"]["image"])
        with steps.step(f"build {runtime_tag} (Dockerfile, target runtime, docker format)"):
            mounts = build_mounts(scratch)
            build_image("runtime", runtime_tag, base, mounts)
        with steps.step("image contents (HEALTHCHECK, USER, no build mounts, read-only code)"):
            check_runtime_image(runtime_tag)

        with steps.step("image alone: start with compose's constraints, /readyz"):
            podman("rm", "--force", "--ignore", ALONE, capture=True, timeout=120)
            alone_port = free_port()
            grace = parse_duration(services["api"].get("stop_grace_period"), 10)
            watched.append(ALONE)
            podman(
                "run",
                "--detach",
                "--name",
                ALONE,
                *alone_run_options(services["api"]),
                "--publish",
                f"127.0.0.1:{alone_port}:8000",
                runtime_tag,
                timeout=120,
            )
            wait_until_ready(alone_port, [ALONE])
        with steps.step("image alone: predictions, processes, loopback, healthcheck"):
            digits = draw_digits(ALONE)
            check_predictions(alone_port, digits, model_sha256.hexdigest())
            check_processes(ALONE, APP_UID, APP_UID, decoders=True)
            check_host_config(ALONE, services["api"])
            check_published_on_loopback(ALONE, expect_ports=True)
            check_healthcheck(ALONE)
        with steps.step(f"image alone: SIGTERM (grace {grace} s)"):
            stop_and_check(ALONE, grace)
            podman("rm", ALONE, capture=True, timeout=60)
            watched.remove(ALONE)

        edge_name = str(services["edge"]["image"])
        with steps.step(f"edge image ({edge_name})"):
            which = edge_image(edge_name, base)
            say(f"edge image: {which}")
            notes.append(f"edge image: {which}")

        with steps.step("compose up -d, /readyz through the edge"):
            compose("down", "--timeout", "5", capture=True, check=False, timeout=180)
            compose_started = True
            compose("up", "--detach", "--no-build", timeout=300)
            names = compose.containers()
            watched.extend(names.values())
            say(f"containers: {names}")
            wait_until_ready(port, list(names.values()))
        with steps.step("compose: predictions, nginx's JSON 413, processes, healthchecks"):
            check_predictions(port, digits, model_sha256.hexdigest())
            too_large = 5 * MIB + 1
            status, headers, answer = http_request_with_length(port, too_large)
            say(f"POST /predict with Content-Length {too_large:,}: {status} {answer[:300]!r}")
            error = json.loads(answer).get("error", {}) if answer.startswith(b"{") else {}
            if status != 413 or error.get("code") != "payload_too_large":
                raise CheckFailed(f"nginx answered {status} {headers} {answer[:300]!r}")
            edge_user = str(services["edge"].get("user", "101:101")).split(":")
            check_processes(names["api"], APP_UID, APP_UID, decoders=True)
            check_processes(names["edge"], int(edge_user[0]), int(edge_user[-1]), decoders=False)
            check_host_config(names["api"], services["api"])
            check_host_config(names["edge"], services["edge"])
            check_published_on_loopback(names["edge"], expect_ports=True)
            check_published_on_loopback(names["api"], expect_ports=False)
            check_healthcheck(names["api"])
            check_healthcheck(names["edge"])
        with steps.step("compose stop (edge, then api: exit status 0) and down"):
            started = time.monotonic()
            compose("stop", timeout=120)
            say(f"stopped in {time.monotonic() - started:.1f} s")
            for service, name in names.items():
                state = container_state(name)
                say(f"{service}: exit status {state.get('ExitCode')}")
                if state.get("ExitCode") != 0:
                    raise CheckFailed(f"{service} exited {state.get('ExitCode')} when stopped")
            compose("down", timeout=180)
            compose_started = False
            watched.clear()
            left = compose.containers()
            if left:
                raise CheckFailed(f"containers left after down: {left}")

        if arguments.train:
            compose_started = True
            train_smoke(steps, compose, services, base, mounts, scratch, notes)
            compose("down", "--timeout", "5", capture=True, timeout=180)
            compose_started = False
        else:
            notes.append("train image and smoke training: skipped (--train to run them)")
    except Exception as failure:  # any failure ends the check the same way
        if not isinstance(failure, CheckFailed):
            traceback.print_exc()
        say(f"\nFAILED: {failure}")
        print_logs(watched)
        steps.summary()
        return 1
    except (SystemExit, KeyboardInterrupt):
        say("\nSTOPPED (a signal); removing the containers")
        print_logs(watched)
        steps.summary()
        raise
    finally:
        with contextlib.suppress(CheckFailed):
            if compose is not None and compose_started:
                compose("down", "--timeout", "5", capture=True, check=False, timeout=180)
            podman("rm", "--force", "--ignore", ALONE, capture=True, check=False, timeout=120)
        shutil.rmtree(scratch, ignore_errors=True)
    steps.summary()
    for note in notes:
        say(note)
    say("container check passed")
    return 0


def http_request_with_length(port: int, length: int) -> tuple[int, dict[str, str], bytes]:
    """A POST that announces a body of ``length`` bytes and sends none: nginx answers from
    the headers alone when the length is over its limit."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/predict")
        connection.putheader("Content-Type", "image/png")
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def train_smoke(
    steps: Steps,
    compose: Compose,
    services: dict[str, Any],
    base: str,
    mounts: list[str],
    scratch: Path,
    notes: list[str],
) -> None:
    """The train image, then `--profile train run` into a temporary folder owned by another
    user: refused at once with the default HOST_UID, then a smoke training as that user."""
    data = os.environ.get("MNIST_DATA", "")
    if not data or not Path(data).is_dir():
        notes.append("smoke training: skipped (MNIST_DATA is not a folder)")
        return
    train_tag = str(services["train"]["image"])
    with steps.step(f"build {train_tag} (Dockerfile, target train, docker format)"):
        build_image("train", train_tag, base, mounts)
    output = scratch / "models"
    output.mkdir()
    owner = 4242
    os.chown(output, owner, owner)
    output.chmod(0o755)
    command = [
        "--profile",
        "train",
        "run",
        "--rm",
        "-T",
        "--volume",
        f"{output}:/out",
        "train",
        "python",
        "-m",
        "training",
        "--data",
        "/data/mnist",
        "--profile",
        "smoke",
        "--output-dir",
        "/out",
    ]
    with steps.step("compose --profile train run, default HOST_UID: refused at once"):
        started = time.monotonic()
        refused = compose(*command, capture=True, check=False, timeout=300)
        took = time.monotonic() - started
        said = (refused.stdout + refused.stderr).decode(errors="replace")
        say(said[-1500:])
        if refused.returncode == 0 or "HOST_UID=$(id -u) HOST_GID=$(id -g)" not in said:
            raise CheckFailed(
                f"a folder it cannot write was not refused (exit {refused.returncode})"
            )
        say(f"refused in {took:.1f} s, exit status {refused.returncode}")
    with steps.step("compose --profile train run as the folder's owner: smoke training"):
        environment = {**compose.environment, "HOST_UID": str(owner), "HOST_GID": str(owner)}
        run(
            [compose.program, "-p", PROJECT, "-f", COMPOSE_FILE, *command],
            env=environment,
            timeout=900,
        )
        written = sorted(path.name for path in output.iterdir())
        say(f"written: {written}")
        if "mnist_dense.keras" not in written or "metrics.json" not in written:
            raise CheckFailed(f"the smoke training wrote {written}")
        metrics = json.loads((output / "metrics.json").read_text())
        accuracy = metrics.get("test", metrics).get("accuracy")
        notes.append(f"smoke training: written {len(written)} files, test accuracy {accuracy}")


if __name__ == "__main__":
    sys.exit(main())
