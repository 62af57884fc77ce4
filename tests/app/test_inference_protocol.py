"""The Open Inference Protocol routes (``/v2``) through the app: metadata, health, inference with
FP32 and BYTES inputs in JSON and binary, selected and binary outputs, classification, and the
protocol's errors. The real clients (tritonclient) are in
``tests/reliability/test_inference_protocol_clients.py``."""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from collections.abc import Iterator, Sequence
from typing import Any, Final

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from app.api.deps import services_of
from app.api.inference_protocol.codec import ImageFiles, ModelInputs, decode_request, top_classes
from app.core.config import Settings
from app.errors import InputError
from app.main import create_app
from app.model_contract import to_model_input
from tests.conftest import EncodeImage

Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]

INFER: Final = "/v2/models/mnist_dense/infer"
HEADER_LENGTH: Final = "Inference-Header-Content-Length"


def model_version(client: TestClient) -> str:
    version: str = client.get("/model").json()["sha256"][:12]
    return version


def fp32_input(values: NDArray[np.float32], shape: Sequence[int] | None = None) -> dict[str, Any]:
    return {
        "name": "input",
        "datatype": "FP32",
        "shape": list(shape or values.shape),
        "data": values.ravel().tolist(),
    }


def image_input(files: Sequence[bytes]) -> dict[str, Any]:
    return {
        "name": "image",
        "datatype": "BYTES",
        "shape": [len(files)],
        "data": [base64.b64encode(data).decode() for data in files],
    }


def binary_body(header: dict[str, Any], *tensors: bytes) -> tuple[bytes, dict[str, str]]:
    """A body with binary tensors: the JSON header, then the tensors; and its header."""
    encoded = json.dumps(header).encode()
    return encoded + b"".join(tensors), {HEADER_LENGTH: str(len(encoded))}


def length_prefixed(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def binary_outputs(response: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The JSON header of a binary response and each binary output's bytes."""
    header_length = int(response.headers[HEADER_LENGTH])
    header = json.loads(response.content[:header_length])
    offset = header_length
    tensors = {}
    for output in header["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            tensors[output["name"]] = response.content[offset : offset + size]
            offset += size
    assert offset == len(response.content)
    return header, tensors


def assert_protocol_error(response: Any, status_code: int, fragment: str = "") -> None:
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert isinstance(body["error"], str)
    assert fragment in body["error"]


@pytest.fixture(scope="module")
def digits(mnist_sample: Sample) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    images, labels = mnist_sample
    return to_model_input(images[:16]), labels[:16]


def test_server_metadata_names_the_service_and_its_extensions(client: TestClient) -> None:
    response = client.get("/v2")

    assert response.status_code == 200
    assert response.json() == {
        "name": "mnist-digit-service",
        "version": client.app.version,  # type: ignore[attr-defined]
        "extensions": ["binary_tensor_data", "classification"],
    }


def test_health_live_and_ready_are_200(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_health_ready_is_503_while_not_ready(client: TestClient) -> None:
    services = services_of(client.app)  # type: ignore[arg-type]
    services.ready = False
    try:
        assert_protocol_error(client.get("/v2/health/ready"), 503, "not ready")
        assert_protocol_error(client.get("/v2/models/mnist_dense/ready"), 503, "not ready")
    finally:
        services.ready = True


def test_model_metadata_describes_inputs_outputs_and_version(client: TestClient) -> None:
    version = model_version(client)

    for path in ("/v2/models/mnist_dense", f"/v2/models/mnist_dense/versions/{version}"):
        response = client.get(path)

        assert response.status_code == 200
        assert response.json() == {
            "name": "mnist_dense",
            "versions": [version],
            "platform": "numpy",
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [-1]},
                {"name": "input", "datatype": "FP32", "shape": [-1, 28, 28, 1]},
            ],
            "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                {"name": "digit", "datatype": "INT64", "shape": [-1]},
                {"name": "confidence", "datatype": "FP32", "shape": [-1]},
                {"name": "is_digit", "datatype": "BOOL", "shape": [-1]},
            ],
        }


def test_model_ready_with_and_without_version(client: TestClient) -> None:
    version = model_version(client)

    for path in (
        "/v2/models/mnist_dense/ready",
        f"/v2/models/mnist_dense/versions/{version}/ready",
    ):
        assert client.get(path).json() == {"name": "mnist_dense", "ready": True}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/resnet"),
        ("GET", "/v2/models/resnet/ready"),
        ("GET", "/v2/models/mnist_dense/versions/1"),
        ("GET", "/v2/models/mnist_dense/versions/1/ready"),
        ("POST", "/v2/models/resnet/infer"),
        ("POST", "/v2/models/mnist_dense/versions/000000000000/infer"),
    ],
)
def test_unknown_model_or_version_is_404(client: TestClient, method: str, path: str) -> None:
    assert_protocol_error(client.request(method, path, content=b"{}"), 404, "")


