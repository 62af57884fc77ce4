"""The Open Inference Protocol with a real client against the real server: ``tritonclient[http]``
(NVIDIA's client for Triton, which any KServe V2 server should satisfy) calls ``mnist-serve``
over a socket: health, metadata, readiness, and inference with FP32 and BYTES inputs, binary and
JSON tensors, selected outputs, classification, errors and the API key.

kserve's ``InferenceRESTClient`` is not used: the ``kserve`` package pins an older protobuf,
pandas, python-dateutil and psutil, which would move the training environment's pins.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Final

import numpy as np
import pytest
import tritonclient.http as triton
from numpy.typing import NDArray
from tritonclient.utils import InferenceServerException

from app.model_contract import to_model_input
from bench.servers import LOOPBACK, ServerProcess
from tests.conftest import EncodeImage
from tests.reliability.conftest import StartService

Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]

MODEL: Final = "mnist_dense"
API_KEY: Final = "triton-client-key-0123456789"


@pytest.fixture(scope="module")
def server(start_service: StartService) -> ServerProcess:
    return start_service()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[triton.InferenceServerClient]:
    triton_client = triton.InferenceServerClient(url=f"{LOOPBACK}:{server.port}")
    yield triton_client
    triton_client.close()


@pytest.fixture(scope="module")
def version(client: triton.InferenceServerClient) -> str:
    (served,) = client.get_model_metadata(MODEL)["versions"]
    assert isinstance(served, str)
    return served


@pytest.fixture(scope="module")
def digits(mnist_sample: Sample) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    images, labels = mnist_sample
    return images[:32], labels[:32]


def fp32_input(values: NDArray[np.float32], *, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("input", list(values.shape), "FP32")
    tensor.set_data_from_numpy(values, binary_data=binary)
    return tensor


def test_server_is_live_and_ready_and_describes_itself(
    client: triton.InferenceServerClient,
) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "mnist-digit-service"
    assert set(metadata["extensions"]) == {"binary_tensor_data", "classification"}


def test_model_metadata_and_readiness_with_and_without_version(
    client: triton.InferenceServerClient, version: str
) -> None:
    metadata = client.get_model_metadata(MODEL, model_version=version)

    assert metadata["name"] == MODEL
    assert {tensor["name"]: tensor["shape"] for tensor in metadata["inputs"]} == {
        "image": [-1],
        "input": [-1, 28, 28, 1],
    }
    assert [tensor["name"] for tensor in metadata["outputs"]] == [
        "probabilities",
        "digit",
        "confidence",
        "is_digit",
    ]
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, model_version=version)
    assert not client.is_model_ready("resnet50")
    assert not client.is_model_ready(MODEL, model_version="0")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_fp32_gives_the_digits(
    client: triton.InferenceServerClient,
    digits: tuple[NDArray[np.uint8], NDArray[np.int64]],
    binary: bool,
) -> None:
    images, labels = digits
    values = to_model_input(images)
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary)
        for name in ("probabilities", "digit", "confidence", "is_digit")
    ]

    result = client.infer(
        MODEL, [fp32_input(values, binary=binary)], outputs=outputs, request_id="batch-1"
    )

    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (32, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert result.as_numpy("digit").tolist() == labels.tolist()
    np.testing.assert_array_equal(result.as_numpy("confidence"), probabilities.max(axis=1))
    is_digit = result.as_numpy("is_digit")
    assert is_digit.dtype == np.bool_ and is_digit.shape == (32,)
    assert is_digit.mean() >= 0.9  # real MNIST digits
    assert result.get_response()["id"] == "batch-1"


def test_infer_without_outputs_returns_all_in_binary(
    client: triton.InferenceServerClient,
    digits: tuple[NDArray[np.uint8], NDArray[np.int64]],
    version: str,
) -> None:
    images, labels = digits
    values = to_model_input(images[:4]).reshape(4, 784)

    result = client.infer(MODEL, [fp32_input(values, binary=True)], model_version=version)

    response = result.get_response()
    assert response["model_version"] == version
    assert all("binary_data_size" in output["parameters"] for output in response["outputs"])
    assert result.as_numpy("digit").tolist() == labels[:4].tolist()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json-base64"])
def test_infer_image_files_answers_as_predict(
    client: triton.InferenceServerClient,
    server: ServerProcess,
    digits: tuple[NDArray[np.uint8], NDArray[np.int64]],
    encode: EncodeImage,
    binary: bool,
) -> None:
    images, labels = digits
    files = [encode(image) for image in images[:6]]
    # In JSON, tritonclient sends each element as a string: the files go as base64.
    elements = files if binary else [base64.b64encode(data) for data in files]
    tensor = triton.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(np.array(elements, dtype=np.object_), binary_data=binary)
    outputs = [triton.InferRequestedOutput("digit", binary_data=binary)]

    result = client.infer(MODEL, [tensor], outputs=outputs)

    assert result.as_numpy("digit").tolist() == labels[:6].tolist()
    assert [output["name"] for output in result.get_response()["outputs"]] == ["digit"]


def test_infer_one_image_matches_predict(
    client: triton.InferenceServerClient,
    server: ServerProcess,
    digits: tuple[NDArray[np.uint8], NDArray[np.int64]],
    encode: EncodeImage,
) -> None:
    import httpx

    png = encode(digits[0][7])
    tensor = triton.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([png], dtype=np.object_))

    result = client.infer(MODEL, [tensor])
    predicted = httpx.post(
        f"http://{LOOPBACK}:{server.port}/predict",
        content=png,
        headers={"Content-Type": "image/png"},
    ).json()

    np.testing.assert_array_equal(
        result.as_numpy("probabilities")[0], np.array(predicted["probabilities"], np.float32)
    )
    assert result.as_numpy("digit").tolist() == [predicted["digit"]]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_classification_gives_the_top_classes(
    client: triton.InferenceServerClient,
    digits: tuple[NDArray[np.uint8], NDArray[np.int64]],
    binary: bool,
) -> None:
    images, labels = digits
    values = to_model_input(images[:5])
    output = triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=3)

    result = client.infer(MODEL, [fp32_input(values, binary=True)], outputs=[output])

    classes = result.as_numpy("probabilities")
    assert classes.shape == (5, 3)
    for row, label in zip(classes, labels[:5], strict=True):
        entries = [
            (entry.decode() if isinstance(entry, bytes) else str(entry)).split(":") for entry in row
        ]
        assert int(entries[0][1]) == label
        scores = [float(score) for score, _ in entries]
        assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("model", "version", "fragment"),
    [("resnet50", "", "not served"), (MODEL, "000000000000", "no version")],
)
def test_unknown_model_or_version_raises_404(
    client: triton.InferenceServerClient, model: str, version: str, fragment: str
) -> None:
    values = np.zeros((1, 784), np.float32)

    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, [fp32_input(values, binary=True)], model_version=version)

    assert raised.value.status() == "404"
    assert fragment in str(raised.value.message())


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (np.full((1, 784), 2.0, np.float32), "[0, 1]"),
        (np.zeros((1, 28, 28, 3), np.float32), "shape"),
    ],
    ids=["out-of-range", "bad-shape"],
)
def test_bad_input_raises_400_with_the_reason(
    client: triton.InferenceServerClient, values: NDArray[np.float32], fragment: str
) -> None:
    with pytest.raises(InferenceServerException) as raised:
        client.infer(MODEL, [fp32_input(values, binary=True)])

    assert raised.value.status() == "400"
    assert fragment in str(raised.value.message())


def test_api_key_protects_infer(start_service: StartService) -> None:
    keyed = start_service(API_KEY=API_KEY)
    keyed_client = triton.InferenceServerClient(url=f"{LOOPBACK}:{keyed.port}")
    values = np.zeros((1, 784), np.float32)
    try:
        assert keyed_client.is_server_ready()
        assert keyed_client.get_model_metadata(MODEL)["name"] == MODEL
        with pytest.raises(InferenceServerException) as raised:
            keyed_client.infer(MODEL, [fp32_input(values, binary=True)])
        result = keyed_client.infer(
            MODEL, [fp32_input(values, binary=True)], headers={"X-API-Key": API_KEY}
        )
    finally:
        keyed_client.close()

    assert raised.value.status() == "401"
    assert result.as_numpy("digit").shape == (1,)
