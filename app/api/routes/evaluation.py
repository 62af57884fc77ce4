"""``GET /metrics``: the model's stored evaluation on the MNIST test split, its calibration and
the operating point of the not-a-digit verdict.

These are the scores training measured and wrote to ``metrics.json`` for exactly the model file
being served (start-up checks the SHA-256). The path keeps its name because users call it; the
code calls these scores the *evaluation*, apart from the Prometheus *telemetry*
(``/monitoring/prometheus/metrics``).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ClassifierDep
from app.api.info_schemas import EvaluationResponse, ModelIdentity

router = APIRouter(tags=["model"])


@router.get("/metrics")
async def read_evaluation(classifier: ClassifierDep) -> EvaluationResponse:
    """Test-split accuracy, macro precision/recall/F1, per-digit scores and confusion matrix,
    the calibration and the not-a-digit operating point."""
    model = classifier.model
    stored = model.evaluation
    return EvaluationResponse(
        model=ModelIdentity(name=stored.model.name, file=stored.model.file, sha256=model.sha256),
        test=stored.test,
        calibration=stored.calibration,
        not_a_digit=stored.not_a_digit,
        digit_confidence_threshold=classifier.digit_threshold,
    )
