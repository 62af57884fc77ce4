"""``RequestRecorder``: counts and times every HTTP request in the service's telemetry.

It is not a middleware layer of its own: the outermost middleware,
:class:`~app.api.request_id.RequestIdMiddleware`, already sees every response start and end, and
hands each one to this recorder (:meth:`RequestRecorder.record_response`), which saves a layer
(a coroutine and a ``send`` closure) per request. Per request it looks the path up in a set and
records the request in :class:`~app.telemetry.service_metrics.ServiceMetrics`; it never reads or
copies a body.

The ``route`` label is bounded by what the app serves: it is the path (template) of the route
that the router matched and recorded in the request's scope (``scope["route"]``, set by
Starlette's and FastAPI's routers), a mount's prefix for a mounted app, and ``other`` for a
request no route matched.
"""

from __future__ import annotations

from starlette.types import Scope

from app.telemetry.service_metrics import OTHER_ROUTE, ServiceMetrics


class RequestRecorder:
    """Record each HTTP request's route, method, status and duration in ``metrics``."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def record_response(self, scope: Scope, status: int, seconds: float) -> None:
        """Count one answered request (``status`` 500 if its handler raised) and its duration."""
        self.metrics.observe_request(route_label(scope), scope["method"], status, seconds)


def route_label(scope: Scope) -> str:
    """The path of the route that served the request, or ``other`` when none matched."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else OTHER_ROUTE
