"""What the route handlers depend on: the app's :class:`Services`, kept in ``app.state.services``.

One typed object holds everything the app made at start-up, so no handler reads loose keys of
``app.state``. The ``Annotated`` aliases are FastAPI dependencies; a test can replace one with
``app.dependency_overrides[get_classifier] = ...``. The dependencies are ``async`` so that
FastAPI calls them on the event loop rather than in the threadpool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from app.classification import DigitClassifier
from app.core.config import Settings
from app.errors import ModelLoadError
from app.inference.serving_model import ServingModel
from app.telemetry.service_metrics import ServiceMetrics


@dataclass(slots=True)
class Services:
    """The app's long-lived parts: its settings and telemetry from creation, the model and its
    classifier from start-up (None until the lifespan has loaded and self-tested the model),
    and whether it is ready to serve predictions."""

    settings: Settings
    telemetry: ServiceMetrics | None = None
    classifier: DigitClassifier | None = None
    ready: bool = False
    startup_failure_logged: bool = False

    @property
    def model(self) -> ServingModel | None:
        """The served model, once loaded."""
        return None if self.classifier is None else self.classifier.model


def services_of(app: FastAPI) -> Services:
    """The :class:`Services` that :func:`app.main.create_app` attached to ``app``."""
    services: Services = app.state.services
    return services


async def get_services(request: Request) -> Services:
    """Dependency: the app's :class:`Services`."""
    return services_of(request.app)


async def get_classifier(request: Request) -> DigitClassifier:
    """Dependency: the classifier of the loaded model; a 503 ``ModelLoadError`` if none is."""
    classifier = services_of(request.app).classifier
    if classifier is None:
        raise ModelLoadError("no model is loaded: the app's lifespan has not run")
    return classifier


async def get_serving_model(request: Request) -> ServingModel:
    """Dependency: the loaded model (see :func:`get_classifier`)."""
    return (await get_classifier(request)).model


async def get_settings_of_app(request: Request) -> Settings:
    """Dependency: the settings the app was created with."""
    return services_of(request.app).settings


ServicesDep = Annotated[Services, Depends(get_services)]
ClassifierDep = Annotated[DigitClassifier, Depends(get_classifier)]
ModelDep = Annotated[ServingModel, Depends(get_serving_model)]
SettingsDep = Annotated[Settings, Depends(get_settings_of_app)]
