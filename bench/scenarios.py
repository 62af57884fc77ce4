"""What is sent to each service: one scenario per image and upload style, and its probe.

A scenario names the endpoint, the wrk Lua script and its arguments. Before a scenario is
loaded, one request built the same way is sent from Python (the probe): it must answer 2xx, and
its answer (the predicted digit) is recorded, so a misconfigured scenario never passes as fast.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.images import BenchImage, BenchImages
from bench.servers import ServiceSpec, http_request
from bench.wrk_load import MULTIPART_SCRIPT, RAW_BODY_SCRIPT

_PROBE_BOUNDARY = "----mnistbenchprobe4f0a"


@dataclass(frozen=True)
class Scenario:
    """One kind of request a service is loaded with."""

    image: str
    """``png28``, ``jpeg900`` or ``batchNN`` (NN images per request)."""
    upload: str
    """``multipart`` (field ``file``) or ``raw`` (the image as the body)."""
    path: str
    script: Path
    script_args: tuple[str, ...]
    images_per_request: int = 1

    @property
    def label(self) -> str:
        """``image/upload``, e.g. ``png28/multipart``."""
        return f"{self.image}/{self.upload}"


@dataclass(frozen=True)
class ProbeAnswer:
    """The answer to the single request sent before a scenario is loaded."""

    status: int
    digit: int | None = None
    confidence: float | None = None
    predictions: int | None = None
    """For a batch: how many predictions came back."""
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the probe got a 2xx answer."""
        return 200 <= self.status < 300


def scenarios_for(service: ServiceSpec, images: BenchImages) -> list[Scenario]:
    """The scenarios a service supports: each image as multipart, raw body and batch if offered."""
    scenarios = [_single(image, "multipart") for image in images.single]
    if service.raw_body:
        scenarios += [_single(image, "raw") for image in images.single]
    if service.batch and images.batch:
        scenarios.append(
            Scenario(
                image=f"batch{len(images.batch)}",
                upload="multipart",
                path="/predict/batch",
                script=MULTIPART_SCRIPT,
                script_args=("image/png", *(str(path) for path in images.batch)),
                images_per_request=len(images.batch),
            )
        )
    return scenarios


def _single(image: BenchImage, upload: str) -> Scenario:
    return Scenario(
        image=image.name,
        upload=upload,
        path="/predict",
        script=MULTIPART_SCRIPT if upload == "multipart" else RAW_BODY_SCRIPT,
        script_args=(image.content_type, str(image.path)),
    )


def multipart_body(content_type: str, paths: Sequence[Path]) -> tuple[bytes, str]:
    """A multipart/form-data body with one ``file`` part per path, and its Content-Type."""
    parts = []
    for path in paths:
        parts.append(
            (
                f"--{_PROBE_BOUNDARY}\r\n"
                f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + path.read_bytes()
            + b"\r\n"
        )
    parts.append(f"--{_PROBE_BOUNDARY}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={_PROBE_BOUNDARY}"


def probe(port: int, scenario: Scenario) -> ProbeAnswer:
    """Send the scenario's request once and read the answer."""
    content_type, *files = scenario.script_args
    paths = [Path(name) for name in files]
    if scenario.upload == "multipart":
        body, header = multipart_body(content_type, paths)
    else:
        body, header = paths[0].read_bytes(), content_type
    status, answer = http_request(
        port, "POST", scenario.path, body=body, headers={"Content-Type": header}
    )
    try:
        document = json.loads(answer)
    except ValueError:
        return ProbeAnswer(status=status, detail=answer[:200].decode(errors="replace"))
    if not 200 <= status < 300:
        return ProbeAnswer(status=status, detail=json.dumps(document)[:200])
    if scenario.images_per_request > 1:
        listed = document.get("predictions", document) if isinstance(document, dict) else document
        return ProbeAnswer(
            status=status, predictions=len(listed) if isinstance(listed, list) else None
        )
    if isinstance(document, dict) and isinstance(document.get("digit"), int):
        return ProbeAnswer(
            status=status,
            digit=document["digit"],
            confidence=float(document.get("confidence", float("nan"))),
        )
    return ProbeAnswer(status=status, detail="answer has no digit: " + json.dumps(document)[:200])
