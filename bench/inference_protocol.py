"""The Open Inference Protocol's targets, measured against a real ``mnist-serve`` (one worker):

(a) accuracy: the 10,000 MNIST test digits as FP32 batches of 1,000 through
    ``POST /v2/models/mnist_dense/infer`` with binary tensors give exactly the offline accuracy
    of the served model (its numpy network run in this process on the same values);
(b) throughput: FP32 batches of 64 with binary tensors, driven by ``wrk`` (4 connections), at
    least 20,000 images/s;
(c) cost: one 28 x 28 PNG through ``/infer`` (BYTES, binary, the default outputs as tritonclient
    asks for them) costs at most 1.3 times the server CPU of the same PNG through
    ``POST /predict`` (the raw body). The server's CPU time (the nanosecond run time of each of
    its threads, ``/proc/<pid>/task/<tid>/schedstat``) is read around blocks of 200 sequential
    requests on a kept-alive connection, the two endpoints' blocks alternating ten times per
    round, so that other programs' load falls on both alike.

(b) and (c) run ``--repeats`` times; the report gives the median and the spread. It writes
``docs/inference-protocol.md``.

    python -m bench.inference_protocol                 # about two minutes
    python -m bench.inference_protocol --repeats 5 --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.inference.dense_network import use_single_threaded_blas
from app.inference.serving_model import load_serving_model
from app.model_contract import to_model_input
from bench.images import load_test_digits
from bench.process_stats import session_cpu_seconds, session_processes
from bench.servers import LOOPBACK, ServerProcess, mnist_serve_spec
from bench.wrk_load import WRK_SCRIPTS, LoadResult, run_wrk

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
PROTOCOL_SCRIPT: Final = WRK_SCRIPTS / "inference_protocol.lua"
INFER_PATH: Final = "/v2/models/mnist_dense/infer"
HEADER_LENGTH_HEADER: Final = "Inference-Header-Content-Length"

ACCURACY_BATCH: Final = 1000
THROUGHPUT_BATCH: Final = 64
THROUGHPUT_CONNECTIONS: Final = 4
THROUGHPUT_TARGET: Final = 20_000.0
CPU_RATIO_TARGET: Final = 1.3


def binary_request(
    inputs: Sequence[tuple[str, str, Sequence[int], bytes]], parameters: dict[str, Any]
) -> tuple[bytes, int]:
    """An inference request with binary tensors: (name, datatype, shape, raw bytes) per input
    and the request's ``parameters``; returns the body and the JSON header's length."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": list(shape),
                    "parameters": {"binary_data_size": len(raw)},
                }
                for name, datatype, shape, raw in inputs
            ],
            "parameters": parameters,
        }
    ).encode()
    return header + b"".join(raw for *_, raw in inputs), len(header)


def fp32_request(
    values: NDArray[np.float32], outputs: Sequence[str] | None = None
) -> tuple[bytes, int]:
    """An ``input`` (FP32) request of ``values``; all outputs in binary unless ``outputs`` names
    the ones wanted (also binary)."""
    body, header_length = binary_request(
        [("input", "FP32", values.shape, values.astype("<f4").tobytes())],
        {"binary_data_output": True},
    )
    if outputs is None:
        return body, header_length
    header = json.loads(body[:header_length])
    header["outputs"] = [{"name": name, "parameters": {"binary_data": True}} for name in outputs]
    encoded = json.dumps(header).encode()
    return encoded + body[header_length:], len(encoded)


def png_request(png: bytes) -> tuple[bytes, int]:
    """An ``image`` (BYTES) request of one PNG, the element length-prefixed, as tritonclient
    sends it with no outputs named (all outputs in binary)."""
    element = len(png).to_bytes(4, "little") + png
    return binary_request([("image", "BYTES", [1], element)], {"binary_data_output": True})


def read_binary_output(response: bytes, header_length: int, name: str) -> NDArray[Any]:
    """Output ``name`` of a binary inference response."""
    header = json.loads(response[:header_length])
    offset = header_length
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        if output["name"] == name:
            dtype = {"FP32": "<f4", "INT64": "<i8"}[output["datatype"]]
            raw = response[offset : offset + size]
            return np.frombuffer(raw, dtype=dtype).reshape(output["shape"])
        offset += size
    raise KeyError(name)


