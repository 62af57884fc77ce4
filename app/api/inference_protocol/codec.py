"""The Open Inference Protocol's wire format: an inference request in, a tensor out; class
probabilities in, the response's output tensors out. No model here, no HTTP: only translation.

A request body is JSON, or, with the binary tensor data extension, a JSON header of
``Inference-Header-Content-Length`` bytes followed by the raw tensors, each input that says
``"binary_data_size": n`` taking the next ``n`` bytes. The one input is

* ``image``, BYTES ``[N]``: encoded image files. In binary, each element is a 4-byte little-endian
  length and the file (what tritonclient sends); in JSON, each element is the file in base64
  (tritonclient sends JSON strings as they are, so the caller base64-encodes the files);
* ``input``, FP32 ``[N,28,28,1]``, ``[N,28,28]`` or ``[N,784]``: model-ready values in [0, 1]. In
  binary, little-endian float32; in JSON, numbers, flat or nested.

The outputs are ``probabilities`` (FP32 ``[N,10]``), ``digit`` (INT64 ``[N]``), ``confidence``
(FP32 ``[N]``) and ``is_digit`` (BOOL ``[N]``: whether the service believes the image shows one
digit, :mod:`app.verdict`), each in JSON ``data`` or binary; with the classification extension,
``probabilities`` becomes BYTES ``[N,k]`` of ``"<probability>:<digit>"`` strings, most probable
first, as Triton writes them for a model without labels.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import ValidationError

from app.api.inference_protocol.errors import InferenceRequestError
from app.api.inference_protocol.schemas import InferenceRequest, RequestInput, RequestOutput
from app.errors import TooManyFilesError
from app.model_contract import INPUT_SHAPE, NUM_CLASSES

HEADER_LENGTH_HEADER: Final = "Inference-Header-Content-Length"
"""Binary tensor data extension: the length of the JSON header that starts the body."""

BOOL: Final = "BOOL"
BYTES: Final = "BYTES"
FP32: Final = "FP32"
INT64: Final = "INT64"

IMAGE_INPUT: Final = "image"
MODEL_INPUT: Final = "input"
PROBABILITIES: Final = "probabilities"
DIGIT: Final = "digit"
CONFIDENCE: Final = "confidence"
IS_DIGIT: Final = "is_digit"

INPUT_METADATA: Final = (
    (IMAGE_INPUT, BYTES, (-1,)),
    (MODEL_INPUT, FP32, (-1, *INPUT_SHAPE)),
)
"""Name, datatype and shape (-1: the batch) of each input the model takes, one per request."""

OUTPUT_METADATA: Final = (
    (PROBABILITIES, FP32, (-1, NUM_CLASSES)),
    (DIGIT, INT64, (-1,)),
    (CONFIDENCE, FP32, (-1,)),
    (IS_DIGIT, BOOL, (-1,)),
)
"""Name, datatype and shape of each output, in the order they are returned by default."""

_INPUT_DATATYPES: Final = {name: datatype for name, datatype, _ in INPUT_METADATA}
_OUTPUT_NAMES: Final = tuple(name for name, _, _ in OUTPUT_METADATA)
_LENGTH_PREFIX: Final = struct.Struct("<I")
_UNSUPPORTED_PARAMETERS: Final = ("shared_memory_region", "shared_memory_byte_size")


@dataclass(frozen=True, slots=True)
class ImageFiles:
    """The ``image`` input: encoded image files, preprocessed as ``POST /predict`` does."""

    files: list[bytes]


@dataclass(frozen=True, slots=True)
class ModelInputs:
    """The ``input`` input: model-ready float32 values, shape as sent."""

    values: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """One output to return: in binary or JSON, and with the top ``class_count`` classes
    (classification extension) instead of the tensor."""

    name: str
    binary: bool
    class_count: int | None = None


@dataclass(frozen=True, slots=True)
class DecodedRequest:
    """What an inference request asks: its ID, its one input tensor and the outputs."""

    request_id: str | None
    tensor: ImageFiles | ModelInputs
    outputs: tuple[RequestedOutput, ...]


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    """An inference response: the body and, with binary outputs, the JSON header's length."""

    body: bytes
    header_length: int | None

    @property
    def media_type(self) -> str:
        """``application/json``, or ``application/octet-stream`` with binary outputs."""
        return "application/json" if self.header_length is None else "application/octet-stream"


