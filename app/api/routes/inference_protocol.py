"""The Open Inference Protocol (KServe V2) REST endpoints under ``/v2``: health, server and
model metadata, model readiness and inference, for clients such as ``tritonclient[http]``.

A thin transport: :mod:`app.api.inference_protocol.codec` translates the request into a tensor
and the answer into output tensors; the use case, :class:`~app.classification.DigitClassifier`,
classifies (image files with ``classify_many_async``, exactly as ``POST /predict/batch`` does, or
``classify_async`` for one, as ``POST /predict``; model-ready values with
``predict_model_inputs_async``). An image that cannot be classified fails the request (the
protocol has no per-element errors): 413 for the size limits, else 400.

The model is ``mnist_dense``; its version is the first 12 hex digits of the model file's SHA-256
(``GET /model``); a request may leave the version out. Errors are ``{"error": "<message>"}``
(see :mod:`app.api.errors`). ``router`` is open, like ``/healthz``; ``infer_router`` takes the
API key when one is set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from numpy.typing import NDArray

from app.api.deps import ClassifierDep, ModelDep, ServicesDep, services_of
from app.api.errors import INFERENCE_PROTOCOL_PREFIX, protocol_error_response
from app.api.inference_protocol.codec import (
    HEADER_LENGTH_HEADER,
    INPUT_METADATA,
    OUTPUT_METADATA,
    ImageFiles,
    ModelInputs,
    decode_request,
    encode_response,
)
from app.api.inference_protocol.errors import InferenceRequestError, ModelNotFoundError
from app.api.inference_protocol.schemas import (
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ModelMetadataResponse,
    ModelReadyResponse,
    ReadyResponse,
    ServerMetadataResponse,
    TensorMetadata,
    inline_json_schema,
    protocol_error_doc,
)
from app.classification import DigitClassifier, DigitPrediction
from app.errors import (
    ImageTooLargeError,
    InputError,
    ModelLoadError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServiceBusyError,
    TooManyFilesError,
)
from app.inference.serving_model import ServingModel
from app.model_contract import MODEL_NAME

SERVER_NAME: Final = "mnist-digit-service"
EXTENSIONS: Final = ("binary_tensor_data", "classification")
PLATFORM: Final = "numpy"
"""The network runs as a numpy forward pass of the ``.keras`` file's weights."""

router = APIRouter(prefix=INFERENCE_PROTOCOL_PREFIX, tags=["open inference protocol"])
infer_router = APIRouter(prefix=INFERENCE_PROTOCOL_PREFIX, tags=["open inference protocol"])

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])

_NOT_FOUND: Final = protocol_error_doc(
    "The service serves no model of that name, or not that version.",
    ModelNotFoundError("the model 'resnet' is not served here; it serves 'mnist_dense'"),
)
_NOT_READY: Final = protocol_error_doc(
    "The model is not loaded yet, or the service is shutting down.",
    ModelLoadError("the model is not available"),
)
# Declared so that the documentation shows the protocol's error shape for every 4xx (and FastAPI
# adds no 422: on /v2 a request validation error is a 400).
_OTHER_CLIENT_ERRORS: Final = protocol_error_doc(
    "Any other refused request (405 for a wrong method, for instance).",
    InferenceRequestError("method DELETE is not allowed on /v2/models/mnist_dense"),
)
_MODEL_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    404: _NOT_FOUND,
    503: _NOT_READY,
    "4XX": _OTHER_CLIENT_ERRORS,
}

_INFER_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    "4XX": _OTHER_CLIENT_ERRORS,
    400: protocol_error_doc(
        "Bad JSON, unknown input or output, wrong datatype, shape, element count, encoding or "
        "binary section, or an image that cannot be classified.",
        InferenceRequestError("input 'image' must be BYTES, not FP32"),
    ),
    404: _NOT_FOUND,
    408: protocol_error_doc(
        "The body did not arrive within REQUEST_BODY_TIMEOUT_SECONDS.",
        RequestTimeoutError("the request body did not arrive within 30 seconds"),
    ),
    413: protocol_error_doc(
        "Body over MAX_UPLOAD_BYTES, more images than MAX_BATCH_FILES, or an image over the "
        "pixel or complexity limits.",
        PayloadTooLargeError("the request body is larger than the limit of 5242880 bytes"),
        TooManyFilesError("input 'image' holds 65 images; at most 64 per request"),
        ImageTooLargeError("input 'image' element 0: the image is 50000 x 50000 pixels"),
    ),
    503: protocol_error_doc(
        "No decoder was free in time (see `Retry-After`), or the model is not loaded.",
        ServiceBusyError("the server is decoding 2 large images already; retry shortly"),
        ModelLoadError("the model is not available"),
    ),
}

