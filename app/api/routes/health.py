"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can serve predictions).

Liveness never depends on the model, so an orchestrator does not restart a process that is
merely not ready; readiness is true once the model is loaded and its self-test passed, and
false again when shutdown begins.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import Response

from app.api.deps import ServicesDep
from app.api.errors import error_response
from app.api.info_schemas import HealthResponse, ReadinessResponse
from app.api.schemas import ErrorResponse

router = APIRouter(tags=["health"])

_NOT_READY: Final[dict[int | str, dict[str, Any]]] = {
    503: {
        "model": ErrorResponse,
        "description": "The model is not loaded yet, or the service is shutting down.",
        "content": {
            "application/json": {
                "example": {
                    "error": {
                        "code": "not_ready",
                        "message": "the service is not ready: it is starting or shutting down",
                    }
                }
            }
        },
    }
}


@router.get("/healthz")
async def read_liveness() -> HealthResponse:
    """Liveness: the process is up and its event loop answers."""
    return HealthResponse(status="ok")


@router.get("/readyz", responses=_NOT_READY, response_model=ReadinessResponse)
async def read_readiness(services: ServicesDep) -> ReadinessResponse | Response:
    """Readiness: the model is loaded and passed its start-up self-test."""
    model = services.model
    if not services.ready or model is None:
        return error_response(
            503, "not_ready", "the service is not ready: it is starting or shutting down"
        )
    return ReadinessResponse(status="ready", model_sha256=model.short_sha256)
