"""``GET /model``: what the served model is, where it came from and what runs it."""

from __future__ import annotations

import platform

import numpy as np
from fastapi import APIRouter

from app.api.deps import ModelDep
from app.api.info_schemas import LayerDescription, ModelResponse
from app.model_contract import INPUT_SHAPE, NUM_CLASSES

router = APIRouter(tags=["model"])


@router.get("/model")
async def read_model(model: ModelDep) -> ModelResponse:
    """Name, SHA-256, input shape, classes, layers, parameters, training time and versions."""
    stored = model.evaluation
    return ModelResponse(
        name=stored.model.name,
        file=stored.model.file,
        sha256=model.sha256,
        input_shape=list(INPUT_SHAPE),
        classes=list(range(NUM_CLASSES)),
        parameters=model.archive.parameter_count,
        layers=[
            LayerDescription(name=layer.name, units=layer.units, activation=layer.activation)
            for layer in model.archive.dense_layers
        ],
        trained_at=stored.training.trained_at,
        training_profile=stored.training.profile,
        saved_with_keras=model.archive.keras_version,
        training_versions=stored.versions,
        serving_versions={"python": platform.python_version(), "numpy": np.__version__},
        loaded_at=model.loaded_at,
    )
