"""Fit the dense network: seeded, a held-out validation split, augmented digits, realistic
renderings passed through the service's preprocessing, and knowledge distillation from a small
convolutional teacher trained first by the same run.

The steps of :func:`train_model`:

1. hold out a validation split (never trained on, by the teacher either);
2. add :mod:`training.realistic` renderings of training digits and
   :mod:`training.typed_digits` (cached);
3. train the teacher (:func:`training.model.build_teacher_model`) on augmented digits;
4. draw a few augmented views of the training digits, label each with a blend of its true
   label and the teacher's softened prediction, and train the dense student on them, a
   fresh shuffle of one view each epoch. Only the student is returned.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import NDArray

from app.model_contract import NUM_CLASSES, to_model_input
from training.augmentation import AugmentationSettings, augment_digits
from training.datasets import DigitSet, split_validation
from training.model import build_teacher_model, build_training_model, to_inference_model
from training.operating_point import OperatingPoint, measure_operating_point
from training.outliers import render_outliers
from training.profiles import TrainingProfile
from training.realistic import render_realistic_digits
from training.typed_digits import render_typed_digits


class AugmentedBatches(keras.utils.PyDataset):  # type: ignore[misc]
    """Training batches: every epoch a new shuffle and new random distortions of each digit.

    The random draws come from a generator seeded once, and each epoch is prepared whole at the
    start of the epoch, so the batches do not depend on how Keras schedules its reads.
    """

    def __init__(
        self,
        digits: DigitSet,
        batch_size: int,
        augmentation: AugmentationSettings,
        seed: int,
    ) -> None:
        super().__init__()
        self._digits = digits
        self._batch_size = batch_size
        self._augmentation = augmentation
        self._random = np.random.default_rng(seed)
        self._epochs_begun = 0
        self._inputs, self._labels = self._prepare_epoch()

    def _prepare_epoch(self) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
        """Shuffle and distort the digits for one epoch, then scale them for the model."""
        order = self._random.permutation(len(self._digits))
        images = augment_digits(self._digits.images[order], self._augmentation, self._random)
        return to_model_input(images), self._digits.labels[order].astype(np.int32)

    @property
    def num_batches(self) -> int:
        """Batches per epoch; the last one may be smaller."""
        return math.ceil(len(self._digits) / self._batch_size)

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.num_batches

    def __getitem__(self, index: int) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
        """Return batch ``index`` of the current epoch as (inputs, labels)."""
        start = index * self._batch_size
        stop = start + self._batch_size
        return self._inputs[start:stop], self._labels[start:stop]

    def on_epoch_begin(self) -> None:
        """Prepare fresh batches, except for the first epoch, prepared at construction."""
        if self._epochs_begun > 0:
            self._inputs, self._labels = self._prepare_epoch()
        self._epochs_begun += 1


class DistilledBatches(keras.utils.PyDataset):  # type: ignore[misc]
    """Training batches for the student: augmented views labelled by the teacher, and
    not-a-digit images (outlier exposure) whose target is the uniform distribution.

    ``views`` augmented copies of the digits are drawn once (seeded); each copy's target is
    ``(1 - weight) * one_hot(label) + weight * teacher_probabilities ** (1 / temperature)``
    (renormalised), or the one-hot label alone without a teacher; ``clean_fraction`` of the
    digits of each view stay undistorted. Each view also holds the ``outliers``, distorted
    the same way, with the target 1/10 for every digit: the network learns to spread its
    belief over all ten on what is not a digit. Each epoch takes the next view in a fresh
    shuffle, so the teacher runs ``views`` times rather than once per epoch.
    """

    def __init__(
        self,
        digits: DigitSet,
        batch_size: int,
        augmentation: AugmentationSettings,
        seed: int,
        *,
        teacher: Any | None,
        views: int,
        weight: float,
        temperature: float,
        clean_fraction: float = 0.0,
        outliers: NDArray[np.uint8] | None = None,
    ) -> None:
        super().__init__()
        self._batch_size = batch_size
        self._random = np.random.default_rng(seed)
        outlier_images = (
            outliers if outliers is not None else np.zeros((0, *digits.images.shape[1:]), np.uint8)
        )
        self._count = len(digits) + len(outlier_images)
        one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[digits.labels]
        uniform = np.full((len(outlier_images), NUM_CLASSES), 1.0 / NUM_CLASSES, np.float32)
        self._images: list[NDArray[np.uint8]] = []
        self._targets: list[NDArray[np.float32]] = []
        for _ in range(views):
            images = augment_digits(digits.images, augmentation, self._random)
            clean = self._random.random(len(digits)) < clean_fraction
            images[clean] = digits.images[clean]
            targets = one_hot
            if teacher is not None:
                soft = teacher.predict(to_model_input(images), batch_size=1024, verbose=0)
                soft = np.power(np.clip(soft, 1e-7, 1.0), 1.0 / temperature)
                soft /= soft.sum(axis=1, keepdims=True)
                targets = ((1.0 - weight) * one_hot + weight * soft).astype(np.float32)
            if len(outlier_images):
                images = np.concatenate(
                    [images, augment_digits(outlier_images, augmentation, self._random)]
                )
                targets = np.concatenate([targets, uniform])
            self._images.append(images)
            self._targets.append(targets)
        self._epochs_begun = 0
        self._view = 0
        self._order = self._random.permutation(self._count)

    @property
    def num_batches(self) -> int:
        """Batches per epoch; the last one may be smaller."""
        return math.ceil(self._count / self._batch_size)

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.num_batches

    def __getitem__(self, index: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Return batch ``index`` of the current epoch as (inputs, soft targets)."""
        chosen = self._order[index * self._batch_size : (index + 1) * self._batch_size]
        return to_model_input(self._images[self._view][chosen]), self._targets[self._view][chosen]

    def on_epoch_begin(self) -> None:
        """Move to the next view in a fresh order, except for the first epoch."""
        if self._epochs_begun > 0:
            self._view = (self._view + 1) % len(self._images)
            self._order = self._random.permutation(self._count)
        self._epochs_begun += 1