def test_unknown_v2_route_is_a_protocol_404(client: TestClient) -> None:
    assert_protocol_error(client.get("/v2/nothing"), 404, "no such endpoint")


def test_infer_fp32_json_gives_the_networks_answer_and_echoes_the_id(
    client: TestClient, digits: tuple[NDArray[np.float32], NDArray[np.int64]]
) -> None:
    values, _ = digits
    expected = services_of(client.app).classifier.model.network.predict_probabilities(values)  # type: ignore[arg-type,union-attr]

    response = client.post(INFER, json={"id": "req-7", "inputs": [fp32_input(values)]})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["model_name"] == "mnist_dense"
    assert body["model_version"] == model_version(client)
    assert body["id"] == "req-7"
    outputs = {output["name"]: output for output in body["outputs"]}
    assert [output["name"] for output in body["outputs"]] == [
        "probabilities",
        "digit",
        "confidence",
        "is_digit",
    ]
    assert outputs["is_digit"]["datatype"] == "BOOL"
    assert outputs["is_digit"]["data"] == [
        bool(row.max() >= services_of(client.app).classifier.digit_threshold)  # type: ignore[union-attr]
        for row in expected
    ]
    assert outputs["probabilities"]["datatype"] == "FP32"
    assert outputs["probabilities"]["shape"] == [16, 10]
    probabilities = np.array(outputs["probabilities"]["data"], np.float32).reshape(16, 10)
    np.testing.assert_array_equal(probabilities, expected)
    assert outputs["digit"] == {
        "name": "digit",
        "datatype": "INT64",
        "shape": [16],
        "data": expected.argmax(axis=1).tolist(),
    }
    np.testing.assert_array_equal(
        np.array(outputs["confidence"]["data"], np.float32), expected.max(axis=1)
    )


@pytest.mark.parametrize("shape", [[4, 28, 28, 1], [4, 28, 28], [4, 784]])
def test_infer_fp32_takes_each_documented_shape(
    client: TestClient, digits: tuple[NDArray[np.float32], NDArray[np.int64]], shape: list[int]
) -> None:
    values, labels = digits
    request = {"inputs": [fp32_input(values[:4], shape)], "outputs": [{"name": "digit"}]}

    response = client.post(INFER, json=request)

    assert response.status_code == 200
    (output,) = response.json()["outputs"]
    assert output["data"] == labels[:4].tolist()


def test_infer_fp32_nested_json_data_is_read_row_major(
    client: TestClient, digits: tuple[NDArray[np.float32], NDArray[np.int64]]
) -> None:
    values, labels = digits
    nested = {**fp32_input(values[:2]), "data": values[:2].reshape(2, 784).tolist()}

    response = client.post(INFER, json={"inputs": [nested], "outputs": [{"name": "digit"}]})

    assert response.json()["outputs"][0]["data"] == labels[:2].tolist()


def test_infer_fp32_binary_in_and_out_matches_json(
    client: TestClient, digits: tuple[NDArray[np.float32], NDArray[np.int64]]
) -> None:
    values, _ = digits
    header = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [16, 28, 28, 1],
                "parameters": {"binary_data_size": values.nbytes},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    body, headers = binary_body(header, values.astype("<f4").tobytes())

    response = client.post(INFER, content=body, headers=headers)
    json_answer = client.post(INFER, json={"inputs": [fp32_input(values)]}).json()

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    head, tensors = binary_outputs(response)
    assert [output["parameters"]["binary_data_size"] for output in head["outputs"]] == [
        640,
        128,
        64,
        16,
    ]
    expected = {output["name"]: output["data"] for output in json_answer["outputs"]}
    assert np.frombuffer(tensors["is_digit"], "?").tolist() == expected["is_digit"]
    np.testing.assert_array_equal(
        np.frombuffer(tensors["probabilities"], "<f4"),
        np.array(expected["probabilities"], np.float32),
    )
    assert np.frombuffer(tensors["digit"], "<i8").tolist() == expected["digit"]
    np.testing.assert_array_equal(
        np.frombuffer(tensors["confidence"], "<f4"), np.array(expected["confidence"], np.float32)
    )


