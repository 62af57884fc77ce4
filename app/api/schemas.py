"""Response models of the API, with the examples shown in the OpenAPI docs (``/docs``).

The prediction endpoints build their JSON with orjson straight from numpy arrays (see
``app.api.routes.predict``); their models here document that JSON and are what the tests
validate responses against.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.errors import AuthenticationError, DigitServiceError
from app.model_contract import NUM_CLASSES
from app.verdict import Reason

EXAMPLE_SHA256: Final = "3f9a0c41d2b7e8a65c0d14f2b9e3a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0"
_EXAMPLE_PROBABILITIES: Final[list[JsonValue]] = [
    1.2e-06,
    3.4e-05,
    0.000871,
    0.00193,
    4.1e-07,
    2.2e-05,
    3.3e-08,
    0.99627,
    0.000118,
    0.000754,
]

Digit = Annotated[int, Field(ge=0, le=NUM_CLASSES - 1, description="The predicted digit.")]
Probabilities = Annotated[
    list[float],
    Field(
        min_length=NUM_CLASSES,
        max_length=NUM_CLASSES,
        description="Probability of each digit; index = digit; they sum to 1.",
    ),
]
Confidence = Annotated[
    float,
    Field(
        ge=0.0,
        le=1.0,
        description=(
            "Probability of the predicted digit, calibrated: answers given at 0.9 are right "
            "about 9 times in 10 (see `GET /metrics`, `calibration`)."
        ),
    ),
]
IsDigit = Annotated[
    bool,
    Field(
        description=(
            "Whether the service believes the image shows one handwritten digit. When false, "
            "`digit` is only the network's best guess and `reason` says why."
        )
    ),
]
NotADigitReason = Annotated[
    Reason | None,
    Field(
        description=(
            "Set only when `is_digit` is false: `not_a_digit` (a letter, symbol, scribble or "
            "picture: the belief is spread over many digits), `several_digits` (digit-sized "
            "pieces side by side: a number; read it with `POST /predict/number`) or "
            "`low_confidence` (a digit, but two digits share the belief: `digit` and the "
            "second most probable one)."
        )
    ),
]
ShortSha256 = Annotated[str, Field(description="First 12 hex digits of the model file's SHA-256.")]


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine-readable code and a sentence for people."""

    code: str = Field(description="Stable identifier, e.g. `invalid_image`.")
    message: str = Field(description="What was wrong with the request, in words.")
    request_id: str | None = Field(
        default=None,
        description=(
            "ID of the request (also in the `X-Request-ID` response header and the server's "
            "log); absent on the per-file errors of a batch."
        ),
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_image",
                        "message": "the upload is not a decodable image (or it is truncated)",
                        "request_id": "3f9a0c41d2b7e8a65c0d14f2b9e3a7c6",
                    }
                }
            ]
        }
    )

    error: ErrorDetail


def error_response_doc(description: str, *errors: DigitServiceError) -> dict[str, Any]:
    """An entry of a route's OpenAPI ``responses``: the error schema, ``description`` and one
    named example per error."""
    examples = {
        error.code: {"value": {"error": {"code": error.code, "message": error.message}}}
        for error in errors
    }
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"examples": examples}},
    }


UNAUTHORIZED_RESPONSE: Final = error_response_doc(
    "No `X-API-Key` header, or a wrong key (only when API_KEY is set).",
    AuthenticationError("the API key in the X-API-Key header is not valid"),
)
"""The OpenAPI description of the 401 of the routes that need the API key."""


