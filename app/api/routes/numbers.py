"""``POST /predict/number``: every digit of an image of a number, read line by line.

The handler reads the upload as ``POST /predict`` does (:mod:`app.api.uploads`: the multipart
``file`` part or the raw body, under the same limits) and hands it to the use case,
:meth:`~app.classification.DigitClassifier.read_number_async`, which segments the image in the
decoder sandbox and classifies the candidate digits in one forward pass. The answer is encoded
by orjson straight from the numpy arrays; its schema is declared for the docs.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import ClassifierDep, SettingsDep
from app.api.errors import JSON_MEDIA_TYPE
from app.api.schemas import NumberResponse, error_response_doc
from app.api.uploads import FILE_FIELD, read_single_image
from app.errors import (
    EmptyUploadError,
    ImageTooLargeError,
    InvalidImageError,
    MissingFileError,
    NoDigitFoundError,
    PayloadTooLargeError,
    ServiceBusyError,
    TooManyDigitsError,
    UnsupportedMediaTypeError,
)
from app.number_reading import NumberReading, ReadDigit, line_text

router = APIRouter(tags=["prediction"])

_BINARY_SCHEMA: Final = {"type": "string", "contentMediaType": "application/octet-stream"}

_NUMBER_REQUEST_BODY: Final[dict[str, Any]] = {
    "required": True,
    "description": (
        "The image of a number, as for `POST /predict`: the multipart field `file` "
        "(`curl -F file=@number.png http://127.0.0.1:8000/predict/number`) or the raw body "
        "with an image Content-Type. At most MAX_DIGITS_PER_IMAGE digits are read."
    ),
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {FILE_FIELD: {**_BINARY_SCHEMA, "description": "The image file."}},
            }
        },
        "image/png": {"schema": _BINARY_SCHEMA},
        "image/jpeg": {"schema": _BINARY_SCHEMA},
        "application/octet-stream": {"schema": _BINARY_SCHEMA},
    },
}

_NUMBER_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: error_response_doc(
        "Empty body, undecodable image or malformed multipart.",
        EmptyUploadError("the upload is empty: send the image's bytes"),
        InvalidImageError("the upload is not a decodable image (or it is truncated)"),
    ),
    413: error_response_doc(
        "Body over MAX_UPLOAD_BYTES or image over MAX_IMAGE_PIXELS.",
        PayloadTooLargeError("the request body is larger than the limit of 5242880 bytes"),
        ImageTooLargeError("the image is 50000 x 50000 pixels, more than the 40,000,000 allowed"),
    ),
    415: error_response_doc(
        "The body or part is declared as something other than an image.",
        UnsupportedMediaTypeError("text/plain is not an image type"),
    ),
    422: error_response_doc(
        "No `file` part, no digit in the image, or more than MAX_DIGITS_PER_IMAGE digits.",
        MissingFileError("the multipart body has no 'file' part"),
        NoDigitFoundError("no digit found: the image holds no digit-sized strokes"),
        TooManyDigitsError("the image holds 40 digits, more than the 32 allowed"),
    ),
    503: error_response_doc(
        "Every image decoder stayed busy (see `Retry-After`), or the model is not loaded.",
        ServiceBusyError("all 1 image decoders of this worker stayed busy for 2 s"),
    ),
}


@router.post(
    "/predict/number",
    response_model=NumberResponse,
    responses=_NUMBER_ERRORS,
    openapi_extra={"requestBody": _NUMBER_REQUEST_BODY},
)
async def predict_number(
    request: Request, classifier: ClassifierDep, settings: SettingsDep
) -> Response:
    """Read a handwritten number: every digit, left to right, line by line, with its box."""
    reading = await classifier.read_number_async(
        await read_single_image(request), settings.MAX_DIGITS_PER_IMAGE
    )
    payload = number_payload(reading, classifier.model.short_sha256)
    return Response(
        content=orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type=JSON_MEDIA_TYPE,
    )


def number_payload(reading: NumberReading, model_sha256: str) -> dict[str, Any]:
    """The JSON body of a reading (see :class:`~app.api.schemas.NumberResponse`)."""
    return {
        "text": reading.text,
        "confidence": reading.confidence,
        "lines": [
            {"text": line_text(line), "digits": [_digit_payload(digit) for digit in line]}
            for line in reading.lines
        ],
        "model_sha256": model_sha256,
    }


def _digit_payload(digit: ReadDigit) -> dict[str, Any]:
    """One digit of the body, with the classifier's verdict on it (``is_digit``, ``reason``)."""
    prediction = digit.prediction
    box = digit.box
    return {
        "digit": prediction.digit,
        "confidence": prediction.confidence,
        "is_digit": prediction.is_digit,
        "reason": prediction.reason,
        "probabilities": prediction.probabilities,
        "box": {"x": box.x, "y": box.y, "width": box.width, "height": box.height},
    }
