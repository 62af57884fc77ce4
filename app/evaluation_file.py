"""The schema of ``metrics.json``, the evaluation that training writes next to the model.

One schema for both sides: training validates what it writes against it
(:func:`training.reports.write_metrics`), and the service validates the file at start-up (a
malformed one stops it like a bad model does) and serves parts of it from ``GET /metrics`` and
``GET /model``. Unknown extra fields are ignored when reading.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.model_contract import NUM_CLASSES

SCHEMA_VERSION: Final = 1
"""Version of the layout below; :attr:`EvaluationFile.schema_version` must equal it."""

Score = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _StoredRecord(BaseModel):
    """A read-only part of ``metrics.json``; fields not declared here are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class ClassScores(_StoredRecord):
    """Precision, recall and F1 of one digit on the test split."""

    digit: Annotated[int, Field(ge=0, le=NUM_CLASSES - 1)]
    precision: Score
    recall: Score
    f1: Score
    support: Count


class EvaluationScores(_StoredRecord):
    """Scores of the model on the held-out test split."""

    size: Annotated[int, Field(gt=0)]
    accuracy: Score
    precision_macro: Score
    recall_macro: Score
    f1_macro: Score
    loss: Annotated[float, Field(ge=0.0)]
    per_class: Annotated[list[ClassScores], Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)]
    confusion_matrix: Annotated[
        list[Annotated[list[Count], Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)]],
        Field(
            min_length=NUM_CLASSES,
            max_length=NUM_CLASSES,
            description="Rows are the true digit, columns the predicted digit.",
        ),
    ]

    @field_validator("per_class")
    @classmethod
    def _one_entry_per_digit(cls, value: list[ClassScores]) -> list[ClassScores]:
        """Refuse per-class scores that are not digits 0 to 9 in order."""
        if [entry.digit for entry in value] != list(range(NUM_CLASSES)):
            raise ValueError("per_class must list digits 0 to 9 in order")
        return value


class StoredModelInfo(_StoredRecord):
    """What training recorded about the model file."""

    name: str
    file: str
    sha256: Sha256Hex
    parameters: Count
    input_shape: list[int]
    classes: list[int]
    layers: list[Any] = Field(default_factory=list)


class DataInfo(_StoredRecord):
    """Where the training and test data came from (file names and hashes, no paths)."""

    source: str
    files: dict[str, str] = Field(default_factory=dict)
    train_size: Count
    validation_size: Count
    test_size: Count


class TrainingInfo(_StoredRecord):
    """How the model was trained."""

    profile: str
    seed: int
    epochs: Count
    batch_size: Count
    learning_rate: float
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    seconds: Annotated[float, Field(ge=0.0)]
    trained_at: datetime
    validation_accuracy: Score


class ReliabilityBin(_StoredRecord):
    """One confidence bin of a reliability table: the answers whose confidence lies in
    (``low``, ``high``], their mean confidence and the share of them that is right."""

    low: Score
    high: Score
    count: Annotated[int, Field(gt=0)]
    confidence: Score
    accuracy: Score


class CalibrationScores(_StoredRecord):
    """The temperature the service divides the network's logits by, and what it does: the
    expected calibration error (15 bins) before and after, on the held-out digits it was
    fitted on and on the test split, with the test split's reliability table."""

    method: Literal["temperature scaling"]
    temperature: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    fitted_on: str
    validation_size: Annotated[int, Field(gt=0)]
    validation_ece_before: Score
    validation_ece_after: Score
    test_ece_before: Score
    test_ece_after: Score
    test_reliability: list[ReliabilityBin]


class NotADigitScores(_StoredRecord):
    """The operating point of the not-a-digit verdict: the calibrated confidence below which
    an answer is not taken for a digit, chosen so that ``false_rejection_rate`` of correctly
    read validation digits fall below it, and what it was measured to do on validation
    digits, held-out synthetic not-a-digit images (``outliers_flagged``; ``auroc``: confidence
    of correct digits against them) and the test split."""

    threshold: Score
    false_rejection_rate: Score
    validation_accuracy: Score
    validation_rejected: Score
    validation_correct_rejected: Score
    outlier_size: Count
    outliers_flagged: Score
    auroc: Score
    test_rejected: Score


class EvaluationFile(_StoredRecord):
    """The whole of ``metrics.json``."""

    schema_version: Literal[1]
    model: StoredModelInfo
    test: EvaluationScores
    calibration: CalibrationScores
    not_a_digit: NotADigitScores
    data: DataInfo
    training: TrainingInfo
    versions: dict[str, str]
