"""Calibrate the trained network and choose where "not a digit" begins, on held-out data only.

:func:`measure_operating_point` runs after training, on the validation digits (never trained
on) shown two ways, as MNIST has them and rendered as photos, scans and canvas exports through
the service's preprocessing (real uploads look like the second kind more than the first):

1. the temperature is fitted on them (:func:`training.calibration.fit_temperature`);
2. the not-a-digit threshold is the calibrated confidence below which
   ``profile.false_rejection_rate`` of the correctly read ones fall;
3. held-out synthetic not-a-digit images (:mod:`training.outliers`, drawn with another seed and
   from the validation digits) measure what that threshold catches, and how well confidence
   separates correct digits from them (AUROC).

The result is stored in ``metrics.json``; the service reads its temperature and threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from training.calibration import (
    apply_temperature,
    auroc,
    expected_calibration_error,
    fit_temperature,
    rejection_threshold,
)
from training.datasets import DigitSet
from training.evaluate import predict_probabilities
from training.outliers import render_outliers
from training.profiles import TrainingProfile
from training.realistic import render_realistic_digits

RENDERED_VALIDATION_DIGITS: Final = 2000
"""Validation digits rendered as real uploads for the calibration (when the profile renders
training digits at all)."""

HELD_OUT_OUTLIERS: Final = 2000
"""Synthetic not-a-digit images drawn for the measurement (fewer for a profile without
outlier exposure, where the figure is only indicative)."""


@dataclass(frozen=True)
class OperatingPoint:
    """The temperature, the threshold and what they were measured to do."""

    temperature: float
    threshold: float
    false_rejection_rate: float
    """The share of correctly read validation digits the threshold was chosen to reject."""
    validation_size: int
    validation_accuracy: float
    validation_ece_before: float
    validation_ece_after: float
    validation_rejected: float
    """Share of all validation digits (right or wrong) below the threshold."""
    validation_correct_rejected: float
    outlier_size: int
    outliers_flagged: float
    """Share of the held-out not-a-digit images below the threshold."""
    auroc: float
    """Confidence of correct validation digits against held-out not-a-digit images."""

    def as_metrics(self) -> dict[str, Any]:
        """The ``calibration`` and ``not_a_digit`` sections of ``metrics.json``."""
        return {
            "calibration": {
                "method": "temperature scaling",
                "temperature": self.temperature,
                "fitted_on": "validation digits, as MNIST and rendered as real uploads",
                "validation_size": self.validation_size,
                "validation_ece_before": self.validation_ece_before,
                "validation_ece_after": self.validation_ece_after,
            },
            "not_a_digit": {
                "threshold": self.threshold,
                "false_rejection_rate": self.false_rejection_rate,
                "validation_accuracy": self.validation_accuracy,
                "validation_rejected": self.validation_rejected,
                "validation_correct_rejected": self.validation_correct_rejected,
                "outlier_size": self.outlier_size,
                "outliers_flagged": self.outliers_flagged,
                "auroc": self.auroc,
            },
        }


def measure_operating_point(
    model: Any,
    validation_digits: DigitSet,
    profile: TrainingProfile,
    seed: int,
) -> OperatingPoint:
    """Fit the temperature and choose the threshold for ``model`` (see the module docstring).
    The held-out outliers of the ``several`` kind are made of validation digits."""
    if profile.false_rejection_rate is None:
        raise ValueError("this profile does not calibrate (false_rejection_rate is None)")
    rendered = render_realistic_digits(
        validation_digits,
        RENDERED_VALIDATION_DIGITS if profile.realistic_count > 0 else 0,
        seed + 2,
    )
    images = np.concatenate([validation_digits.images, rendered.images])
    labels = np.concatenate([validation_digits.labels, rendered.labels]).astype(np.intp)
    raw = predict_probabilities(model, images)
    temperature = fit_temperature(raw, labels)
    calibrated = apply_temperature(raw, temperature)
    confidence = calibrated.max(axis=1)
    correct = calibrated.argmax(axis=1) == labels
    threshold = rejection_threshold(confidence[correct], profile.false_rejection_rate)

    outlier_count = HELD_OUT_OUTLIERS if profile.outlier_count > 0 else HELD_OUT_OUTLIERS // 10
    outliers = render_outliers(validation_digits, outlier_count, seed + 1)
    outlier_confidence = apply_temperature(predict_probabilities(model, outliers), temperature).max(
        axis=1
    )
    return OperatingPoint(
        temperature=temperature,
        threshold=threshold,
        false_rejection_rate=profile.false_rejection_rate,
        validation_size=len(labels),
        validation_accuracy=float(correct.mean()),
        validation_ece_before=expected_calibration_error(raw, labels),
        validation_ece_after=expected_calibration_error(calibrated, labels),
        validation_rejected=float((confidence < threshold).mean()),
        validation_correct_rejected=float((confidence[correct] < threshold).mean()),
        outlier_size=len(outliers),
        outliers_flagged=float((outlier_confidence < threshold).mean()),
        auroc=auroc(confidence[correct], outlier_confidence),
    )
