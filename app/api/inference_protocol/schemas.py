"""The Open Inference Protocol's messages as pydantic models: the metadata and health answers,
the inference request (its JSON header is validated with :class:`InferenceRequest`) and the
inference response (documented here, encoded by :mod:`app.api.inference_protocol.codec`).

The request models are strict (no ``"3"`` for 3, no ``1`` for ``true``) and let unknown keys
through, as the protocol lets clients add parameters; the ``data`` of a tensor is checked by the
codec, which knows its datatype and shape.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

from app.errors import AuthenticationError, DigitServiceError


class InferenceErrorResponse(BaseModel):
    """The body of every error on the ``/v2`` routes, as the protocol defines it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "the model 'resnet' is not served here"}]}
    )

    error: str = Field(description="What went wrong, in words.")


def protocol_error_doc(description: str, *errors: DigitServiceError) -> dict[str, Any]:
    """An entry of a ``/v2`` route's OpenAPI ``responses``: the protocol's error schema,
    ``description`` and one named example per error."""
    return {
        "model": InferenceErrorResponse,
        "description": description,
        "content": {
            "application/json": {
                "examples": {error.code: {"value": {"error": error.message}} for error in errors}
            }
        },
    }


PROTOCOL_UNAUTHORIZED_RESPONSE: Final = protocol_error_doc(
    "No `X-API-Key` header, or a wrong key (only when API_KEY is set).",
    AuthenticationError("the API key in the X-API-Key header is not valid"),
)
"""The OpenAPI description of the 401 of ``/infer`` when an API key is set."""


class LiveResponse(BaseModel):
    """The server is live."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"live": True}]})

    live: bool


class ReadyResponse(BaseModel):
    """The server is ready for inference."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ready": True}]})

    ready: bool


class ModelReadyResponse(BaseModel):
    """The model is ready for inference."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "mnist_dense", "ready": True}]}
    )

    name: str
    ready: bool


class ServerMetadataResponse(BaseModel):
    """Who answers and which protocol extensions it implements."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "mnist-digit-service",
                    "version": "1.0.0",
                    "extensions": ["binary_tensor_data", "classification"],
                }
            ]
        }
    )

    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    """An input or output of the model; -1 in ``shape`` is the batch dimension."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadataResponse(BaseModel):
    """The model's name, versions, platform, inputs and outputs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "mnist_dense",
                    "versions": ["3f9a0c41d2b7"],
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
            ]
        }
    )

    name: str
    versions: list[str] = Field(description="First 12 hex digits of the model file's SHA-256.")
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class _OpenParameters(BaseModel):
    """Parameters: the known ones typed, any other let through (and ignored)."""

    model_config = ConfigDict(strict=True, extra="allow")


class RequestParameters(_OpenParameters):
    """Parameters of a whole inference request."""

    binary_data_output: bool | None = Field(
        default=None,
        description="Binary tensor data extension: every output not saying otherwise is binary.",
    )


class InputParameters(_OpenParameters):
    """Parameters of one input tensor."""

    binary_data_size: NonNegativeInt | None = Field(
        default=None,
        description=(
            "Binary tensor data extension: the tensor is this many bytes of the binary section "
            "after the JSON header, instead of `data`."
        ),
    )


class OutputParameters(_OpenParameters):
    """Parameters of one requested output."""

    binary_data: bool | None = Field(
        default=None, description="Binary tensor data extension: send this output in binary."
    )
    classification: PositiveInt | None = Field(
        default=None,
        description=(
            "Classification extension (only `probabilities`): the top this many classes of "
            "each image as BYTES strings `<probability>:<digit>`, most probable first."
        ),
    )


class RequestInput(BaseModel):
    """One input tensor: `image` (BYTES [N], image files) or `input` (FP32 [N,28,28,1],
    [N,28,28] or [N,784], values in [0, 1])."""

    model_config = ConfigDict(strict=True, extra="allow")

    name: str
    shape: list[NonNegativeInt]
    datatype: str
    parameters: InputParameters | None = None
    data: Any = Field(
        default=None,
        description=(
            "The elements, flat or nested, in row-major order: numbers for FP32, base64 strings "
            "of the files for BYTES. Absent when `binary_data_size` is given."
        ),
    )


class RequestOutput(BaseModel):
    """One output the client wants back."""

    model_config = ConfigDict(strict=True, extra="allow")

    name: str
    parameters: OutputParameters | None = None


class InferenceRequest(BaseModel):
    """The JSON of an inference request (with the binary tensor data extension, the JSON
    header: the first `Inference-Header-Content-Length` bytes of the body)."""

    model_config = ConfigDict(
        strict=True,
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {
                            "name": "image",
                            "shape": [1],
                            "datatype": "BYTES",
                            "data": ["iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAAA..."],
                        }
                    ],
                    "outputs": [{"name": "digit"}, {"name": "confidence"}],
                }
            ]
        },
    )

    id: str | None = Field(default=None, description="Echoed in the response.")
    parameters: RequestParameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1)
    outputs: list[RequestOutput] | None = Field(
        default=None, description="The outputs to return; all of them when absent."
    )


class ResponseOutputParameters(BaseModel):
    """Parameters of one output tensor of the response."""

    binary_data_size: int | None = Field(
        default=None,
        description="The tensor is this many bytes of the binary section after the JSON header.",
    )


class ResponseOutput(BaseModel):
    """One output tensor: its elements flat in `data`, or in the binary section."""

    name: str
    datatype: str
    shape: list[int]
    parameters: ResponseOutputParameters | None = None
    data: list[float | str] | None = None


class InferenceResponse(BaseModel):
    """The answer to an inference request."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model_name": "mnist_dense",
                    "model_version": "3f9a0c41d2b7",
                    "id": "42",
                    "outputs": [
                        {"name": "digit", "datatype": "INT64", "shape": [1], "data": [7]},
                        {"name": "confidence", "datatype": "FP32", "shape": [1], "data": [0.99627]},
                        {"name": "is_digit", "datatype": "BOOL", "shape": [1], "data": [True]},
                    ],
                }
            ]
        },
    )

    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


def inline_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place, for an OpenAPI request body
    given by hand (``openapi_extra``), where ``#/$defs/...`` references would not resolve."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
