"""The naive baseline: how a typical FastAPI + Keras MNIST service is written.

The Keras model is loaded with TensorFlow and every request runs ``model.predict`` on one image
inside an ``async def`` handler, after the usual ``convert("L").resize((28, 28))``. It is the
starting point the benchmark measures our service against, written plainly on purpose; the one
kindness is ``verbose=0``, so no progress bar is printed per request.

Run with ``uvicorn --factory bench.baselines.naive_service:create_app``; the environment variable
``BENCH_MODEL_FILE`` names the ``.keras`` file.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, UploadFile
from PIL import Image

MODEL_FILE_VARIABLE = "BENCH_MODEL_FILE"
"""Environment variable naming the ``.keras`` model file to serve."""


def create_app() -> FastAPI:
    """Build the naive application; the model is loaded at startup from ``BENCH_MODEL_FILE``."""
    model_path = Path(os.environ.get(MODEL_FILE_VARIABLE, "models/mnist_dense.keras"))
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import keras  # Imported here so that importing this module stays cheap.

        state["model"] = keras.models.load_model(model_path)
        state["sha256"] = hashlib.sha256(model_path.read_bytes()).hexdigest()[:12]
        yield

    application = FastAPI(title="naive Keras service (benchmark baseline)", lifespan=lifespan)

    @application.get("/readyz")
    async def readyz() -> dict[str, str]:
        """Ready once the lifespan has loaded the model."""
        return {"status": "ready"}

    @application.post("/predict")
    async def predict(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        """Resize the upload to 28 x 28 grey and run ``model.predict`` on it."""
        contents = await file.read()
        image = Image.open(io.BytesIO(contents)).convert("L").resize((28, 28))
        pixels = np.asarray(image, dtype=np.float32).reshape(1, 28, 28, 1) / 255.0
        probabilities = state["model"].predict(pixels, verbose=0)[0]
        digit = int(np.argmax(probabilities))
        return {
            "digit": digit,
            "confidence": float(probabilities[digit]),
            "probabilities": [float(value) for value in probabilities],
            "model_sha256": state["sha256"],
        }

    return application
