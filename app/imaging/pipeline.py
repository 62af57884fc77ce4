"""Uploaded bytes to the 28 x 28 digit the model sees: :func:`read_upload` (with the
preprocessing's count of digit-sized pieces side by side) and :func:`prepare_upload`; or to the
candidate digits of a number: :func:`segment_upload`."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from app.imaging.decode import decode_upload, decode_upload_sized
from app.imaging.number_layout import NumberLayout
from app.imaging.preprocess import DigitReading, read_digit
from app.imaging.segmentation import NUMBER_WORKING_SIDE, segment_number
from app.imaging.structure import DecodeLimits, PngLayout


def read_upload(
    data: bytes, limits: DecodeLimits, *, png_layout: PngLayout | None = None
) -> DigitReading:
    """Decode an uploaded image and turn it into a 28 x 28 MNIST-format digit (``uint8``, white
    ink on black, centred by centre of mass), with the number of digit-sized pieces of ink the
    preprocessing found side by side (:mod:`app.imaging.layout`).

    Raises an :class:`~app.errors.InputError` subclass, and nothing else, for any bytes that do
    not make a digit: empty, not an image, corrupt, past ``limits``, or blank. ``png_layout``:
    see :func:`~app.imaging.decode.decode_upload`.
    """
    return read_digit(decode_upload(data, limits, png_layout=png_layout))


def prepare_upload(data: bytes, limits: DecodeLimits) -> NDArray[np.uint8]:
    """The digit of :func:`read_upload` alone (what training and the benchmarks need)."""
    return read_upload(data, limits).pixels


def segment_upload(
    data: bytes, limits: DecodeLimits, max_digits: int, *, png_layout: PngLayout | None = None
) -> NumberLayout:
    """Decode an uploaded image and find the digits of the number it shows, each drawn as
    :func:`read_upload` draws one digit (see :mod:`app.imaging.segmentation`).

    Raises an :class:`~app.errors.InputError` subclass, and nothing else, for bytes that do not
    make a number: those :func:`read_upload` refuses, and more than ``max_digits`` marks.
    ``png_layout``: see :func:`~app.imaging.decode.decode_upload`.
    """
    image, upload_size = decode_upload_sized(
        data, limits, min_side=NUMBER_WORKING_SIDE, png_layout=png_layout
    )
    return segment_number(image, max_digits, upload_size=upload_size)