_INFER_REQUEST_BODY: Final[dict[str, Any]] = {
    "required": True,
    "description": (
        "The inference request as JSON; or, with the binary tensor data extension, its JSON "
        f"header ({HEADER_LENGTH_HEADER} bytes) followed by the tensors each input declares "
        "with `binary_data_size` (FP32 little-endian; BYTES as a 4-byte little-endian length "
        "and the file, per element)."
    ),
    "content": {
        "application/json": {"schema": inline_json_schema(InferenceRequest)},
        "application/octet-stream": {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
        },
    },
}
_INFER_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": (
            "The outputs; with binary outputs the body is the JSON header "
            f"({HEADER_LENGTH_HEADER} bytes) followed by the tensors."
        ),
        "content": {
            "application/octet-stream": {
                "schema": {"type": "string", "contentMediaType": "application/octet-stream"},
                "example": "(JSON header, then the binary tensors)",
            }
        },
    },
    **_INFER_ERRORS,
}


# Read by the handler from the request's headers (a FastAPI header parameter costs more than the
# whole protocol translation of a one-image request), so documented here.
_HEADER_LENGTH_PARAMETER: Final = {
    "name": HEADER_LENGTH_HEADER,
    "in": "header",
    "required": False,
    "description": "Binary tensor data extension: length of the JSON header starting the body.",
    "schema": {"type": "integer", "minimum": 1},
}


def _tensors(metadata: tuple[tuple[str, str, tuple[int, ...]], ...]) -> list[TensorMetadata]:
    return [
        TensorMetadata(name=name, datatype=datatype, shape=list(shape))
        for name, datatype, shape in metadata
    ]


def _check_model_name(model_name: str) -> None:
    """404 unless ``model_name`` is the served model's."""
    if model_name != MODEL_NAME:
        raise ModelNotFoundError(
            f"the model '{model_name}' is not served here; it serves '{MODEL_NAME}'"
        )


def _check_model_version(model: ServingModel, model_version: str | None) -> None:
    """404 unless ``model_version`` is absent or the served version."""
    if model_version is not None and model_version != model.short_sha256:
        raise ModelNotFoundError(
            f"the model '{MODEL_NAME}' has no version '{model_version}'; it serves version "
            f"'{model.short_sha256}' (the first 12 hex digits of its file's SHA-256)"
        )


@router.get("/health/live")
async def read_server_live() -> LiveResponse:
    """Server liveness: the process answers."""
    return LiveResponse(live=True)


@router.get(
    "/health/ready",
    response_model=ReadyResponse,
    responses={503: _NOT_READY},
)
async def read_server_ready(services: ServicesDep) -> ReadyResponse | Response:
    """Server readiness: the model is loaded and passed its self-test (as ``/readyz``)."""
    if not services.ready or services.model is None:
        return protocol_error_response(
            503, "the service is not ready: it is starting or shutting down"
        )
    return ReadyResponse(ready=True)


@router.get("")
async def read_server_metadata(request: Request) -> ServerMetadataResponse:
    """Server metadata: name, version and the protocol extensions implemented."""
    return ServerMetadataResponse(
        name=SERVER_NAME, version=request.app.version, extensions=list(EXTENSIONS)
    )


def _model_metadata(model: ServingModel) -> ModelMetadataResponse:
    return ModelMetadataResponse(
        name=MODEL_NAME,
        versions=[model.short_sha256],
        platform=PLATFORM,
        inputs=_tensors(INPUT_METADATA),
        outputs=_tensors(OUTPUT_METADATA),
    )


@router.get("/models/{model_name}", responses=_MODEL_ERRORS)
async def read_model_metadata(model_name: str, model: ModelDep) -> ModelMetadataResponse:
    """Model metadata: versions, inputs and outputs (-1: the batch dimension)."""
    _check_model_name(model_name)
    return _model_metadata(model)


@router.get("/models/{model_name}/versions/{model_version}", responses=_MODEL_ERRORS)
async def read_model_version_metadata(
    model_name: str, model_version: str, model: ModelDep
) -> ModelMetadataResponse:
    """Model metadata of one version (the first 12 hex digits of the model's SHA-256)."""
    _check_model_name(model_name)
    _check_model_version(model, model_version)
    return _model_metadata(model)