def infer(port: int, body: bytes, header_length: int) -> tuple[bytes, int]:
    """POST one binary inference request; the response body and its JSON header's length."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
    try:
        headers = {HEADER_LENGTH_HEADER: str(header_length)}
        connection.request("POST", INFER_PATH, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        if response.status != 200:
            raise RuntimeError(f"/infer answered {response.status}: {content[:300]!r}")
        return content, int(response.headers[HEADER_LENGTH_HEADER])
    finally:
        connection.close()


@dataclass(frozen=True)
class AccuracyResult:
    digits: int
    source: str
    served_accuracy: float
    offline_accuracy: float
    stored_accuracy: float
    differing_answers: int
    max_probability_difference: float


def measure_accuracy(port: int) -> AccuracyResult:
    """(a): the MNIST test digits through ``/infer`` and through the network in-process."""
    images, labels, source = load_test_digits(10_000, REPO_ROOT)
    values = to_model_input(images)
    model = load_serving_model(REPO_ROOT / "models")
    # As the server runs it, so that the sums are added in the same order.
    use_single_threaded_blas()
    served_probabilities = []
    offline_probabilities = []
    for start in range(0, len(values), ACCURACY_BATCH):
        batch = values[start : start + ACCURACY_BATCH]
        response, header_length = infer(port, *fp32_request(batch, ["probabilities"]))
        served_probabilities.append(read_binary_output(response, header_length, "probabilities"))
        offline_probabilities.append(model.network.predict_probabilities(batch))
    served = np.concatenate(served_probabilities)
    offline = np.concatenate(offline_probabilities)
    return AccuracyResult(
        digits=len(labels),
        source=source,
        served_accuracy=float(np.mean(served.argmax(axis=1) == labels)),
        offline_accuracy=float(np.mean(offline.argmax(axis=1) == labels)),
        stored_accuracy=model.evaluation.test.accuracy,
        differing_answers=int(np.sum(served.argmax(axis=1) != offline.argmax(axis=1))),
        max_probability_difference=float(np.max(np.abs(served - offline))),
    )


CPU_BLOCK_REQUESTS: Final = 200
CPU_BLOCKS: Final = 10


def session_run_seconds(session_id: int) -> float:
    """CPU time the threads of a session's processes have run, in seconds, to the nanosecond
    (``schedstat``; ``stat``'s ticks of 10 ms are too coarse for blocks of a few hundred
    requests)."""
    total_ns = 0
    for process in session_processes(session_id):
        for task in Path(f"/proc/{process.pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total_ns += int(task.read_text().split()[0])
    return total_ns / 1e9


class KeptAliveClient:
    """Sequential POSTs of one prepared request over one kept-alive connection."""

    def __init__(self, port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
        self._connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        self._path, self._body, self._headers = path, body, headers

    def send(self, count: int) -> None:
        for _ in range(count):
            self._connection.request("POST", self._path, body=self._body, headers=self._headers)
            response = self._connection.getresponse()
            content = response.read()
            if response.status != 200:
                raise RuntimeError(f"{self._path} answered {response.status}: {content[:200]!r}")

    def close(self) -> None:
        self._connection.close()


def measure_cpu_per_request(
    server: ServerProcess, png: bytes, protocol_body: bytes, header_length: int
) -> tuple[float, float, float]:
    """(c), one round: server CPU µs per request of ``POST /predict`` and of ``/infer`` with
    the same PNG, and their ratio."""
    predict = KeptAliveClient(server.port, "/predict", png, {"Content-Type": "image/png"})
    protocol = KeptAliveClient(
        server.port,
        INFER_PATH,
        protocol_body,
        {HEADER_LENGTH_HEADER: str(header_length), "Content-Type": "application/octet-stream"},
    )
    seconds = {"predict": 0.0, "infer": 0.0}
    try:
        for client in (predict, protocol):
            client.send(20)
        for _ in range(CPU_BLOCKS):
            for name, client in (("predict", predict), ("infer", protocol)):
                before = session_run_seconds(server.pid)
                client.send(CPU_BLOCK_REQUESTS)
                seconds[name] += session_run_seconds(server.pid) - before
    finally:
        predict.close()
        protocol.close()
    requests = CPU_BLOCKS * CPU_BLOCK_REQUESTS
    predict_us, infer_us = (seconds[name] / requests * 1e6 for name in ("predict", "infer"))
    return predict_us, infer_us, infer_us / predict_us


def _wrk(
    server: ServerProcess,
    path: str,
    script: Path,
    args: Sequence[str],
    connections: int,
    seconds: int,
) -> LoadResult:
    result = run_wrk(
        f"http://127.0.0.1:{server.port}{path}",
        script=script,
        script_args=args,
        concurrency=connections,
        duration_s=seconds,
        timeout_s=10,
        client_cpus=None,
        server_cpu_seconds=lambda: session_cpu_seconds(server.pid),
    )
    if result.errors:
        raise RuntimeError(f"{path}: {result.status_counts} {result.socket_errors}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (b) and (c)")
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "inference-protocol.md")
    arguments = parser.parse_args(argv)

    return run(arguments.repeats, arguments.seconds, arguments.output)


def run(repeats: int, seconds: int, output: Path) -> int:
    """Start the server, measure (a), then (b) and (c) ``repeats`` times; write the report."""
    images, _, _ = load_test_digits(THROUGHPUT_BATCH, REPO_ROOT)
    work = Path(tempfile.mkdtemp(prefix="inference-protocol-bench-"))
    batch_body, batch_header = fp32_request(to_model_input(images[:THROUGHPUT_BATCH]))
    batch_file = work / "batch64.bin"
    batch_file.write_bytes(batch_body)
    batch_arguments = [str(batch_header), str(batch_file)]
    png = _png(images[0])
    png_body, png_header = png_request(png)

    spec = mnist_serve_spec(
        "mnist-serve, Open Inference Protocol bench", model_dir=REPO_ROOT / "models"
    )
    with ServerProcess(spec, cwd=REPO_ROOT, log_path=work / "server.log") as server:
        server.wait_ready(timeout_s=60)
        print("(a) accuracy ...", file=sys.stderr)
        accuracy = measure_accuracy(server.port)
        _wrk(server, INFER_PATH, PROTOCOL_SCRIPT, batch_arguments, THROUGHPUT_CONNECTIONS, 2)
        throughputs: list[float] = []
        ratios: list[tuple[float, float, float]] = []
        for round_number in range(repeats):
            print(f"round {round_number + 1}/{repeats} ...", file=sys.stderr)
            batches = _wrk(
                server,
                INFER_PATH,
                PROTOCOL_SCRIPT,
                batch_arguments,
                THROUGHPUT_CONNECTIONS,
                seconds,
            )
            throughputs.append(batches.requests_per_s * THROUGHPUT_BATCH)
            ratios.append(measure_cpu_per_request(server, png, png_body, png_header))
    report = _report(accuracy, throughputs, ratios, repeats, seconds)
    output.write_text(report)
    print(report)
    met = (
        accuracy.served_accuracy == accuracy.offline_accuracy
        and statistics.median(throughputs) >= THROUGHPUT_TARGET
        and statistics.median(ratio for *_, ratio in ratios) <= CPU_RATIO_TARGET
    )
    return 0 if met else 1


def _png(digit: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    return buffer.getvalue()


def _spread(values: Sequence[float], fmt: str) -> str:
    """The median of ``values`` and their range, each formatted with ``fmt``."""
    median, low, high = (fmt.format(value) for value in (statistics.median(values), *_ends(values)))
    return f"{median} (min {low}, max {high})"


def _ends(values: Sequence[float]) -> tuple[float, float]:
    return min(values), max(values)


def _report(
    accuracy: AccuracyResult,
    throughputs: list[float],
    ratios: list[tuple[float, float, float]],
    repeats: int,
    seconds: int,
) -> str:
    ratio_values = [ratio for *_, ratio in ratios]
    rows = "\n".join(
        f"| {index + 1} | {throughput:,.0f} | {predict:.0f} | {protocol:.0f} | {ratio:.2f} |"
        for index, (throughput, (predict, protocol, ratio)) in enumerate(
            zip(throughputs, ratios, strict=True)
        )
    )
    return f"""# Open Inference Protocol: measurements

