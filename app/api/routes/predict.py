"""``POST /predict`` (one image) and ``POST /predict/batch`` (several, answered in order).

Decoding, preprocessing and the network are CPU work. It runs in the threadpool, so a large
photo never stalls the event loop, except for small PNGs (at most ``INLINE_MAX_PIXELS`` pixels,
default 200 x 200, and at most 64 KiB), which take about a millisecond or less and are
classified inline: the threadpool round trip costs about 70-110 µs of CPU per request, which
buys nothing when the work itself is that short. Measured on a 28 x 28 PNG with the ASGI app
called directly: 500 µs of CPU per request inline, 609 µs offloaded; under wrk at concurrency
16 with one worker: about 1,650 requests/s inline against 660-1,100 offloaded.
A batch always goes to the threadpool, one batch at a time per worker process
(:data:`BATCH_THREADS`): batches are Python-heavy and hold the GIL most of the time, so several
at once in one process only contend for it. With one worker at concurrency 4, 64 PNGs a
request: 7,160 µs of CPU per request and 11,800 images/s with the threadpool's default of 40
threads at once, against 2,760 µs and 23,400 images/s with one (wrk, see
docs/performance.md).
More batches at once run in more worker processes.

Responses are encoded with orjson straight from the numpy arrays (about 1.5 µs); their schema
is declared for the docs (``response_model``) but not re-validated per request.

Both endpoints are declared on ``router`` (a FastAPI ``APIRouter``), which gives them their
OpenAPI description, and are served by plain Starlette routes that :func:`install_fast_routes`
puts ahead of every other route: the handlers take only the ``Request``, so FastAPI's
per-request routing and parameter solving would buy nothing, and it costs about 35 µs of CPU
per request (measured with the ASGI app called directly, 28 x 28 PNG as the raw body:
162 µs per request through the ``APIRoute``, 126 µs through the Starlette route). Errors,
middleware and the API key behave the same either way: the exception handlers and middleware
are the app's.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final

import orjson
from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.api.deps import decode_gate_of, serving_model_of, settings_of, telemetry_of
from app.api.digit_preview import encode_digit_png_base64
from app.api.errors import JSON_MEDIA_TYPE
from app.api.schemas import (
    BatchPredictionResponse,
    ErrorResponse,
    PredictionResponse,
    error_examples,
)
from app.api.uploads import FILE_FIELD, read_multipart_images, read_single_image
from app.core.config import Settings
from app.errors import (
    EmptyUploadError,
    ImageTooLargeError,
    InputError,
    InvalidImageError,
    InvalidMultipartError,
    MissingFileError,
    ModelLoadError,
    NoDigitFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServiceBusyError,
    TooManyFilesError,
    UnsupportedMediaTypeError,
)
from app.imaging.decode_gate import DecodeGate
from app.inference.serving_model import ServingModel
from app.inference.upload_classifier import (
    DigitPrediction,
    PipelineObserver,
    classify_upload,
    classify_uploads,
)

router = APIRouter(tags=["prediction"])

BATCH_THREADS: Final = 1
"""Batches classified at the same time in one worker process (see the module's docstring)."""

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_IHDR_END: Final = 24
_INLINE_MAX_BYTES: Final = 64 * 1024

_BINARY_SCHEMA: Final = {"type": "string", "contentMediaType": "application/octet-stream"}
# The raw-body types listed in the docs; any image/* type (and application/octet-stream) works.
_RAW_IMAGE_TYPES: Final = ("image/png", "image/jpeg", "image/webp", "application/octet-stream")

_INCLUDE_INPUT: Final = "include_input"
_TRUE_WORDS: Final = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE_WORDS: Final = frozenset({"0", "off", "f", "false", "n", "no"})
_INCLUDE_INPUT_PARAMETER: Final[dict[str, Any]] = {
    "name": _INCLUDE_INPUT,
    "in": "query",
    "required": False,
    "description": "Also return the 28 x 28 digit the model saw, as a base64 PNG.",
    "schema": {"type": "boolean", "default": False, "title": "Include Input"},
}

_PREDICT_REQUEST_BODY: Final[dict[str, Any]] = {
    "required": True,
    "description": (
        "The image, either as the multipart field `file` "
        "(`curl -F file=@digit.png http://127.0.0.1:8000/predict`) or as the raw body with an "
        "image Content-Type (`curl --data-binary @digit.png -H 'Content-Type: image/png' "
        "http://127.0.0.1:8000/predict`). PNG, JPEG, GIF (first frame), BMP, WebP and TIFF; "
        "any size up to MAX_UPLOAD_BYTES bytes and MAX_IMAGE_PIXELS pixels."
    ),
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {FILE_FIELD: {**_BINARY_SCHEMA, "description": "The image file."}},
            },
            "examples": {
                "png_upload": {
                    "summary": "A PNG file from disk",
                    "description": "curl -F file=@digit.png http://127.0.0.1:8000/predict",
                    "value": {FILE_FIELD: "(binary contents of digit.png)"},
                }
            },
        },
        **{
            media_type: {
                "schema": _BINARY_SCHEMA,
                "examples": {
                    "raw_body": {
                        "summary": f"The image bytes as the body ({media_type})",
                        "description": (
                            "curl --data-binary @digit.png -H 'Content-Type: "
                            f"{media_type}' http://127.0.0.1:8000/predict"
                        ),
                        "value": "(binary image contents)",
                    }
                },
            }
            for media_type in _RAW_IMAGE_TYPES
        },
    },
}