class PredictionResponse(BaseModel):
    """The model's answer for one image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "digit": 7,
                    "confidence": 0.99627,
                    "is_digit": True,
                    "reason": None,
                    "probabilities": _EXAMPLE_PROBABILITIES,
                    "model_sha256": EXAMPLE_SHA256[:12],
                },
                {
                    "digit": 4,
                    "confidence": 0.52,
                    "is_digit": False,
                    "reason": "low_confidence",
                    "probabilities": [0.0, 0.0, 0.01, 0.0, 0.52, 0.0, 0.0, 0.02, 0.01, 0.44],
                    "model_sha256": EXAMPLE_SHA256[:12],
                },
                {
                    "digit": 7,
                    "confidence": 0.21,
                    "is_digit": False,
                    "reason": "not_a_digit",
                    "probabilities": [0.08, 0.12, 0.1, 0.06, 0.11, 0.07, 0.05, 0.21, 0.1, 0.1],
                    "model_sha256": EXAMPLE_SHA256[:12],
                },
            ]
        }
    )

    digit: Digit
    confidence: Confidence
    is_digit: IsDigit
    reason: NotADigitReason = None
    probabilities: Probabilities
    model_sha256: ShortSha256
    input_image: str | None = Field(
        default=None,
        description=(
            "Only with `include_input=true`: base64 PNG of the 28 x 28 greyscale digit the model "
            "saw after preprocessing (white ink on black, as in MNIST)."
        ),
    )


class DigitScores(BaseModel):
    """The prediction for one image of a batch."""

    digit: Digit
    confidence: Confidence
    is_digit: IsDigit
    reason: NotADigitReason = None
    probabilities: Probabilities


class BatchItemResult(BaseModel):
    """The outcome for one ``file`` part of a batch, at its position in the request.

    Exactly one of ``prediction`` and ``error`` is set; ``status`` is the HTTP status the image
    would have got on its own from ``POST /predict`` (200, or the error's 4xx).
    """

    index: int = Field(ge=0, description="Position of the part among the request's files.")
    status: int = Field(description="200, or the 4xx this image alone would have got.")
    prediction: DigitScores | None = None
    error: ErrorDetail | None = None


class BatchPredictionResponse(BaseModel):
    """One result per uploaded file, in the order the files were sent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_sha256": EXAMPLE_SHA256[:12],
                    "results": [
                        {
                            "index": 0,
                            "status": 200,
                            "prediction": {
                                "digit": 7,
                                "confidence": 0.99627,
                                "is_digit": True,
                                "reason": None,
                                "probabilities": _EXAMPLE_PROBABILITIES,
                            },
                            "error": None,
                        },
                        {
                            "index": 1,
                            "status": 422,
                            "prediction": None,
                            "error": {
                                "code": "no_digit_found",
                                "message": "the image holds no digit: it is blank",
                            },
                        },
                    ],
                }
            ]
        }
    )

    model_sha256: ShortSha256
    results: list[BatchItemResult]


class DigitBox(BaseModel):
    """Where a digit is, in the uploaded image's pixels (origin at the top left)."""

    x: int = Field(ge=0, description="Left edge.")
    y: int = Field(ge=0, description="Top edge.")
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class NumberDigit(BaseModel):
    """One digit of a number: the model's answer for it and where it is."""

    digit: Digit
    confidence: Confidence
    is_digit: IsDigit
    reason: NotADigitReason = None
    probabilities: Probabilities
    box: DigitBox


class NumberLine(BaseModel):
    """One line of writing, its digits left to right."""

    text: str = Field(description="The line's digits.")
    digits: list[NumberDigit]


class NumberResponse(BaseModel):
    """The number read from an image: every digit, line by line from top to bottom."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "text": "27",
                    "confidence": 0.9912,
                    "lines": [
                        {
                            "text": "27",
                            "digits": [
                                {
                                    "digit": 2,
                                    "confidence": 0.99493,
                                    "is_digit": True,
                                    "reason": None,
                                    "probabilities": [
                                        2.1e-05,
                                        0.00012,
                                        0.99493,
                                        0.00231,
                                        1.1e-06,
                                        3.2e-05,
                                        4.4e-06,
                                        0.00168,
                                        0.00089,
                                        3.2e-05,
                                    ],
                                    "box": {"x": 38, "y": 52, "width": 61, "height": 88},
                                },
                                {
                                    "digit": 7,
                                    "confidence": 0.99627,
                                    "is_digit": True,
                                    "reason": None,
                                    "probabilities": _EXAMPLE_PROBABILITIES,
                                    "box": {"x": 121, "y": 49, "width": 55, "height": 93},
                                },
                            ],
                        }
                    ],
                    "model_sha256": EXAMPLE_SHA256[:12],
                }
            ]
        }
    )

    text: str = Field(description="The digits read, lines joined by a newline (`\\n`).")
    confidence: Confidence = Field(
        description=(
            "The whole reading's confidence: the product of its digits' confidences (the chance "
            "that every digit is right, were their errors independent)."
        )
    )
    lines: list[NumberLine]
    model_sha256: ShortSha256