def decode_request(
    body: bytes, header_length_value: str | None, *, max_images: int
) -> DecodedRequest:
    """Read an inference request body; ``header_length_value`` is its
    ``Inference-Header-Content-Length`` header (None: the body is all JSON).

    Raises :class:`InferenceRequestError` for anything the protocol or the model refuses, and
    :class:`~app.errors.TooManyFilesError` for more than ``max_images`` images.
    """
    header_length = _header_length(header_length_value)
    if header_length is None:
        header, binary = body, b""
    elif 0 < header_length <= len(body):
        header, binary = body[:header_length], body[header_length:]
    else:
        raise InferenceRequestError(
            f"{HEADER_LENGTH_HEADER} is {header_length}, but the body has {len(body)} bytes"
        )
    try:
        request = InferenceRequest.model_validate_json(header)
    except ValidationError as error:
        raise InferenceRequestError(_validation_summary(error)) from None
    (request_input,) = request.inputs
    tensor = _decode_input(request_input, binary, max_images=max_images)
    default_binary = bool(request.parameters and request.parameters.binary_data_output)
    return DecodedRequest(
        request_id=request.id,
        tensor=tensor,
        outputs=_requested_outputs(request.outputs, default_binary=default_binary),
    )


def _header_length(value: str | None) -> int | None:
    """The value of ``Inference-Header-Content-Length``: a positive decimal integer, or None."""
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18 and int(text) > 0):
        raise InferenceRequestError(f"{HEADER_LENGTH_HEADER} must be a positive integer")
    return int(text)


def _validation_summary(error: ValidationError) -> str:
    """The first problems of an invalid JSON header, in words."""
    problems = []
    for issue in error.errors(include_url=False)[:3]:
        location = ".".join(str(part) for part in issue["loc"])
        problems.append(f"{location}: {issue['msg']}" if location else issue["msg"])
    return "the inference request is not valid: " + "; ".join(problems)


def _decode_input(
    request_input: RequestInput, binary: bytes, *, max_images: int
) -> ImageFiles | ModelInputs:
    """The input tensor, checked against its name, datatype, shape and element count."""
    name, shape, datatype = request_input.name, request_input.shape, request_input.datatype
    expected = _INPUT_DATATYPES.get(name)
    if expected is None:
        known = " or ".join(f"'{known}'" for known in _INPUT_DATATYPES)
        raise InferenceRequestError(f"unknown input '{name}': the model takes {known}")
    if datatype != expected:
        raise InferenceRequestError(f"input '{name}' must be {expected}, not {datatype}")
    if not shape or shape[0] < 1:
        raise InferenceRequestError(
            f"input '{name}' needs a batch of at least one, not shape {_shown(shape)}"
        )
    parameters = request_input.parameters
    extra = parameters.model_extra if parameters is not None else None
    for unsupported in _UNSUPPORTED_PARAMETERS:
        if extra and unsupported in extra:
            raise InferenceRequestError("the shared-memory extension is not supported")
    binary_size = parameters.binary_data_size if parameters is not None else None
    if binary_size is not None:
        if request_input.data is not None:
            raise InferenceRequestError(f"input '{name}' has both data and binary_data_size")
        if binary_size != len(binary):
            raise InferenceRequestError(
                f"input '{name}' declares binary_data_size {binary_size}, but {len(binary)} "
                "bytes follow the JSON header"
            )
    elif binary:
        raise InferenceRequestError(
            f"{len(binary)} bytes follow the JSON header, but no input declares binary_data_size"
        )
    elif request_input.data is None:
        raise InferenceRequestError(f"input '{name}' has neither data nor binary_data_size")
    if name == IMAGE_INPUT:
        if len(shape) != 1:
            raise InferenceRequestError(f"input 'image' has shape [N], not {_shown(shape)}")
        if shape[0] > max_images:
            raise TooManyFilesError(
                f"input 'image' holds {shape[0]} images; at most {max_images} per request "
                "(MAX_BATCH_FILES)"
            )
        files = (
            _split_length_prefixed(binary, shape[0])
            if binary_size is not None
            else _base64_elements(request_input.data, shape[0])
        )
        return ImageFiles(files)
    if not 2 <= len(shape) <= 4:
        raise InferenceRequestError(
            f"input 'input' has shape {_shown(shape)}; the model takes [N,28,28,1], [N,28,28] "
            "or [N,784]"
        )
    count = math.prod(shape)
    if binary_size is not None:
        if binary_size != count * 4:
            raise InferenceRequestError(
                f"input 'input' of shape {shape} needs {count * 4} bytes of FP32, got {binary_size}"
            )
        values = np.frombuffer(binary, dtype="<f4")
    else:
        values = _json_numbers(request_input.data, count)
    return ModelInputs(values.astype(np.float32, copy=False).reshape(shape))


