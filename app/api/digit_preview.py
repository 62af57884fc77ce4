"""The 28 x 28 digit the model saw, as a base64 PNG for ``/predict?include_input=true``."""

from __future__ import annotations

import base64
import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def encode_digit_png_base64(digit_image: NDArray[np.uint8]) -> str:
    """A greyscale PNG of ``digit_image`` (28 x 28 uint8, white ink on black), base64 text."""
    buffer = io.BytesIO()
    Image.fromarray(digit_image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