Written by `python -m bench.inference_protocol --repeats {repeats} --seconds {seconds}` on
{time.strftime("%Y-%m-%d")}: one `mnist-serve` worker on 127.0.0.1 (committed model), `wrk` on
the same machine ({_cpu_count()} CPUs, shared with other jobs while this ran). The routes and
their format are described in the README ("Open Inference Protocol").

## (a) Accuracy through `/infer`

The {accuracy.digits:,} digits of the {accuracy.source}, scaled by `to_model_input` (the
contract's 1/255) and sent as FP32 `[1000,28,28,1]` binary tensors, `probabilities` asked for in
binary:

| | Accuracy |
| --- | --- |
| Served through `/infer` | {accuracy.served_accuracy:.4f} |
| Offline: the served network in-process, same values | {accuracy.offline_accuracy:.4f} |
| Stored evaluation (`models/metrics.json`, Keras at training) | {accuracy.stored_accuracy:.4f} |

Answers that differ between served and offline: {accuracy.differing_answers}; largest
difference of a probability: {accuracy.max_probability_difference:.3g}. Target: served equals
offline — {"met" if accuracy.served_accuracy == accuracy.offline_accuracy else "NOT met"}.

## (b) Throughput and (c) CPU per request

Each round: FP32 `[64,28,28,1]` binary batches with all outputs in binary, {THROUGHPUT_CONNECTIONS}
connections for {seconds} s with `wrk` (b); then one 28 x 28 PNG (the first test digit), as
the raw body of `POST /predict` and as a BYTES `[1]` binary tensor to `/infer` with all outputs
in binary, {CPU_BLOCKS} blocks of {CPU_BLOCK_REQUESTS} sequential requests each, alternating (c).
Server CPU is the run time of the server's threads (`/proc/<pid>/task/<tid>/schedstat`) around
each block, divided by the requests answered.

| Round | (b) images/s | (c) `/predict` µs CPU | (c) `/infer` µs CPU | (c) ratio |
| --- | --- | --- | --- | --- |
{rows}

- (b) median {_spread(throughputs, "{:,.0f}")} images/s; target ≥ {THROUGHPUT_TARGET:,.0f}.
- (c) median ratio {_spread(ratio_values, "{:.2f}")}; target ≤ {CPU_RATIO_TARGET}.
"""


def _cpu_count() -> int:
    return os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
