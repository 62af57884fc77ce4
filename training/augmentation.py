"""Random distortions of MNIST-format digits that reflect how people write, in plain numpy.

Each digit is rotated, slanted (sheared), scaled, shifted and elastically distorted (a smooth
random displacement field, as Simard et al. did for MNIST) in one bilinear resampling (one
resampling blurs less than a chain of several); some digits then get a thicker or thinner
stroke. The result is still MNIST format (uint8, white ink on black), so it goes through the
same :func:`app.model_contract.to_model_input` as every other image. Everything is vectorised
over the whole stack of digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.model_contract import IMAGE_SIDE

CHUNK_SIZE = 4096
"""Digits transformed at once; bounds the temporary arrays to a few tens of megabytes."""


@dataclass(frozen=True)
class AugmentationSettings:
    """Largest random change applied to a digit; zero everywhere means no augmentation."""

    max_rotation_degrees: float = 10.0
    """Rotation drawn uniformly from [-max, +max] degrees."""
    max_scale_change: float = 0.1
    """Scale factor drawn uniformly from [1 - max, 1 + max]."""
    max_shift_pixels: float = 2.0
    """Horizontal and vertical shifts each drawn uniformly from [-max, +max] pixels."""
    max_shear: float = 0.0
    """Slant: a horizontal shear drawn uniformly from [-max, +max] (columns moved per row)."""
    elastic_pixels: float = 0.0
    """Largest displacement of the elastic field's control points, in pixels (0: none)."""
    stroke_change_fraction: float = 0.0
    """Fraction of digits whose stroke is made one step thicker or thinner (half each)."""

    def __post_init__(self) -> None:
        """Refuse settings that would not leave a recognisable digit."""
        if not 0 <= self.max_rotation_degrees <= 45:
            raise ValueError(
                f"max_rotation_degrees must be in [0, 45], got {self.max_rotation_degrees}"
            )
        if not 0 <= self.max_scale_change < 0.5:
            raise ValueError(f"max_scale_change must be in [0, 0.5), got {self.max_scale_change}")
        if not 0 <= self.max_shift_pixels <= IMAGE_SIDE / 4:
            raise ValueError(f"max_shift_pixels must be in [0, 7], got {self.max_shift_pixels}")
        if not 0 <= self.max_shear <= 0.6:
            raise ValueError(f"max_shear must be in [0, 0.6], got {self.max_shear}")
        if not 0 <= self.elastic_pixels <= 4:
            raise ValueError(f"elastic_pixels must be in [0, 4], got {self.elastic_pixels}")
        if not 0 <= self.stroke_change_fraction <= 1:
            raise ValueError("stroke_change_fraction must be in [0, 1]")

    @property
    def enabled(self) -> bool:
        """Whether these settings change anything at all."""
        limits = (
            self.max_rotation_degrees,
            self.max_scale_change,
            self.max_shift_pixels,
            self.max_shear,
            self.elastic_pixels,
            self.stroke_change_fraction,
        )
        return any(limit > 0 for limit in limits)


NO_AUGMENTATION = AugmentationSettings(0.0, 0.0, 0.0)

ELASTIC_GRID = 4
"""The elastic field is drawn at this many control points a side and interpolated smoothly."""
"""Settings that return every digit unchanged."""


