"""Random affine distortions: exact on known cases, seeded, and still MNIST format."""

from __future__ import annotations

import numpy as np
import pytest

from training.augmentation import (
    NO_AUGMENTATION,
    AugmentationSettings,
    affine_transform_digits,
    augment_digits,
    elastic_displacements,
    thicken_strokes,
    thin_strokes,
)


def _single_pixel(row: int, column: int) -> np.ndarray:
    """One black image with a single white pixel at (row, column)."""
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, row, column] = 255
    return image


def _transform(
    image: np.ndarray, degrees: float, scale: float, down: float, right: float
) -> np.ndarray:
    """Apply one rotation/scale/shift to a single-image stack."""
    return affine_transform_digits(
        image, np.array([degrees]), np.array([scale]), np.array([[down, right]])
    )


def test_affine_transform_identity_keeps_digits() -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    same = affine_transform_digits(images, np.zeros(5), np.ones(5), np.zeros((5, 2)))
    np.testing.assert_array_equal(same, images)


def test_affine_transform_whole_pixel_shift_moves_pixel() -> None:
    moved = _transform(_single_pixel(10, 10), 0.0, 1.0, 2.0, -1.0)
    assert np.argwhere(moved[0]).tolist() == [[12, 9]]
    assert moved[0, 12, 9] == 255


def test_affine_transform_quarter_turn_is_counter_clockwise() -> None:
    # A pixel right of the centre (13.5, 13.5) ends up above it after a quarter turn.
    turned = _transform(_single_pixel(13, 20), 90.0, 1.0, 0.0, 0.0)
    assert np.argwhere(turned[0]).tolist() == [[7, 13]]


def test_affine_transform_half_pixel_shift_splits_ink() -> None:
    moved = _transform(_single_pixel(10, 10), 0.0, 1.0, 0.0, 0.5)
    assert moved[0, 10, 10] == moved[0, 10, 11] == 128
    assert int(moved.sum()) == 256


def test_affine_transform_shift_out_of_frame_leaves_black() -> None:
    moved = _transform(_single_pixel(0, 0), 0.0, 1.0, -3.0, 0.0)
    assert moved.max() == 0


def test_affine_transform_refuses_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="scales must be positive"):
        _transform(_single_pixel(1, 1), 0.0, 0.0, 0.0, 0.0)


def test_augment_digits_same_seed_same_result() -> None:
    images = np.random.default_rng(1).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    first = augment_digits(images, AugmentationSettings(), np.random.default_rng(7))
    second = augment_digits(images, AugmentationSettings(), np.random.default_rng(7))
    np.testing.assert_array_equal(first, second)
    assert first.dtype == np.uint8 and first.shape == images.shape
    assert not np.array_equal(first, images)


def test_augment_digits_without_settings_returns_copy() -> None:
    images = np.ones((2, 28, 28), dtype=np.uint8)
    same = augment_digits(images, NO_AUGMENTATION, np.random.default_rng(0))
    np.testing.assert_array_equal(same, images)
    assert same is not images


def test_augmentation_settings_refuse_large_rotation() -> None:
    with pytest.raises(ValueError, match="max_rotation_degrees"):
        AugmentationSettings(max_rotation_degrees=90.0)


def test_affine_transform_shear_slants_the_top_to_the_right() -> None:
    # A vertical bar through the centre leans: its top moves right, its bottom left.
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 4:24, 13:15] = 255
    slanted = affine_transform_digits(
        image, np.zeros(1), np.ones(1), np.zeros((1, 2)), shears=np.array([0.3])
    )[0]
    top_columns = np.flatnonzero(slanted[5] > 127)
    bottom_columns = np.flatnonzero(slanted[22] > 127)
    assert top_columns.mean() > bottom_columns.mean() + 3


def test_elastic_displacements_are_smooth_and_bounded() -> None:
    field = elastic_displacements(3, 1.5, np.random.default_rng(0))
    assert field.shape == (3, 2, 28, 28) and field.dtype == np.float32
    assert float(np.abs(field).max()) <= 1.5 + 1e-6
    # Neighbouring pixels move almost alike: the field is smooth, not noise.
    assert float(np.abs(np.diff(field, axis=-1)).max()) < 0.5


def test_thicken_and_thin_strokes_change_ink_area() -> None:
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 6:22, 12:15] = 255
    assert int((thicken_strokes(image) > 127).sum()) > int((image > 127).sum())
    assert int(thin_strokes(image).sum()) < int(image.sum())


def test_augment_digits_with_every_distortion_is_seeded_and_mnist_format() -> None:
    images = np.random.default_rng(1).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    settings = AugmentationSettings(max_shear=0.3, elastic_pixels=1.3, stroke_change_fraction=0.5)
    first = augment_digits(images, settings, np.random.default_rng(9))
    second = augment_digits(images, settings, np.random.default_rng(9))
    np.testing.assert_array_equal(first, second)
    assert first.dtype == np.uint8 and first.shape == images.shape