_BATCH_REQUEST_BODY: Final[dict[str, Any]] = {
    "required": True,
    "description": (
        "Several images as repeated multipart fields `file`, at most MAX_BATCH_FILES of them "
        "(`curl -F file=@a.png -F file=@b.jpg http://127.0.0.1:8000/predict/batch`)."
    ),
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "array",
                        "minItems": 1,
                        "items": _BINARY_SCHEMA,
                        "description": "The image files, answered in this order.",
                    }
                },
            },
            "examples": {
                "two_files": {
                    "summary": "Two image files",
                    "description": (
                        "curl -F file=@a.png -F file=@b.jpg http://127.0.0.1:8000/predict/batch"
                    ),
                    "value": {FILE_FIELD: ["(binary contents of a.png)", "(binary of b.jpg)"]},
                }
            },
        }
    },
}

_PREDICT_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {
        "model": ErrorResponse,
        "description": "Empty body, undecodable or truncated image, or malformed multipart.",
        "content": error_examples(
            EmptyUploadError("the upload is empty: send the image's bytes"),
            InvalidImageError("the upload is not a decodable image (or it is truncated)"),
            InvalidMultipartError("the multipart body cannot be parsed: Invalid multipart data."),
        ),
    },
    413: {
        "model": ErrorResponse,
        "description": "Body over MAX_UPLOAD_BYTES, or image over MAX_IMAGE_PIXELS.",
        "content": error_examples(
            PayloadTooLargeError("the request body is larger than the limit of 5242880 bytes"),
            ImageTooLargeError("the image has 2500000000 pixels; the limit is 40000000"),
            TooManyFilesError(
                "POST /predict takes one 'file' part; send several to /predict/batch"
            ),
        ),
    },
    415: {
        "model": ErrorResponse,
        "description": "The body or part is declared as something other than an image.",
        "content": error_examples(
            UnsupportedMediaTypeError(
                "text/plain is not an image type: send multipart/form-data "
                "with a 'file' part, or the image with an image/* "
                "Content-Type"
            ),
        ),
    },
    422: {
        "model": ErrorResponse,
        "description": "No `file` part, a blank image, or a bad query parameter.",
        "content": error_examples(
            MissingFileError("the multipart body has no 'file' part"),
            NoDigitFoundError("the image holds no digit: it is blank"),
        ),
    },
    408: {
        "model": ErrorResponse,
        "description": "The body did not arrive within REQUEST_BODY_TIMEOUT_SECONDS.",
        "content": error_examples(
            RequestTimeoutError("the request body did not arrive within 30 seconds"),
        ),
    },
    503: {
        "model": ErrorResponse,
        "description": (
            "MAX_CONCURRENT_DECODES large images are being decoded already (see `Retry-After`), "
            "or the model is not loaded."
        ),
        "content": error_examples(
            ServiceBusyError(
                "the server is decoding 2 large images already; retry shortly or send a "
                "smaller image"
            ),
            ModelLoadError("the model is not available"),
        ),
    },
}

_BATCH_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status: documentation for status, documentation in _PREDICT_ERRORS.items() if status != 400
} | {
    400: {
        "model": ErrorResponse,
        "description": "Malformed multipart body (errors of single images are reported in place).",
        "content": error_examples(
            InvalidMultipartError("the multipart body cannot be parsed: Invalid multipart data."),
        ),
    }
}


def classifies_inline(data: bytes, settings: Settings) -> bool:
    """Whether the upload is a PNG small enough to classify on the event loop.

    Looks only at the PNG header (width and height in the IHDR chunk), so a tiny file that
    declares a huge image still goes to the threadpool.
    """
    if len(data) > _INLINE_MAX_BYTES or not data.startswith(_PNG_SIGNATURE):
        return False
    if len(data) < _PNG_IHDR_END or data[12:16] != b"IHDR":
        return False
    width, height = struct.unpack(">II", data[16:_PNG_IHDR_END])
    return bool(width * height <= settings.INLINE_MAX_PIXELS)


async def _classify_one(
    data: bytes,
    model: ServingModel,
    settings: Settings,
    gate: DecodeGate | None,
    observer: PipelineObserver | None,
) -> DigitPrediction:
    """Classify one upload inline or in the threadpool, as :func:`classifies_inline` decides."""
    if classifies_inline(data, settings):
        return classify_upload(
            data, model=model, max_pixels=settings.MAX_IMAGE_PIXELS, observer=observer
        )
    return await run_in_threadpool(
        classify_upload,
        data,
        model=model,
        max_pixels=settings.MAX_IMAGE_PIXELS,
        gate=gate,
        observer=observer,
    )