def test_infer_image_json_base64_answers_as_predict_batch(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, _ = mnist_sample
    files = [encode(images[index]) for index in range(3)] + [encode(images[3], "JPEG", quality=95)]
    batch = client.post(
        "/predict/batch", files=[("file", (f"{index}", data)) for index, data in enumerate(files)]
    ).json()
    predicted = [result["prediction"] for result in batch["results"]]

    response = client.post(INFER, json={"inputs": [image_input(files)]})

    assert response.status_code == 200
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["digit"]["data"] == [answer["digit"] for answer in predicted]
    assert outputs["confidence"]["data"] == [answer["confidence"] for answer in predicted]
    assert outputs["probabilities"]["data"] == [
        probability for answer in predicted for probability in answer["probabilities"]
    ]


def test_infer_one_image_answers_as_predict(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    png = encode(mnist_sample[0][5])
    predicted = client.post("/predict", content=png, headers={"Content-Type": "image/png"}).json()

    response = client.post(INFER, json={"inputs": [image_input([png])]})

    outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
    assert outputs == {
        "probabilities": predicted["probabilities"],
        "digit": [predicted["digit"]],
        "confidence": [predicted["confidence"]],
        "is_digit": [predicted["is_digit"]],
    }


def test_infer_image_binary_length_prefixed(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    images, labels = mnist_sample
    files = [encode(images[index]) for index in range(5)]
    raw = length_prefixed(*files)
    header = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [5],
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": "digit", "parameters": {"binary_data": True}}, {"name": "confidence"}],
    }
    body, headers = binary_body(header, raw)

    response = client.post(INFER, content=body, headers=headers)

    assert response.status_code == 200
    head, tensors = binary_outputs(response)
    assert np.frombuffer(tensors["digit"], "<i8").tolist() == labels[:5].tolist()
    confidence = head["outputs"][1]
    assert confidence["name"] == "confidence"
    assert "parameters" not in confidence
    assert len(confidence["data"]) == 5


def test_infer_returns_the_selected_outputs_in_the_order_asked(
    client: TestClient, digits: tuple[NDArray[np.float32], NDArray[np.int64]]
) -> None:
    values, _ = digits
    request = {
        "inputs": [fp32_input(values[:2])],
        "outputs": [{"name": "confidence"}, {"name": "digit"}],
    }

    response = client.post(INFER, json=request)

    assert [output["name"] for output in response.json()["outputs"]] == ["confidence", "digit"]


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("class_count", [1, 3, 10, 25])
def test_infer_classification_gives_triton_style_strings(
    client: TestClient,
    digits: tuple[NDArray[np.float32], NDArray[np.int64]],
    class_count: int,
    binary: bool,
) -> None:
    values, labels = digits
    request = {
        "inputs": [fp32_input(values[:3])],
        "outputs": [
            {
                "name": "probabilities",
                "parameters": {"classification": class_count, "binary_data": binary},
            }
        ],
    }

    response = client.post(INFER, content=json.dumps(request))

    assert response.status_code == 200
    kept = min(class_count, 10)
    if binary:
        head, tensors = binary_outputs(response)
        raw = tensors["probabilities"]
        strings = []
        while raw:
            (length,) = struct.unpack_from("<I", raw)
            strings.append(raw[4 : 4 + length].decode())
            raw = raw[4 + length :]
    else:
        head = response.json()
        strings = head["outputs"][0]["data"]
    output = head["outputs"][0]
    assert output["datatype"] == "BYTES"
    assert output["shape"] == [3, kept]
    assert len(strings) == 3 * kept
    for row in range(3):
        first = strings[row * kept].split(":")
        assert len(first) == 2
        assert int(first[1]) == labels[row]
        scores = [float(text.split(":")[0]) for text in strings[row * kept : (row + 1) * kept]]
        assert scores == sorted(scores, reverse=True)


def test_top_classes_prints_six_decimals_most_probable_first() -> None:
    probabilities = np.array([[0.05, 0.9, 0.05], [0.2, 0.3, 0.5]], np.float32)

    assert top_classes(probabilities, 2).tolist() == [
        ["0.900000:1", "0.050000:0"],
        ["0.500000:2", "0.300000:1"],
    ]


def _too_many_images(limit: int) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [limit + 1], "data": ["AA=="] * 65}
        ]
    }


_FP32_ZEROS: Final = {"name": "input", "datatype": "FP32", "shape": [1, 784], "data": [0.0] * 784}


