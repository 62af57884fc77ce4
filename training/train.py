"""Fit the dense network: seeded, a held-out validation split, fresh augmentation each epoch."""

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

from app.model_contract import to_model_input
from training.augmentation import AugmentationSettings, augment_digits
from training.datasets import DigitSet, split_validation
from training.model import build_training_model, to_inference_model
from training.profiles import TrainingProfile


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


@dataclass(frozen=True)
class TrainingResult:
    """A trained inference model and how its training went."""

    model: Any
    """The clean inference model (no dropout) with the trained weights."""
    history: dict[str, list[float]]
    """Per-epoch values logged by Keras: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``."""
    seconds: float
    """Wall-clock time of the fit itself, excluding data loading and evaluation."""
    train_size: int
    validation_size: int

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


def train_model(train_digits: DigitSet, profile: TrainingProfile, seed: int) -> TrainingResult:
    """Train the seed's network on ``train_digits`` according to ``profile``.

    A seeded shuffle holds out a validation split that is monitored after every epoch (it is
    never trained on). Adam's learning rate follows a cosine from ``profile.learning_rate`` down
    to ``profile.final_learning_rate`` over all steps.
    """
    make_reproducible(seed)
    fit_digits, validation_digits = split_validation(
        train_digits, validation_size_for(len(train_digits), profile), seed
    )
    batches = AugmentedBatches(fit_digits, profile.batch_size, profile.augmentation, seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=profile.learning_rate,
        decay_steps=profile.epochs * batches.num_batches,
        alpha=profile.final_learning_rate / profile.learning_rate,
    )
    training_model = build_training_model(profile.dropout_rate)
    training_model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    validation_data = (
        to_model_input(validation_digits.images),
        validation_digits.labels.astype(np.int32),
    )
    started = time.perf_counter()
    fit_history = training_model.fit(
        batches,
        epochs=profile.epochs,
        validation_data=validation_data,
        shuffle=False,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - started
    history = {
        key: [float(value) for value in values] for key, values in fit_history.history.items()
    }
    return TrainingResult(
        model=to_inference_model(training_model),
        history=history,
        seconds=seconds,
        train_size=len(fit_digits),
        validation_size=len(validation_digits),
    )