def _shown(shape: Sequence[int]) -> str:
    """``shape`` for a message, its first dimensions only if it has many."""
    if len(shape) <= 8:
        return str(list(shape))
    return str(list(shape[:8]))[:-1] + f", ... ({len(shape)} dimensions)]"


def _split_length_prefixed(binary: bytes, count: int) -> list[bytes]:
    """The elements of a binary BYTES tensor: each a 4-byte little-endian length, then data."""
    elements: list[bytes] = []
    offset = 0
    view = memoryview(binary)
    while offset < len(binary):
        if offset + _LENGTH_PREFIX.size > len(binary):
            raise InferenceRequestError("input 'image': the binary data ends inside a length")
        (length,) = _LENGTH_PREFIX.unpack_from(binary, offset)
        offset += _LENGTH_PREFIX.size
        if offset + length > len(binary):
            raise InferenceRequestError(
                f"input 'image': element {len(elements)} declares {length} bytes, more than follow"
            )
        elements.append(bytes(view[offset : offset + length]))
        offset += length
        if len(elements) > count:
            break
    if len(elements) != count:
        raise InferenceRequestError(
            f"input 'image' has shape [{count}], but its binary data holds "
            f"{'more' if len(elements) > count else len(elements)} elements"
        )
    return elements


def _base64_elements(data: Any, count: int) -> list[bytes]:
    """The elements of a JSON BYTES tensor: a list of base64 strings."""
    if not isinstance(data, list) or not all(isinstance(element, str) for element in data):
        raise InferenceRequestError(
            "input 'image': data must be a list of strings, each an image file in base64"
        )
    if len(data) != count:
        raise InferenceRequestError(
            f"input 'image' has shape [{count}], but its data holds {len(data)} elements"
        )
    files = []
    for index, element in enumerate(data):
        try:
            files.append(base64.b64decode(element, validate=True))
        except (binascii.Error, ValueError):
            raise InferenceRequestError(
                f"input 'image' element {index} is not base64 (JSON carries each file in base64)"
            ) from None
    return files


def _json_numbers(data: Any, count: int) -> NDArray[np.float32]:
    """The elements of a JSON FP32 tensor, flat or nested, as a flat float32 array."""
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, RecursionError):
        raise InferenceRequestError("input 'input': data is not a regular array") from None
    if array.dtype.kind not in "iuf":
        raise InferenceRequestError("input 'input': data must hold numbers only")
    if array.size != count:
        raise InferenceRequestError(
            f"input 'input' needs {count} elements for its shape, but its data holds {array.size}"
        )
    # A number beyond float32 becomes infinite here, and is refused with the values outside
    # [0, 1] by the use case.
    with np.errstate(over="ignore", invalid="ignore"):
        return array.astype(np.float32).reshape(-1)


