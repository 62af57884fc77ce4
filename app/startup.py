"""The one start-up path: load the model from ``MODEL_DIR`` and prove it serves, or say why not.

Both the app's lifespan (each worker) and ``mnist-serve`` (once, before it starts several
workers) call :func:`load_checked_model`, so a bad model is refused the same way, with the same
single log line, wherever it is found.
"""

from __future__ import annotations

import logging

from app.core.config import Settings
from app.errors import ModelLoadError
from app.imaging.structure import DecodeLimits
from app.inference.self_test import run_self_test
from app.inference.serving_model import ServingModel, load_serving_model

logger = logging.getLogger("app.startup")

REFUSAL = "refusing to start"
"""The words that begin the one log line of a refused start-up."""


def decode_limits(settings: Settings) -> DecodeLimits:
    """What one upload may declare and contain, from the settings."""
    return DecodeLimits(
        max_pixels=settings.MAX_IMAGE_PIXELS,
        max_segments=settings.MAX_IMAGE_SEGMENTS,
        max_jpeg_scans=settings.MAX_JPEG_SCANS,
        max_metadata_bytes=settings.MAX_METADATA_BYTES,
        max_decoded_bytes=settings.DECODE_MEMORY_MB << 20,
    )


def load_checked_model(settings: Settings) -> ServingModel:
    """Load the model and its stored evaluation from ``settings.MODEL_DIR`` and run the
    self-test through the whole serving path.

    Raises :class:`~app.errors.ModelLoadError` after logging one critical line that says why.
    """
    try:
        model = load_serving_model(settings.MODEL_DIR)
        run_self_test(model, decode_limits(settings))
    except ModelLoadError as error:
        logger.critical("%s: %s", REFUSAL, error.message)
        raise
    return model