def _json_response(payload: dict[str, Any]) -> Response:
    """A 200 JSON response serialised by orjson, numpy values included."""
    return Response(
        content=orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type=JSON_MEDIA_TYPE,
    )


def include_input_of(request: Request) -> bool:
    """The ``include_input`` query parameter, read as FastAPI reads a ``bool`` query parameter.

    Read by hand rather than declared as a ``Query`` parameter: FastAPI's parameter solving
    costs about 25 µs of CPU per request, more than the network's forward pass. A value that is
    not a boolean is a 422 ``validation_error``, as FastAPI would answer.
    """
    if not request.scope.get("query_string"):
        return False
    value = request.query_params.get(_INCLUDE_INPUT)
    if value is None:
        return False
    folded = value.strip().lower()
    if folded in _TRUE_WORDS:
        return True
    if folded in _FALSE_WORDS:
        return False
    raise RequestValidationError(
        [
            {
                "type": "bool_parsing",
                "loc": ("query", _INCLUDE_INPUT),
                "msg": "Input should be a valid boolean, unable to interpret input",
            }
        ]
    )


@router.post(
    "/predict",
    response_model=PredictionResponse,
    responses=_PREDICT_ERRORS,
    openapi_extra={"requestBody": _PREDICT_REQUEST_BODY, "parameters": [_INCLUDE_INPUT_PARAMETER]},
)
async def predict(request: Request) -> Response:
    """Classify one image of a handwritten digit."""
    model, settings = serving_model_of(request), settings_of(request)
    include_input = include_input_of(request)
    data = await read_single_image(request)
    prediction = await _classify_one(
        data, model, settings, decode_gate_of(request), telemetry_of(request)
    )
    payload: dict[str, Any] = {
        "digit": prediction.digit,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
        "model_sha256": model.short_sha256,
    }
    if include_input:
        payload["input_image"] = encode_digit_png_base64(prediction.model_input)
    return _json_response(payload)


@router.post(
    "/predict/batch",
    response_model=BatchPredictionResponse,
    responses=_BATCH_ERRORS,
    openapi_extra={"requestBody": _BATCH_REQUEST_BODY},
)
async def predict_batch(request: Request) -> Response:
    """Classify several images; one result per file, in order, each a prediction or an error."""
    model, settings = serving_model_of(request), settings_of(request)
    uploads = await read_multipart_images(request, max_files=settings.MAX_BATCH_FILES)
    accepted = [upload.data for upload in uploads if upload.refusal is None]
    classify = partial(
        classify_uploads,
        accepted,
        model=model,
        max_pixels=settings.MAX_IMAGE_PIXELS,
        gate=decode_gate_of(request),
        observer=telemetry_of(request),
    )
    outcomes = iter(await to_thread.run_sync(classify, limiter=_batch_limiter_of(request)))
    results: list[dict[str, Any]] = []
    for index, upload in enumerate(uploads):
        outcome: DigitPrediction | InputError = (
            upload.refusal if upload.refusal is not None else next(outcomes)
        )
        results.append(_batch_item(index, outcome))
    return _json_response({"model_sha256": model.short_sha256, "results": results})


def _batch_limiter_of(request: Request) -> CapacityLimiter | None:
    """The app's bound on batches classified at once (None: the threadpool's default)."""
    limiter: CapacityLimiter | None = getattr(request.app.state, "batch_limiter", None)
    return limiter


def _batch_item(index: int, outcome: DigitPrediction | InputError) -> dict[str, Any]:
    """One entry of a batch response: the prediction or the error, at its index."""
    if isinstance(outcome, InputError):
        return {
            "index": index,
            "status": outcome.status_code,
            "prediction": None,
            "error": {"code": outcome.code, "message": outcome.message},
        }
    return {
        "index": index,
        "status": 200,
        "prediction": {
            "digit": outcome.digit,
            "confidence": outcome.confidence,
            "probabilities": outcome.probabilities,
        },
        "error": None,
    }


class RequestHandlerApp:
    """A ``Request -> Response`` handler as a plain ASGI app, for a Starlette ``Route``.

    Starlette wraps a function endpoint in two more layers per request (a ``Request`` builder
    and a route-level exception catcher, with a wrapped ``send``); given an ASGI app, the route
    calls it directly. Exceptions behave the same either way: the app's ``ExceptionMiddleware``
    answers them with the same handlers.
    """

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)


def install_fast_routes(app: FastAPI) -> None:
    """Serve ``POST /predict`` and ``POST /predict/batch`` through plain Starlette routes placed
    before all others (see the module's docstring); the ``APIRoute`` declarations of ``router``
    stay for the OpenAPI document. Call it after ``app.include_router(router)``."""
    app.state.batch_limiter = CapacityLimiter(BATCH_THREADS)
    app.router.routes[0:0] = [
        Route("/predict", RequestHandlerApp(predict), methods=["POST"], include_in_schema=False),
        Route(
            "/predict/batch",
            RequestHandlerApp(predict_batch),
            methods=["POST"],
            include_in_schema=False,
        ),
    ]