def _requested_outputs(
    outputs: Sequence[RequestOutput] | None, *, default_binary: bool
) -> tuple[RequestedOutput, ...]:
    """The outputs to return, in order: those asked for, or all of them."""
    if outputs is None:
        return tuple(RequestedOutput(name, binary=default_binary) for name in _OUTPUT_NAMES)
    requested: list[RequestedOutput] = []
    for output in outputs:
        if output.name not in _OUTPUT_NAMES:
            known = ", ".join(f"'{name}'" for name in _OUTPUT_NAMES)
            raise InferenceRequestError(f"unknown output '{output.name}': the model has {known}")
        if any(earlier.name == output.name for earlier in requested):
            raise InferenceRequestError(f"output '{output.name}' is requested twice")
        parameters = output.parameters
        binary = default_binary
        class_count = None
        if parameters is not None:
            if parameters.binary_data is not None:
                binary = parameters.binary_data
            class_count = parameters.classification
        if class_count is not None and output.name != PROBABILITIES:
            raise InferenceRequestError(
                f"classification applies to output '{PROBABILITIES}', not '{output.name}'"
            )
        requested.append(RequestedOutput(output.name, binary=binary, class_count=class_count))
    return tuple(requested)


def encode_response(
    probabilities: NDArray[np.float32],
    is_digit: NDArray[np.bool_],
    outputs: Sequence[RequestedOutput],
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
) -> EncodedResponse:
    """The response to a request that asked for ``outputs``, from the (n, 10) probabilities
    and the (n,) verdicts."""
    digits = probabilities.argmax(axis=1)
    tensors: list[dict[str, Any]] = []
    binary_parts: list[bytes] = []
    for output in outputs:
        datatype, values = _output_values(output, probabilities, digits, is_digit)
        tensor: dict[str, Any] = {"name": output.name, "datatype": datatype}
        tensor["shape"] = list(values.shape)
        if output.binary:
            raw = _binary(datatype, values)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            binary_parts.append(raw)
        else:
            tensor["data"] = values.ravel().tolist() if datatype == BYTES else values.ravel()
        tensors.append(tensor)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        document["id"] = request_id
    document["outputs"] = tensors
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not binary_parts:
        return EncodedResponse(header, None)
    return EncodedResponse(b"".join([header, *binary_parts]), len(header))


def _output_values(
    output: RequestedOutput,
    probabilities: NDArray[np.float32],
    digits: NDArray[np.intp],
    is_digit: NDArray[np.bool_],
) -> tuple[str, NDArray[Any]]:
    """The datatype and values of one output."""
    if output.name == IS_DIGIT:
        return BOOL, is_digit
    if output.name == DIGIT:
        return INT64, digits.astype(np.int64)
    if output.name == CONFIDENCE:
        return FP32, probabilities[np.arange(len(digits)), digits]
    if output.class_count is None:
        return FP32, probabilities
    return BYTES, top_classes(probabilities, output.class_count)


def top_classes(probabilities: NDArray[np.float32], class_count: int) -> NDArray[np.object_]:
    """The classification extension: for each row, the ``class_count`` most probable classes
    (at most 10) as ``"<probability>:<digit>"``, most probable first, ties by digit; the
    probability printed with six decimals, as Triton does (``std::to_string``).

    >>> top_classes(np.array([[0.1, 0.7, 0.2]], np.float32), 2).tolist()
    [['0.700000:1', '0.200000:2']]
    """
    count = min(class_count, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :count]
    rows = [
        [f"{float(row[index]):f}:{index}" for index in indices]
        for row, indices in zip(probabilities, order.tolist(), strict=True)
    ]
    return np.array(rows, dtype=np.object_).reshape(len(rows), count)


def _binary(datatype: str, values: NDArray[Any]) -> bytes:
    """One output tensor in the binary tensor data format (little-endian, row-major)."""
    if datatype == BYTES:
        return b"".join(
            _LENGTH_PREFIX.pack(len(encoded)) + encoded
            for encoded in (str(element).encode() for element in values.ravel())
        )
    dtype = {BOOL: "?", INT64: "<i8"}.get(datatype, "<f4")
    return np.ascontiguousarray(values, dtype=dtype).tobytes()