async def _model_ready(
    services: ServicesDep, model_name: str, model_version: str | None
) -> ModelReadyResponse | Response:
    _check_model_name(model_name)
    model = services.model
    if not services.ready or model is None:
        return protocol_error_response(503, f"the model '{MODEL_NAME}' is not ready")
    _check_model_version(model, model_version)
    return ModelReadyResponse(name=MODEL_NAME, ready=True)


@router.get(
    "/models/{model_name}/ready", response_model=ModelReadyResponse, responses=_MODEL_ERRORS
)
async def read_model_ready(model_name: str, services: ServicesDep) -> ModelReadyResponse | Response:
    """Model readiness."""
    return await _model_ready(services, model_name, None)


@router.get(
    "/models/{model_name}/versions/{model_version}/ready",
    response_model=ModelReadyResponse,
    responses=_MODEL_ERRORS,
)
async def read_model_version_ready(
    model_name: str, model_version: str, services: ServicesDep
) -> ModelReadyResponse | Response:
    """Readiness of one model version."""
    return await _model_ready(services, model_name, model_version)


def _infer_route(path: str) -> Callable[[Endpoint], Endpoint]:
    """``POST path`` on ``infer_router``, documented with its request body and answers."""
    return infer_router.post(
        path,
        response_model=InferenceResponse,
        responses=_INFER_RESPONSES,
        openapi_extra={
            "requestBody": _INFER_REQUEST_BODY,
            "parameters": [_HEADER_LENGTH_PARAMETER],
        },
    )


@_infer_route("/models/{model_name}/infer")
async def infer(request: Request, model_name: str, classifier: ClassifierDep) -> Response:
    """Inference: image files (`image`, BYTES) or model-ready values (`input`, FP32) in, the
    digits' probabilities, digit, confidence and whether each image shows a digit out."""
    return await _infer(request, classifier, model_name, None)


@_infer_route("/models/{model_name}/versions/{model_version}/infer")
async def infer_version(
    request: Request,
    model_name: str,
    model_version: str,
    classifier: ClassifierDep,
) -> Response:
    """Inference with one model version (see `POST /v2/models/{model_name}/infer`)."""
    return await _infer(request, classifier, model_name, model_version)


async def _infer(
    request: Request,
    classifier: DigitClassifier,
    model_name: str,
    model_version: str | None,
) -> Response:
    """Decode the request, classify, encode the answer."""
    _check_model_name(model_name)
    _check_model_version(classifier.model, model_version)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise InferenceRequestError(
            f"Content-Encoding {encoding!r} is not supported: send the body uncompressed"
        )
    decoded = decode_request(
        await request.body(),
        request.headers.get(HEADER_LENGTH_HEADER),
        max_images=services_of(request.app).settings.MAX_BATCH_FILES,
    )
    probabilities, is_digit = await _classify(classifier, decoded.tensor)
    encoded = encode_response(
        probabilities,
        is_digit,
        decoded.outputs,
        model_name=MODEL_NAME,
        model_version=classifier.model.short_sha256,
        request_id=decoded.request_id,
    )
    headers = None
    if encoded.header_length is not None:
        headers = {HEADER_LENGTH_HEADER: str(encoded.header_length)}
    return Response(content=encoded.body, media_type=encoded.media_type, headers=headers)


async def _classify(
    classifier: DigitClassifier, tensor: ImageFiles | ModelInputs
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """The (n, 10) probabilities of the tensor's images and whether each shows a digit, from
    the use case (model-ready inputs, never preprocessed here, are judged by their
    confidence alone)."""
    if isinstance(tensor, ModelInputs):
        try:
            probabilities = await classifier.predict_model_inputs_async(tensor.values)
        except ValueError as error:
            raise InferenceRequestError(f"input 'input': {error}") from None
        return probabilities, classifier.confident_rows(probabilities)
    predictions: list[DigitPrediction] = []
    if len(tensor.files) == 1:
        # One image takes the path of POST /predict (the same answer, with less bookkeeping).
        try:
            predictions.append(await classifier.classify_async(tensor.files[0]))
        except InputError as error:
            raise _image_error(0, error) from None
    else:
        for index, outcome in enumerate(await classifier.classify_many_async(tensor.files)):
            if isinstance(outcome, InputError):
                raise _image_error(index, outcome)
            predictions.append(outcome)
    return (
        np.stack([prediction.probabilities for prediction in predictions]),
        np.array([prediction.is_digit for prediction in predictions], dtype=np.bool_),
    )


def _image_error(index: int, error: InputError) -> InputError:
    """An image's own error as the whole request's: 413 for the size limits, else 400."""
    message = f"input 'image' element {index}: {error.message}"
    if error.status_code == 413:
        return type(error)(message)
    return InferenceRequestError(message)