@pytest.mark.parametrize(
    ("body", "status_code", "fragment"),
    [
        (b"{", 400, "Invalid JSON"),
        (b"[]", 400, "not valid"),
        (b'{"inputs": []}', 400, "inputs"),
        (json.dumps({"inputs": [_FP32_ZEROS, _FP32_ZEROS]}).encode(), 400, "inputs"),
        (
            json.dumps({"inputs": [{**_FP32_ZEROS, "name": "pixels"}]}).encode(),
            400,
            "unknown input",
        ),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "datatype": "FP64"}]}).encode(), 400, "FP32"),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "shape": [1, 783]}]}).encode(), 400, "784"),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "shape": [2, 784]}]}).encode(), 400, "1568"),
        (
            json.dumps({"inputs": [{**_FP32_ZEROS, "shape": [0, 784], "data": []}]}).encode(),
            400,
            "at least one",
        ),
        (
            json.dumps(
                {"inputs": [{**_FP32_ZEROS, "shape": [1, 28, 28, 3], "data": [0] * 2352}]}
            ).encode(),
            400,
            "shape",
        ),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "shape": ["1", 784]}]}).encode(), 400, "shape"),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "data": [1.5] * 784}]}).encode(), 400, "[0, 1]"),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "data": [-0.5] * 784}]}).encode(), 400, "[0, 1]"),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "data": [1e300] * 784}]}).encode(), 400, "[0, 1]"),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "data": ["0"] * 784}]}).encode(), 400, "numbers"),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "data": [True] * 784}]}).encode(), 400, "numbers"),
        (
            json.dumps({"inputs": [{**_FP32_ZEROS, "data": [[0.0], [0.0, 0.0]]}]}).encode(),
            400,
            "regular",
        ),
        (json.dumps({"inputs": [{**_FP32_ZEROS, "data": None}]}).encode(), 400, "neither"),
        (
            json.dumps(
                {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["%%%"]}]}
            ).encode(),
            400,
            "base64",
        ),
        (
            json.dumps(
                {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [1]}]}
            ).encode(),
            400,
            "strings",
        ),
        (
            json.dumps(
                {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["AA=="]}]}
            ).encode(),
            400,
            "1 elements",
        ),
        (
            json.dumps(
                {
                    "inputs": [
                        {"name": "image", "datatype": "BYTES", "shape": [1, 1], "data": ["AA=="]}
                    ]
                }
            ).encode(),
            400,
            "[N]",
        ),
        (
            json.dumps(
                {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [""]}]}
            ).encode(),
            400,
            "element 0",
        ),
        (
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "image",
                            "datatype": "BYTES",
                            "shape": [1],
                            "data": [base64.b64encode(b"not an image").decode()],
                        }
                    ]
                }
            ).encode(),
            400,
            "element 0",
        ),
        (
            json.dumps(
                {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [0.0]}]}
            ).encode(),
            400,
            "BYTES",
        ),
        (json.dumps(_too_many_images(64)).encode(), 413, "at most 64"),
        (
            json.dumps({"inputs": [_FP32_ZEROS], "outputs": [{"name": "logits"}]}).encode(),
            400,
            "unknown output",
        ),
        (
            json.dumps(
                {"inputs": [_FP32_ZEROS], "outputs": [{"name": "digit"}, {"name": "digit"}]}
            ).encode(),
            400,
            "twice",
        ),
        (
            json.dumps(
                {
                    "inputs": [_FP32_ZEROS],
                    "outputs": [{"name": "digit", "parameters": {"classification": 2}}],
                }
            ).encode(),
            400,
            "classification",
        ),
        (
            json.dumps(
                {
                    "inputs": [_FP32_ZEROS],
                    "outputs": [{"name": "probabilities", "parameters": {"classification": 0}}],
                }
            ).encode(),
            400,
            "classification",
        ),
        (
            json.dumps(
                {
                    "inputs": [_FP32_ZEROS],
                    "outputs": [{"name": "digit", "parameters": {"binary_data": "yes"}}],
                }
            ).encode(),
            400,
            "binary_data",
        ),
        (
            json.dumps(
                {"inputs": [{**_FP32_ZEROS, "parameters": {"shared_memory_region": "r"}}]}
            ).encode(),
            400,
            "shared-memory",
        ),
    ],
)
def test_infer_refuses_a_bad_request_in_the_protocols_error_shape(
    client: TestClient, body: bytes, status_code: int, fragment: str
) -> None:
    assert_protocol_error(client.post(INFER, content=body), status_code, fragment)


