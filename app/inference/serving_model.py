"""The model the service serves: weights, identity and stored evaluation, loaded once at start-up.

>>> model = load_serving_model(Path("models"))  # doctest: +SKIP
>>> model.short_sha256  # doctest: +SKIP
'3f9a0c41d2b7'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from app.errors import ModelLoadError
from app.evaluation_file import EvaluationFile
from app.inference.artifact_file import read_artifact_bytes
from app.inference.dense_network import DenseNetwork
from app.inference.keras_archive import KerasArchive, read_keras_archive
from app.model_contract import (
    EVALUATION_FILENAME,
    INPUT_SHAPE,
    MODEL_FILENAME,
    NUM_CLASSES,
    to_model_input,
)

SHORT_SHA256_LENGTH: Final = 12

# A metrics.json larger than this is not ours; refuse it before parsing.
_MAX_EVALUATION_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServingModel:
    """The loaded network (at the temperature its evaluation stores) with what identifies it
    and how well it scored.

    It is immutable and its weights are read-only, so request threads share it freely.
    """

    network: DenseNetwork
    archive: KerasArchive
    evaluation: EvaluationFile
    """The stored evaluation (``metrics.json``) of exactly this model file."""
    loaded_at: datetime

    @property
    def sha256(self) -> str:
        """SHA-256 of the model file, hex."""
        return self.archive.sha256

    @property
    def short_sha256(self) -> str:
        """The first 12 hex digits of :attr:`sha256`, as responses carry it."""
        return self.archive.sha256[:SHORT_SHA256_LENGTH]

    @property
    def digit_threshold(self) -> float:
        """The calibrated confidence below which an answer is not taken for a digit, chosen
        for this model on validation data (``metrics.json``: ``not_a_digit.threshold``)."""
        return self.evaluation.not_a_digit.threshold

    def predict_probabilities(self, digits: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Calibrated class probabilities, shape (n, 10), for MNIST-format digits (28, 28) or
        (n, 28, 28)."""
        return self.network.predict_probabilities(to_model_input(digits))


def load_serving_model(model_dir: Path) -> ServingModel:
    """Load ``mnist_dense.keras`` and ``metrics.json`` from ``model_dir`` and check them.

    Raises :class:`~app.errors.ModelLoadError` when either file is missing or unreadable, the
    model has another architecture, ``metrics.json`` does not follow its schema or describes a
    different model file (SHA-256 mismatch), or the network fails its output self-check.
    """
    archive = read_keras_archive(model_dir / MODEL_FILENAME)
    evaluation = read_evaluation_file(model_dir / EVALUATION_FILENAME)
    if evaluation.model.sha256 != archive.sha256:
        raise ModelLoadError(
            f"{model_dir / EVALUATION_FILENAME} describes a model with SHA-256 "
            f"{evaluation.model.sha256[:SHORT_SHA256_LENGTH]}..., but {MODEL_FILENAME} has "
            f"{archive.sha256[:SHORT_SHA256_LENGTH]}...: the metrics are not this model's"
        )
    network = DenseNetwork.from_archive(archive, evaluation.calibration.temperature)
    check_network_outputs(network)
    return ServingModel(
        network=network, archive=archive, evaluation=evaluation, loaded_at=datetime.now(UTC)
    )


def read_evaluation_file(path: Path) -> EvaluationFile:
    """Read and validate ``metrics.json``; any problem is a :class:`~app.errors.ModelLoadError`."""
    text = read_artifact_bytes(
        path, kind="metrics file", max_bytes=_MAX_EVALUATION_BYTES, too_large="is implausibly large"
    )
    try:
        return EvaluationFile.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']) or 'document'}: {issue['msg']}"
            for issue in error.errors()[:3]
        )
        raise ModelLoadError(f"metrics file {path} is not valid: {problems}") from error


def check_network_outputs(network: DenseNetwork) -> None:
    """Run a blank and a mid-grey input through the network and check the outputs are
    probabilities: shape (2, 10), finite, each in [0, 1], each row summing to 1."""
    probes = np.stack(
        [np.zeros(INPUT_SHAPE, dtype=np.float32), np.full(INPUT_SHAPE, 0.5, dtype=np.float32)]
    )
    probabilities = network.predict_probabilities(probes)
    if (
        probabilities.shape != (len(probes), NUM_CLASSES)
        or not np.all(np.isfinite(probabilities))
        or np.any(probabilities < 0.0)
        or np.any(probabilities > 1.0)
        or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    ):
        raise ModelLoadError("the model's self-test failed: its outputs are not probabilities")
