"""Calibrate the trained network and choose where "not a digit" begins, on held-out data only.

:func:`measure_operating_point` runs after training, on the validation digits (never trained
on), shown two ways: as MNIST has them and rendered as photos, scans and canvas exports through
the service's preprocessing (real uploads look like the second kind more than the first). The
validation digits are split in two halves, each shown both ways:

1. on the first half, the temperature is fitted (:func:`training.calibration.fit_temperature`)
   and the not-a-digit threshold chosen: the calibrated confidence below which
   ``profile.false_rejection_rate`` of the correctly read digits fall;
2. on the second half, what they do is measured: calibration error before and after, the share
   of digits (and of correctly read digits) rejected;
3. held-out synthetic not-a-digit images (:mod:`training.outliers`, drawn with another seed and
   from validation digits) measure what the threshold catches, and how well confidence
   separates the second half's correct digits from them (AUROC).

The result is stored in ``metrics.json``; the service reads its temperature and threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

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

RENDERED_VALIDATION_DIGITS: Final = 1000
"""Validation digits of each half rendered as real uploads (when the profile renders training
digits at all)."""

HELD_OUT_OUTLIERS: Final = 2000
"""Synthetic not-a-digit images drawn for the measurement (fewer for a profile without
outlier exposure, where the figure is only indicative)."""


@dataclass(frozen=True)
class OperatingPoint:
    """The temperature, the threshold and what they were measured to do."""

    temperature: float
    threshold: float
    false_rejection_rate: float
    """The share of correctly read validation digits (first half) the threshold was chosen to
    reject."""
    fit_size: int
    """Digits of the first half, both ways, that the temperature and threshold were fitted on."""
    validation_size: int
    """Digits of the second half, both ways, that the validation figures are measured on."""
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
                "fitted_on": "half of the validation digits, as MNIST and rendered as uploads",
                "fit_size": self.fit_size,
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
    first, second = _halves(validation_digits, seed)
    fit_images, fit_labels = _both_ways(first, profile, seed + 2)
    check_images, check_labels = _both_ways(second, profile, seed + 3)
    fit_raw = predict_probabilities(model, fit_images)
    temperature = fit_temperature(fit_raw, fit_labels)
    fit_calibrated = apply_temperature(fit_raw, temperature)
    fit_correct = fit_calibrated.argmax(axis=1) == fit_labels
    threshold = rejection_threshold(
        fit_calibrated.max(axis=1)[fit_correct], profile.false_rejection_rate
    )

    raw = predict_probabilities(model, check_images)
    calibrated = apply_temperature(raw, temperature)
    confidence = calibrated.max(axis=1)
    correct = calibrated.argmax(axis=1) == check_labels
    outlier_count = HELD_OUT_OUTLIERS if profile.outlier_count > 0 else HELD_OUT_OUTLIERS // 10
    outliers = render_outliers(validation_digits, outlier_count, seed + 1)
    outlier_confidence = apply_temperature(predict_probabilities(model, outliers), temperature).max(
        axis=1
    )
    return OperatingPoint(
        temperature=temperature,
        threshold=threshold,
        false_rejection_rate=profile.false_rejection_rate,
        fit_size=len(fit_labels),
        validation_size=len(check_labels),
        validation_accuracy=float(correct.mean()),
        validation_ece_before=expected_calibration_error(raw, check_labels),
        validation_ece_after=expected_calibration_error(calibrated, check_labels),
        validation_rejected=float((confidence < threshold).mean()),
        validation_correct_rejected=float((confidence[correct] < threshold).mean()),
        outlier_size=len(outliers),
        outliers_flagged=float((outlier_confidence < threshold).mean()),
        auroc=auroc(confidence[correct], outlier_confidence),
    )


def _halves(digits: DigitSet, seed: int) -> tuple[DigitSet, DigitSet]:
    """The digits in two halves of a seeded shuffle."""
    order = np.random.default_rng([seed, 2]).permutation(len(digits))
    middle = len(order) // 2
    return digits.subset(order[:middle]), digits.subset(order[middle:])


def _both_ways(
    digits: DigitSet, profile: TrainingProfile, seed: int
) -> tuple[NDArray[np.uint8], NDArray[np.intp]]:
    """The digits as they are and (when the profile renders digits) rendered as uploads."""
    count = min(RENDERED_VALIDATION_DIGITS, len(digits)) if profile.realistic_count > 0 else 0
    rendered = render_realistic_digits(digits, count, seed)
    both = digits.joined(rendered)
    return both.images, both.labels.astype(np.intp)
