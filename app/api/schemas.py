"""Response models of the API, with the examples shown in the OpenAPI docs (``/docs``).

The prediction endpoints build their JSON with orjson straight from numpy arrays (see
``app.api.routes.predict``); their models here document that JSON and are what the tests
validate responses against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.errors import AuthenticationError, DigitServiceError
from app.evaluation_file import CalibrationScores, EvaluationScores, NotADigitScores
from app.model_contract import NUM_CLASSES
from app.verdict import Reason

_EXAMPLE_SHA256: Final = "3f9a0c41d2b7e8a65c0d14f2b9e3a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0"
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
                    "model_sha256": _EXAMPLE_SHA256[:12],
                },
                {
                    "digit": 4,
                    "confidence": 0.52,
                    "is_digit": False,
                    "reason": "low_confidence",
                    "probabilities": [0.0, 0.0, 0.01, 0.0, 0.52, 0.0, 0.0, 0.02, 0.01, 0.44],
                    "model_sha256": _EXAMPLE_SHA256[:12],
                },
                {
                    "digit": 7,
                    "confidence": 0.21,
                    "is_digit": False,
                    "reason": "not_a_digit",
                    "probabilities": [0.08, 0.12, 0.1, 0.06, 0.11, 0.07, 0.05, 0.21, 0.1, 0.1],
                    "model_sha256": _EXAMPLE_SHA256[:12],
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
                    "model_sha256": _EXAMPLE_SHA256[:12],
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


class ModelIdentity(BaseModel):
    """Which model file the service runs."""

    name: str
    file: str
    sha256: str = Field(description="SHA-256 of the model file, hex.")


_EXAMPLE_PER_CLASS: Final[list[JsonValue]] = [
    {"digit": digit, "precision": 0.987, "recall": 0.989, "f1": 0.988, "support": 1000}
    for digit in range(NUM_CLASSES)
]
_EXAMPLE_CONFUSION: Final[list[JsonValue]] = [
    [
        989 if column == row else (2 if column == (row + 1) % NUM_CLASSES else 1)
        for column in range(10)
    ]
    for row in range(NUM_CLASSES)
]


class EvaluationResponse(BaseModel):
    """The model's stored evaluation on the MNIST test split, and which model it describes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {
                        "name": "mnist_dense",
                        "file": "mnist_dense.keras",
                        "sha256": _EXAMPLE_SHA256,
                    },
                    "test": {
                        "size": 10000,
                        "accuracy": 0.9871,
                        "precision_macro": 0.987,
                        "recall_macro": 0.9869,
                        "f1_macro": 0.9869,
                        "loss": 0.0462,
                        "per_class": _EXAMPLE_PER_CLASS,
                        "confusion_matrix": _EXAMPLE_CONFUSION,
                    },
                    "calibration": {
                        "method": "temperature scaling",
                        "temperature": 0.63,
                        "fitted_on": "half of the validation digits, as MNIST and rendered",
                        "fit_size": 3500,
                        "validation_size": 3500,
                        "validation_ece_before": 0.022,
                        "validation_ece_after": 0.006,
                        "test_ece_before": 0.017,
                        "test_ece_after": 0.004,
                        "test_reliability": [
                            {
                                "low": 0.9333,
                                "high": 1.0,
                                "count": 9650,
                                "confidence": 0.996,
                                "accuracy": 0.997,
                            }
                        ],
                    },
                    "not_a_digit": {
                        "threshold": 0.83,
                        "false_rejection_rate": 0.02,
                        "validation_accuracy": 0.989,
                        "validation_rejected": 0.026,
                        "validation_correct_rejected": 0.02,
                        "outlier_size": 2000,
                        "outliers_flagged": 0.93,
                        "auroc": 0.994,
                        "test_rejected": 0.022,
                    },
                    "digit_confidence_threshold": 0.83,
                }
            ]
        }
    )

    model: ModelIdentity
    test: EvaluationScores
    calibration: CalibrationScores = Field(
        description=(
            "Temperature scaling of the served probabilities: the temperature, the expected "
            "calibration error (15 bins) before and after on the held-out digits it was fitted "
            "on and on the test split, and the test split's reliability table."
        )
    )
    not_a_digit: NotADigitScores = Field(
        description=(
            "The not-a-digit operating point: the calibrated confidence threshold, the share of "
            "correctly read validation digits it was chosen to reject, and what it does on "
            "validation digits, held-out synthetic not-a-digit images and the test split."
        )
    )
    digit_confidence_threshold: float = Field(
        ge=0.0,
        le=1.0,
        description=(
            "The threshold this service applies: `not_a_digit.threshold`, unless the "
            "DIGIT_CONFIDENCE_THRESHOLD setting replaces it."
        ),
    )


class LayerDescription(BaseModel):
    """One Dense layer of the network."""

    name: str
    units: int
    activation: str


class ModelResponse(BaseModel):
    """What the model is, where it came from, and what the service runs it with."""

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "name": "mnist_dense",
                    "file": "mnist_dense.keras",
                    "sha256": _EXAMPLE_SHA256,
                    "input_shape": [28, 28, 1],
                    "classes": list(range(NUM_CLASSES)),
                    "parameters": 109386,
                    "layers": [
                        {"name": "dense", "units": 128, "activation": "relu"},
                        {"name": "dense_1", "units": 64, "activation": "relu"},
                        {"name": "dense_2", "units": 10, "activation": "softmax"},
                    ],
                    "trained_at": "2025-06-01T12:00:00Z",
                    "training_profile": "full",
                    "saved_with_keras": "3.10.0",
                    "training_versions": {
                        "python": "3.11.2",
                        "tensorflow": "2.19.0",
                        "keras": "3.10.0",
                        "numpy": "2.1.3",
                    },
                    "serving_versions": {"python": "3.11.2", "numpy": "2.1.3"},
                    "loaded_at": "2025-06-02T08:30:00Z",
                }
            ]
        },
    )

    name: str
    file: str
    sha256: str
    input_shape: list[int] = Field(description="Height, width, channels of one input image.")
    classes: list[int] = Field(description="Output index -> digit.")
    parameters: int = Field(description="Number of weights and biases.")
    layers: list[LayerDescription]
    trained_at: datetime
    training_profile: str
    saved_with_keras: str | None = Field(description="Keras version that wrote the file.")
    training_versions: dict[str, str] = Field(description="Library versions used in training.")
    serving_versions: dict[str, str] = Field(description="Versions this service runs with.")
    loaded_at: datetime


class HealthResponse(BaseModel):
    """The process is alive and answering."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class ReadinessResponse(BaseModel):
    """The model is loaded and passed its self-test: the service takes predictions."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ready", "model_sha256": _EXAMPLE_SHA256[:12]}]}
    )

    status: Literal["ready"]
    model_sha256: ShortSha256


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
                    "model_sha256": _EXAMPLE_SHA256[:12],
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