def affine_transform_digits(
    images: NDArray[np.uint8],
    rotation_degrees: NDArray[np.float64],
    scales: NDArray[np.float64],
    shifts: NDArray[np.float64],
    *,
    shears: NDArray[np.float64] | None = None,
    displacements: NDArray[np.float32] | None = None,
) -> NDArray[np.uint8]:
    """Rotate, scale and shift each digit about the image centre, filling with black.

    ``images`` is uint8 (n, 28, 28); ``rotation_degrees`` and ``scales`` have shape (n,) and
    ``shifts`` (n, 2) as (down, right) pixels. Rotation is counter-clockwise on screen.
    Optionally ``shears`` (n,) slants each digit (a positive shear leans its top to the right)
    and ``displacements`` (n, 2, 28, 28) moves each output pixel's source by (down, right)
    pixels, an elastic distortion.
    """
    count = images.shape[0]
    if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(f"expected uint8 images (n, 28, 28), got {images.dtype} {images.shape}")
    if rotation_degrees.shape != (count,) or scales.shape != (count,) or shifts.shape != (count, 2):
        raise ValueError("expected one rotation, one scale and one (down, right) shift per image")
    if np.any(scales <= 0):
        raise ValueError("scales must be positive")
    if shears is None:
        shears = np.zeros(count)
    output = np.empty_like(images)
    for start in range(0, count, CHUNK_SIZE):
        stop = min(start + CHUNK_SIZE, count)
        output[start:stop] = _transform_chunk(
            images[start:stop],
            rotation_degrees[start:stop],
            scales[start:stop],
            shifts[start:stop],
            shears[start:stop],
            None if displacements is None else displacements[start:stop],
        )
    return output


def _transform_chunk(
    images: NDArray[np.uint8],
    rotation_degrees: NDArray[np.float64],
    scales: NDArray[np.float64],
    shifts: NDArray[np.float64],
    shears: NDArray[np.float64],
    displacements: NDArray[np.float32] | None,
) -> NDArray[np.uint8]:
    """Apply :func:`affine_transform_digits` to one chunk (inverse mapping, bilinear sampling)."""
    count, side = images.shape[0], IMAGE_SIDE
    centre = (side - 1) / 2.0
    rows, columns = np.meshgrid(
        np.arange(side, dtype=np.float32), np.arange(side, dtype=np.float32), indexing="ij"
    )
    shifts = shifts.astype(np.float32)
    # Each output pixel looks up the source position it came from: undo the shift, then the
    # rotation and scale about the centre.
    down = rows.reshape(1, -1) - centre - shifts[:, 0:1]
    right = columns.reshape(1, -1) - centre - shifts[:, 1:2]
    angle = np.deg2rad(rotation_degrees)[:, np.newaxis]
    inverse_scale = 1.0 / scales[:, np.newaxis]
    cosine = (np.cos(angle) * inverse_scale).astype(np.float32)
    sine = (np.sin(angle) * inverse_scale).astype(np.float32)
    # On screen (rows grow downwards) a counter-clockwise rotation by +angle maps a source
    # offset (down, right) to (cos*down - sin*right, sin*down + cos*right); this is its inverse.
    source_row = cosine * down + sine * right + centre
    source_column = -sine * down + cosine * right + centre
    # A slant moves each row's source sideways in proportion to its height above the centre.
    source_column += shears.astype(np.float32)[:, np.newaxis] * (source_row - centre)
    if displacements is not None:
        source_row += displacements[:, 0].reshape(count, -1)
        source_column += displacements[:, 1].reshape(count, -1)
    # Positions fully outside fall on the zero border of a padded copy: one pixel before the
    # image and two after it, so that both bilinear neighbours of a clipped position exist.
    np.clip(source_row, -1.0, float(side), out=source_row)
    np.clip(source_column, -1.0, float(side), out=source_column)
    padded = np.pad(images, ((0, 0), (1, 2), (1, 2))).astype(np.float32)
    padded_side = side + 3
    flat = padded.reshape(-1)
    row_low = np.floor(source_row)
    column_low = np.floor(source_column)
    row_weight = source_row - row_low
    column_weight = source_column - column_low
    base = (np.arange(count) * padded_side * padded_side)[:, np.newaxis]
    top_left = base + (row_low.astype(np.intp) + 1) * padded_side + column_low.astype(np.intp) + 1
    # Interpolate along columns on the upper and lower row, then between the two rows.
    upper = flat[top_left] + column_weight * (flat[top_left + 1] - flat[top_left])
    lower_left = flat[top_left + padded_side]
    lower = lower_left + column_weight * (flat[top_left + padded_side + 1] - lower_left)
    value = upper + row_weight * (lower - upper)
    rounded: NDArray[np.uint8] = np.clip(np.rint(value), 0, 255).astype(np.uint8)
    return rounded.reshape(count, side, side)


