"""``POST /predict`` (one image) and ``POST /predict/batch`` (several, answered in order).

The handlers read the upload (:mod:`app.api.uploads`) and hand it to the use case,
:class:`~app.classification.DigitClassifier`, which decides what runs on the event loop and what
in the threadpool. Responses are encoded with orjson straight from the numpy arrays and returned
as a ``Response``; their schema is declared (``response_model``) for the docs. The request body
is read by the handler (multipart or the raw image), so its OpenAPI description is given
explicitly (``openapi_extra``), as FastAPI's documentation shows for bodies read from the
``Request``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final, TypeVar

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from app.api.deps import ClassifierDep, SettingsDep
from app.api.digit_preview import encode_digit_png_base64
from app.api.errors import JSON_MEDIA_TYPE
from app.api.schemas import (
    BatchPredictionResponse,
    PredictionResponse,
    error_response_doc,
)
from app.api.uploads import FILE_FIELD, read_multipart_images, read_single_image
from app.classification import DigitPrediction
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

router = APIRouter(tags=["prediction"])

Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Response]])

_BINARY_SCHEMA: Final = {"type": "string", "contentMediaType": "application/octet-stream"}
# The raw-body types listed in the docs; any image/* type (and application/octet-stream) works.
_RAW_IMAGE_TYPES: Final = ("image/png", "image/jpeg", "image/webp", "application/octet-stream")

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
    400: error_response_doc(
        "Empty body, undecodable or truncated image, or malformed multipart.",
        EmptyUploadError("the upload is empty: send the image's bytes"),
        InvalidImageError("the upload is not a decodable image (or it is truncated)"),
        InvalidMultipartError("the multipart body cannot be parsed: it ends before its boundary"),
    ),
    408: error_response_doc(
        "The body did not arrive within REQUEST_BODY_TIMEOUT_SECONDS.",
        RequestTimeoutError("the request body did not arrive within 30 seconds"),
    ),
    413: error_response_doc(
        "Body over MAX_UPLOAD_BYTES, image over MAX_IMAGE_PIXELS, or too many files.",
        PayloadTooLargeError("the request body is larger than the limit of 5242880 bytes"),
        ImageTooLargeError("the image is 50000 x 50000 pixels, more than the 40,000,000 allowed"),
        TooManyFilesError("POST /predict takes one 'file' part; send several to /predict/batch"),
    ),
    415: error_response_doc(
        "The body or part is declared as something other than an image.",
        UnsupportedMediaTypeError(
            "text/plain is not an image type: send multipart/form-data with a 'file' part, or "
            "the image itself with an image/* Content-Type"
        ),
    ),
    422: error_response_doc(
        "No `file` part, a blank image, or a bad query parameter.",
        MissingFileError("the multipart body has no 'file' part"),
        NoDigitFoundError("the image holds no digit: it is blank"),
    ),
    503: error_response_doc(
        "MAX_CONCURRENT_DECODES large images are being decoded already (see `Retry-After`), "
        "or the model is not loaded.",
        ServiceBusyError(
            "the server is decoding 2 large images already; retry shortly or send a smaller image"
        ),
        ModelLoadError("the model is not available"),
    ),
}

_BATCH_ERRORS: Final = _PREDICT_ERRORS | {
    400: error_response_doc(
        "Malformed multipart body (errors of single images are reported in place).",
        InvalidMultipartError("the multipart body cannot be parsed: it ends before its boundary"),
    )
}


def _json_response(payload: dict[str, Any]) -> Response:
    """A 200 JSON response serialised by orjson, numpy values included."""
    return Response(
        content=orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type=JSON_MEDIA_TYPE,
    )


def _upload_route(
    path: str, response_model: type[BaseModel], errors: dict[int | str, Any], body: dict[str, Any]
) -> Callable[[Endpoint], Endpoint]:
    """``POST path`` on the router, documented with its answer, its errors and the request
    body the handler reads itself."""
    return router.post(
        path, response_model=response_model, responses=errors, openapi_extra={"requestBody": body}
    )


@_upload_route("/predict", PredictionResponse, _PREDICT_ERRORS, _PREDICT_REQUEST_BODY)
async def predict(
    request: Request,
    classifier: ClassifierDep,
    include_input: Annotated[
        bool, Query(description="Also return the 28 x 28 digit the model saw, as a base64 PNG.")
    ] = False,
) -> Response:
    """Classify one image of a handwritten digit."""
    prediction = await classifier.classify_async(await read_single_image(request))
    payload: dict[str, Any] = {
        "digit": prediction.digit,
        "confidence": prediction.confidence,
        "is_digit": prediction.is_digit,
        "reason": prediction.reason,
        "probabilities": prediction.probabilities,
        "model_sha256": classifier.model.short_sha256,
    }
    if include_input:
        payload["input_image"] = encode_digit_png_base64(prediction.model_input)
    return _json_response(payload)


@_upload_route("/predict/batch", BatchPredictionResponse, _BATCH_ERRORS, _BATCH_REQUEST_BODY)
async def predict_batch(
    request: Request, classifier: ClassifierDep, settings: SettingsDep
) -> Response:
    """Classify several images; one result per file, in order, each a prediction or an error."""
    uploads = await read_multipart_images(request, max_files=settings.MAX_BATCH_FILES)
    accepted = [upload.data for upload in uploads if upload.refusal is None]
    outcomes = iter(await classifier.classify_many_async(accepted))
    results = [
        _batch_item(index, upload.refusal if upload.refusal is not None else next(outcomes))
        for index, upload in enumerate(uploads)
    ]
    return _json_response({"model_sha256": classifier.model.short_sha256, "results": results})


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
            "is_digit": outcome.is_digit,
            "reason": outcome.reason,
            "probabilities": outcome.probabilities,
        },
        "error": None,
    }
