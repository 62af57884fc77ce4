"""Training batches and profiles: fresh, seeded augmentation per epoch; JSON-ready settings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.model_contract import to_model_input
from training.augmentation import NO_AUGMENTATION, AugmentationSettings
from training.datasets import DigitSet
from training.profiles import PROFILES, TrainingProfile
from training.train import AugmentedBatches, DistilledBatches, validation_size_for


def _digits(count: int = 10) -> DigitSet:
    """``count`` random digits with labels 0-9 repeating."""
    images = np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    return DigitSet(images=images, labels=(np.arange(count) % 10).astype(np.uint8))


def test_augmented_batches_cover_every_digit_once_per_epoch() -> None:
    digits = _digits()
    batches = AugmentedBatches(digits, batch_size=4, augmentation=NO_AUGMENTATION, seed=0)
    assert len(batches) == 3
    inputs = np.concatenate([batches[index][0] for index in range(len(batches))])
    labels = np.concatenate([batches[index][1] for index in range(len(batches))])
    assert inputs.shape == (10, 28, 28, 1) and inputs.dtype == np.float32
    # Without augmentation an epoch is a permutation of the scaled digits, labels kept with them.
    expected = to_model_input(digits.images)
    order = [int(np.flatnonzero((expected == row).all(axis=(1, 2, 3)))[0]) for row in inputs]
    assert sorted(order) == list(range(10))
    assert labels.tolist() == digits.labels[order].tolist()


def test_augmented_batches_redraw_each_epoch_and_repeat_with_seed() -> None:
    settings = AugmentationSettings()
    first_run = AugmentedBatches(_digits(), batch_size=10, augmentation=settings, seed=4)
    second_run = AugmentedBatches(_digits(), batch_size=10, augmentation=settings, seed=4)
    epochs = []
    for batches in (first_run, second_run):
        batches.on_epoch_begin()
        epoch_one = batches[0][0]
        batches.on_epoch_end()
        batches.on_epoch_begin()
        epochs.append((epoch_one, batches[0][0]))
    (first_one, first_two), (second_one, second_two) = epochs
    assert not np.array_equal(first_one, first_two)
    np.testing.assert_array_equal(first_one, second_one)
    np.testing.assert_array_equal(first_two, second_two)


def test_validation_size_for_small_sets_is_a_tenth() -> None:
    profile = PROFILES["full"]
    assert validation_size_for(60_000, profile) == 5000
    assert validation_size_for(4000, profile) == 400


def test_profile_hyperparameters_are_json_ready() -> None:
    for profile in PROFILES.values():
        values = json.loads(json.dumps(profile.hyperparameters()))
        assert values["epochs"] == profile.epochs
        assert values["augmentation"]["max_shift_pixels"] >= 0


def test_training_profile_refuses_zero_epochs() -> None:
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        TrainingProfile(name="broken", epochs=0)


class _ConstantTeacher:
    """A stand-in teacher that always answers 0.8 for digit 3 and the rest spread evenly."""

    def predict(self, inputs: np.ndarray, **_: object) -> np.ndarray:
        probabilities = np.full((inputs.shape[0], 10), 0.2 / 9, dtype=np.float32)
        probabilities[:, 3] = 0.8
        return probabilities


def test_distilled_batches_blend_true_labels_with_the_teachers_softened_answers() -> None:
    digits = _digits()
    batches = DistilledBatches(
        digits,
        batch_size=10,
        augmentation=NO_AUGMENTATION,
        seed=0,
        teacher=_ConstantTeacher(),
        views=2,
        weight=0.5,
        temperature=1.0,
    )
    inputs, targets = batches[0]
    assert inputs.shape == (10, 28, 28, 1) and targets.shape == (10, 10)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    # Half the weight on the true label, half on the teacher's answer (0.8 on digit 3).
    labels = targets.argmax(axis=1)
    for row, label in zip(targets, labels, strict=True):
        expected = 0.5 * 0.8 + (0.5 if label == 3 else 0.0)
        assert row[3] == pytest.approx(expected, abs=1e-6)


def test_distilled_batches_soften_the_teacher_with_temperature() -> None:
    sharp = DistilledBatches(
        _digits(),
        10,
        NO_AUGMENTATION,
        0,
        teacher=_ConstantTeacher(),
        views=1,
        weight=1.0,
        temperature=1.0,
    )
    soft = DistilledBatches(
        _digits(),
        10,
        NO_AUGMENTATION,
        0,
        teacher=_ConstantTeacher(),
        views=1,
        weight=1.0,
        temperature=4.0,
    )
    assert float(soft[0][1][:, 3].max()) < float(sharp[0][1][:, 3].max())


def test_full_profile_trains_a_teacher_on_realistic_digits() -> None:
    full = PROFILES["full"]
    assert full.teacher_epochs > 0 and full.realistic_count > 0
    assert full.augmentation.elastic_pixels > 0 and full.augmentation.max_shear > 0