def augment_digits(
    images: NDArray[np.uint8], settings: AugmentationSettings, random: np.random.Generator
) -> NDArray[np.uint8]:
    """Return a randomly distorted copy of each digit, drawn from ``settings`` with ``random``."""
    if not settings.enabled:
        return images.copy()
    count = images.shape[0]
    # Per digit: rotation, scale change, downward shift, rightward shift, shear, each in [-1, 1).
    unit = 2.0 * random.random((count, 5)) - 1.0
    rotation = settings.max_rotation_degrees * unit[:, 0]
    scale = 1.0 + settings.max_scale_change * unit[:, 1]
    shift = settings.max_shift_pixels * unit[:, 2:4]
    shear = settings.max_shear * unit[:, 4]
    displacements = None
    if settings.elastic_pixels > 0:
        displacements = elastic_displacements(count, settings.elastic_pixels, random)
    warped = affine_transform_digits(
        images, rotation, scale, shift, shears=shear, displacements=displacements
    )
    if settings.stroke_change_fraction > 0:
        choice = random.random(count)
        thicker = choice < settings.stroke_change_fraction / 2
        thinner = (choice >= settings.stroke_change_fraction / 2) & (
            choice < settings.stroke_change_fraction
        )
        warped[thicker] = thicken_strokes(warped[thicker])
        warped[thinner] = thin_strokes(warped[thinner])
    return warped


def elastic_displacements(
    count: int, max_pixels: float, random: np.random.Generator
) -> NDArray[np.float32]:
    """Smooth random displacement fields, (count, 2, 28, 28): control points on an
    :data:`ELASTIC_GRID` grid moved by up to ``max_pixels`` and interpolated bilinearly."""
    control = random.uniform(-max_pixels, max_pixels, (count, 2, ELASTIC_GRID, ELASTIC_GRID))
    # Linear interpolation from the control grid to the pixel grid, one matrix per axis.
    positions = np.linspace(0.0, ELASTIC_GRID - 1, IMAGE_SIDE)
    low = np.minimum(np.floor(positions).astype(np.intp), ELASTIC_GRID - 2)
    weight = positions - low
    interpolation = np.zeros((IMAGE_SIDE, ELASTIC_GRID))
    interpolation[np.arange(IMAGE_SIDE), low] = 1.0 - weight
    interpolation[np.arange(IMAGE_SIDE), low + 1] += weight
    field: NDArray[np.float32] = np.einsum(
        "rg,ncgh,sh->ncrs", interpolation, control, interpolation, optimize=True
    ).astype(np.float32)
    return field


def thicken_strokes(images: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Widen every stroke by about one pixel (the maximum over a 2 x 2 neighbourhood)."""
    padded = np.pad(images, ((0, 0), (1, 0), (1, 0)))
    thick = np.maximum(
        np.maximum(padded[:, 1:, 1:], padded[:, :-1, 1:]),
        np.maximum(padded[:, 1:, :-1], padded[:, :-1, :-1]),
    )
    return thick


def thin_strokes(images: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Narrow every stroke by about half a pixel: the mean of the digit and its 2 x 2 minimum
    (a full erosion would break MNIST's thin strokes)."""
    padded = np.pad(images, ((0, 0), (0, 1), (0, 1)))
    eroded = np.minimum(
        np.minimum(padded[:, :-1, :-1], padded[:, 1:, :-1]),
        np.minimum(padded[:, :-1, 1:], padded[:, 1:, 1:]),
    )
    thin: NDArray[np.uint8] = (
        (images.astype(np.uint16) + eroded.astype(np.uint16) + 1) // 2
    ).astype(np.uint8)
    return thin