def _fp32_binary_header(size: int, shape: list[int] | None = None) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": shape or [1, 784],
                "parameters": {"binary_data_size": size},
            }
        ]
    }


@pytest.mark.parametrize(
    ("header", "tensor", "header_length", "fragment"),
    [
        (_fp32_binary_header(3136), bytes(3135), None, "3135 bytes follow"),
        (_fp32_binary_header(3136), bytes(3136), 10_000, "Inference-Header-Content-Length"),
        (_fp32_binary_header(3136), bytes(3136), 5, "not valid"),
        (_fp32_binary_header(3132), bytes(3132), None, "3136 bytes"),
        (_fp32_binary_header(3136), np.full(784, np.nan, "<f4").tobytes(), None, "[0, 1]"),
        (_fp32_binary_header(3136), np.full(784, np.inf, "<f4").tobytes(), None, "[0, 1]"),
        ({"inputs": [_FP32_ZEROS]}, bytes(8), None, "no input declares"),
        (
            {"inputs": [{**_FP32_ZEROS, "parameters": {"binary_data_size": 3136}}]},
            bytes(3136),
            None,
            "both data",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [2],
                        "parameters": {"binary_data_size": 9},
                    }
                ]
            },
            length_prefixed(b"abcde"),
            None,
            "holds 1 elements",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "parameters": {"binary_data_size": 6},
                    }
                ]
            },
            struct.pack("<I", 100) + b"ab",
            None,
            "more than follow",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "parameters": {"binary_data_size": 2},
                    }
                ]
            },
            b"ab",
            None,
            "inside a length",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "parameters": {"binary_data_size": 10},
                    }
                ]
            },
            length_prefixed(b"a", b"b"),
            None,
            "more elements",
        ),
    ],
)
def test_infer_refuses_a_bad_binary_section(
    client: TestClient,
    header: dict[str, Any],
    tensor: bytes,
    header_length: int | None,
    fragment: str,
) -> None:
    body, headers = binary_body(header, tensor)
    if header_length is not None:
        headers[HEADER_LENGTH] = str(header_length)

    assert_protocol_error(client.post(INFER, content=body, headers=headers), 400, fragment)


@pytest.mark.parametrize("value", ["abc", "0", "-4", "1e3"])
def test_infer_refuses_a_malformed_header_length_with_400(client: TestClient, value: str) -> None:
    response = client.post(INFER, content=b"{}", headers={HEADER_LENGTH: value})

    assert_protocol_error(response, 400, HEADER_LENGTH)


def test_infer_refuses_a_compressed_body(client: TestClient) -> None:
    response = client.post(INFER, content=b"{}", headers={"Content-Encoding": "gzip"})

    assert_protocol_error(response, 400, "Content-Encoding")


def test_infer_image_over_the_pixel_limit_is_413(client: TestClient, encode: EncodeImage) -> None:
    huge = encode(np.zeros((7000, 7000), np.uint8))

    response = client.post(INFER, json={"inputs": [image_input([huge])]})

    assert_protocol_error(response, 413, "element 0")