@dataclass(frozen=True)
class TrainingResult:
    """A trained inference model and how its training went."""

    model: Any
    """The clean inference model (no dropout) with the trained weights."""
    history: dict[str, list[float]]
    """Per-epoch values logged by Keras: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``."""
    seconds: float
    """Wall-clock time of the whole training (renderings, teacher and student), excluding data
    loading and evaluation."""
    train_size: int
    validation_size: int
    realistic_size: int = 0
    """Rendered-and-preprocessed digits added to the training digits."""
    teacher_validation_accuracy: float | None = None
    """The teacher's accuracy on the validation split (None without a teacher)."""
    outlier_size: int = 0
    """Not-a-digit images trained toward the uniform distribution (outlier exposure)."""
    typed_size: int = 0
    """Digits typed in fonts (:mod:`training.typed_digits`) added to the training digits."""
    operating_point: OperatingPoint | None = None
    """The fitted temperature and the not-a-digit threshold, measured on held-out data (None
    only for results made without :func:`train_model`)."""

    @property
    def validation_accuracy(self) -> float:
        """Accuracy on the validation split after the last epoch."""
        return self.history["val_accuracy"][-1]


def make_reproducible(seed: int) -> None:
    """Seed Python, numpy, TensorFlow and Keras, and make TensorFlow's kernels deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def validation_size_for(train_size: int, profile: TrainingProfile) -> int:
    """Digits to hold out: the profile's number, but at most a tenth of the training digits."""
    return max(1, min(profile.validation_size, train_size // 10))


def _cosine_adam(initial: float, final: float, steps: int) -> Any:
    """Adam whose learning rate follows a cosine from ``initial`` to ``final`` over ``steps``."""
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=initial, decay_steps=max(1, steps), alpha=final / initial
    )
    return keras.optimizers.Adam(learning_rate=schedule)


def train_teacher(
    digits: DigitSet,
    validation: tuple[NDArray[np.float32], NDArray[np.int32]],
    profile: TrainingProfile,
    seed: int,
) -> tuple[Any, float]:
    """Train the convolutional teacher on augmented ``digits``; return it and its validation
    accuracy."""
    batches = AugmentedBatches(digits, profile.batch_size, profile.teacher_augmentation, seed + 1)
    teacher = build_teacher_model()
    teacher.compile(
        optimizer=_cosine_adam(
            profile.teacher_learning_rate,
            profile.final_learning_rate,
            profile.teacher_epochs * batches.num_batches,
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    teacher.fit(
        batches,
        epochs=profile.teacher_epochs,
        shuffle=False,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    _, accuracy = teacher.evaluate(*validation, batch_size=1024, verbose=0)
    return teacher, float(accuracy)


def train_model(train_digits: DigitSet, profile: TrainingProfile, seed: int) -> TrainingResult:
    """Train the seed's network on ``train_digits`` according to ``profile``.

    A seeded shuffle holds out a validation split that is monitored after every epoch (it is
    never trained on). Realistic renderings of the other training digits join them
    (``profile.realistic_count``), and digits typed in fonts (``profile.typed_count``); with
    ``profile.teacher_epochs`` a convolutional teacher is trained first and the dense network
    learns from its soft predictions. Adam's learning rate follows a cosine from
    ``profile.learning_rate`` down to ``profile.final_learning_rate``.
    """
    make_reproducible(seed)
    started = time.perf_counter()
    fit_digits, validation_digits = split_validation(
        train_digits, validation_size_for(len(train_digits), profile), seed
    )
    realistic = render_realistic_digits(fit_digits, profile.realistic_count, seed)
    if len(realistic):
        fit_digits = fit_digits.joined(realistic)
    validation_inputs = to_model_input(validation_digits.images)
    validation_labels = validation_digits.labels.astype(np.int32)

    outliers = render_outliers(fit_digits, profile.outlier_count, seed)
    # Typed digits join after the outliers are drawn: numbers are made of handwritten digits.
    typed = render_typed_digits(profile.typed_count, seed)
    if len(typed):
        fit_digits = fit_digits.joined(typed)
    teacher_accuracy: float | None = None
    teacher: Any | None = None
    batches: AugmentedBatches | DistilledBatches
    if profile.teacher_epochs > 0:
        teacher, teacher_accuracy = train_teacher(
            fit_digits, (validation_inputs, validation_labels), profile, seed
        )
    if teacher is not None or len(outliers):
        batches = DistilledBatches(
            fit_digits,
            profile.batch_size,
            profile.augmentation,
            seed,
            teacher=teacher,
            views=profile.distillation_views,
            weight=profile.distillation_weight,
            temperature=profile.distillation_temperature,
            clean_fraction=profile.clean_fraction,
            outliers=outliers,
        )
        loss = "categorical_crossentropy"
        validation_targets: NDArray[np.generic] = np.eye(NUM_CLASSES, dtype=np.float32)[
            validation_labels
        ]
    else:
        batches = AugmentedBatches(fit_digits, profile.batch_size, profile.augmentation, seed)
        loss = "sparse_categorical_crossentropy"
        validation_targets = validation_labels

    training_model = build_training_model(profile.dropout_rate)
    training_model.compile(
        optimizer=_cosine_adam(
            profile.learning_rate,
            profile.final_learning_rate,
            profile.epochs * batches.num_batches,
        ),
        loss=loss,
        metrics=["accuracy"],
    )
    fit_history = training_model.fit(
        batches,
        epochs=profile.epochs,
        validation_data=(validation_inputs, validation_targets),
        shuffle=False,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    inference_model = to_inference_model(training_model)
    operating_point = measure_operating_point(inference_model, validation_digits, profile, seed)
    seconds = time.perf_counter() - started
    history = {
        key: [float(value) for value in values] for key, values in fit_history.history.items()
    }
    return TrainingResult(
        model=inference_model,
        history=history,
        seconds=seconds,
        train_size=len(fit_digits),
        validation_size=len(validation_digits),
        realistic_size=len(realistic),
        teacher_validation_accuracy=teacher_accuracy,
        outlier_size=len(outliers),
        typed_size=len(typed),
        operating_point=operating_point,
    )
