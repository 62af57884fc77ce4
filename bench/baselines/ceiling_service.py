"""The framework ceiling: FastAPI receiving the same multipart upload and answering a constant.

``POST /predict`` reads the uploaded ``file`` part completely (so multipart parsing and the
upload transfer are paid as in a real service) and answers a prediction-shaped JSON document
that was encoded once at import. No image is decoded and no model is run, so its requests per
second are what FastAPI and uvicorn can do on this machine with this upload: the ceiling a real
service can approach but not pass. ``POST /predict/batch`` does the same for several parts.

Run with ``uvicorn --factory bench.baselines.ceiling_service:create_app``.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import FastAPI, File, UploadFile
from fastapi.responses import Response

_CONSTANT_PREDICTION: dict[str, object] = {
    "digit": 7,
    "confidence": 0.9990000128746033,
    "probabilities": [
        1.0000000116860974e-07,
        1.0000000116860974e-07,
        9.999999747378752e-05,
        0.0003000000142492354,
        1.0000000116860974e-07,
        1.0000000116860974e-07,
        1.0000000116860974e-07,
        0.9990000128746033,
        1.0000000116860974e-07,
        0.0005999999702908099,
    ],
    "model_sha256": "000000000000",
}
"""A prediction with the fields and float precision of the real ``/predict`` response."""

_PREDICTION_BODY = json.dumps(_CONSTANT_PREDICTION).encode()


def create_app() -> FastAPI:
    """Build the ceiling application: readiness probe, ``/predict`` and ``/predict/batch``."""
    application = FastAPI(title="framework ceiling (benchmark baseline)")

    @application.get("/readyz")
    async def readyz() -> dict[str, str]:
        """Always ready: there is nothing to load."""
        return {"status": "ready"}

    @application.post("/predict")
    async def predict(file: Annotated[UploadFile, File()]) -> Response:
        """Read the uploaded image and answer the constant prediction."""
        await file.read()
        return Response(content=_PREDICTION_BODY, media_type="application/json")

    @application.post("/predict/batch")
    async def predict_batch(file: Annotated[list[UploadFile], File()]) -> Response:
        """Read every uploaded image and answer one constant prediction per image."""
        for upload in file:
            await upload.read()
        body = b'{"predictions":[' + b",".join([_PREDICTION_BODY] * len(file)) + b"]}"
        return Response(content=body, media_type="application/json")

    return application
