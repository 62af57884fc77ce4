"""Response models of the endpoints that describe the service: ``GET /metrics`` (the stored
evaluation), ``GET /model`` and the health probes, with their OpenAPI examples. The prediction
endpoints' models are in :mod:`app.api.schemas`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.api.schemas import EXAMPLE_SHA256, ShortSha256
from app.evaluation_file import CalibrationScores, EvaluationScores, NotADigitScores
from app.model_contract import NUM_CLASSES


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
                        "sha256": EXAMPLE_SHA256,
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
                    "sha256": EXAMPLE_SHA256,
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
        json_schema_extra={"examples": [{"status": "ready", "model_sha256": EXAMPLE_SHA256[:12]}]}
    )

    status: Literal["ready"]
    model_sha256: ShortSha256