def test_infer_body_over_the_limit_is_413(committed_model_dir: Any) -> None:
    settings = Settings(MODEL_DIR=committed_model_dir, MAX_UPLOAD_BYTES=4096, _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as small_client:

        def chunks() -> Iterator[bytes]:
            yield b'{"inputs": [' + b" " * 8192 + b"]}"

        response = small_client.post(INFER, content=chunks())

    assert_protocol_error(response, 413, "larger than")


def test_predict_errors_keep_the_services_shape(client: TestClient) -> None:
    body = client.post("/predict", content=b"", headers={"Content-Type": "image/png"}).json()

    assert body["error"]["code"] == "empty_upload"


def test_api_key_protects_infer_only(committed_model_dir: Any) -> None:
    key = "inference-protocol-key-0123"
    settings = Settings(MODEL_DIR=committed_model_dir, API_KEY=key, _env_file=None)  # type: ignore[call-arg]
    request = {"inputs": [_FP32_ZEROS], "outputs": [{"name": "digit"}]}
    with TestClient(create_app(settings)) as keyed:
        refused = keyed.post(INFER, json=request)
        wrong = keyed.post(INFER, json=request, headers={"X-API-Key": "x" * 20})
        accepted = keyed.post(INFER, json=request, headers={"X-API-Key": key})
        metadata = keyed.get("/v2/models/mnist_dense")
        ready = keyed.get("/v2/health/ready")

    assert_protocol_error(refused, 401, "API key")
    assert refused.headers["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'
    assert_protocol_error(wrong, 401, "not valid")
    assert accepted.status_code == 200
    assert metadata.status_code == 200
    assert ready.status_code == 200


def test_infer_documents_its_request_body_in_openapi(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v2/models/{model_name}/infer"]["post"]

    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "$defs" not in json.dumps(schema)
    assert schema["properties"]["inputs"]["maxItems"] == 1
    assert {"200", "400", "404", "413"} <= set(operation["responses"])
    assert math.isfinite(len(operation["responses"]))


# The codec alone, on any input, and the use case's model-ready path.

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=30,
)
_TENSORS = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["image", "input", "other"]),
        "datatype": st.sampled_from(["BYTES", "FP32", "INT64", "x"]),
        "shape": st.lists(st.integers(-2, 3000), max_size=6) | _JSON_VALUES,
    },
    optional={
        "data": _JSON_VALUES | st.lists(st.floats(0, 1, width=32), max_size=1600),
        "parameters": st.fixed_dictionaries(
            {}, optional={"binary_data_size": st.integers(-1, 5000) | _JSON_VALUES}
        ),
    },
)
_REQUESTS = st.fixed_dictionaries(
    {"inputs": st.lists(_TENSORS, max_size=2) | _JSON_VALUES},
    optional={
        "id": _JSON_VALUES,
        "outputs": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["probabilities", "digit", "confidence", "x"])},
                optional={
                    "parameters": st.fixed_dictionaries(
                        {},
                        optional={
                            "classification": st.integers(-1, 20) | _JSON_VALUES,
                            "binary_data": _JSON_VALUES,
                        },
                    )
                },
            ),
            max_size=4,
        ),
        "parameters": st.dictionaries(st.just("binary_data_output"), _JSON_VALUES),
    },
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    request=_REQUESTS,
    binary=st.binary(max_size=3200),
    header_length=st.none() | st.integers(-5, 5000).map(str) | st.text(max_size=4),
)
def test_decode_request_answers_any_input_with_a_result_or_an_input_error(
    request: dict[str, Any], binary: bytes, header_length: str | None
) -> None:
    encoded = json.dumps(request).encode()
    if header_length is not None and binary:
        header_length = str(len(encoded))
    try:
        decoded = decode_request(encoded + binary, header_length, max_images=64)
    except InputError:
        return
    assert isinstance(decoded.tensor, ImageFiles | ModelInputs)
    if isinstance(decoded.tensor, ModelInputs):
        assert decoded.tensor.values.dtype == np.float32


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (np.zeros((2, 784), np.float64), "float32"),
        (np.zeros((0, 784), np.float32), "n >= 1"),
        (np.zeros((2, 785), np.float32), "(n, 784)"),
        (np.zeros(784, np.float32), "(n, 28, 28, 1)"),
        (np.full((1, 28, 28), np.nan, np.float32), "[0, 1]"),
        (np.full((1, 28, 28), 255.0, np.float32), "[0, 1]"),
    ],
)
def test_predict_model_inputs_refuses_what_the_network_does_not_take(
    client: TestClient, values: NDArray[Any], fragment: str
) -> None:
    classifier = services_of(client.app).classifier  # type: ignore[arg-type]
    assert classifier is not None

    with pytest.raises(ValueError, match=re.escape(fragment)):
        classifier.predict_model_inputs(values)


def test_predict_model_inputs_equals_the_upload_path_for_the_same_digit(
    client: TestClient, mnist_sample: Sample, encode: EncodeImage
) -> None:
    classifier = services_of(client.app).classifier  # type: ignore[arg-type]
    assert classifier is not None
    prediction = classifier.classify(encode(mnist_sample[0][11]))

    probabilities = classifier.predict_model_inputs(to_model_input(prediction.model_input))

    np.testing.assert_array_equal(probabilities[0], prediction.probabilities)


def test_openapi_documents_every_v2_operation_with_examples(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith("/v2")
        for method, operation in item.items()
    ]

    assert len(operations) == 9
    for path, method, operation in operations:
        assert operation.get("description"), (method, path)
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                reference = content.get("schema", {}).get("$ref", "")
                examples = "example" in content or "examples" in content
                if reference:
                    examples = examples or "examples" in components[reference.rsplit("/", 1)[-1]]
                assert examples, (method, path, status, media_type)
                if status != "200":
                    assert reference.endswith("/InferenceErrorResponse"), (method, path, status)
