"""Uploaded bytes to the 28 x 28 digit the model sees: :func:`prepare_upload`."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from app.imaging.decode import decode_upload
from app.imaging.preprocess import to_mnist_digit
from app.imaging.structure import DecodeLimits, PngLayout


def prepare_upload(
    data: bytes, limits: DecodeLimits, *, png_layout: PngLayout | None = None
) -> NDArray[np.uint8]:
    """Decode an uploaded image and turn it into a 28 x 28 MNIST-format digit (``uint8``, white
    ink on black, centred by centre of mass).

    Raises an :class:`~app.errors.InputError` subclass, and nothing else, for any bytes that do
    not make a digit: empty, not an image, corrupt, past ``limits``, or blank. ``png_layout``:
    see :func:`~app.imaging.decode.decode_upload`.
    """
    return to_mnist_digit(decode_upload(data, limits, png_layout=png_layout))
