"""``RequestRecorder``: counts and times every HTTP request in the service's telemetry.

It is not a middleware layer of its own: the outermost middleware,
:class:`~app.api.request_id.RequestIdMiddleware`, already sees every response start and end, and
hands each one to this recorder (:meth:`RequestRecorder.record_response`), which saves a layer
(a coroutine and a ``send`` closure) per request. Per request it looks the path up in a set and
records two values in process (about 0.5 µs); it never reads or copies a body.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Mount
from starlette.types import Scope

from app.telemetry.service_metrics import OTHER_ROUTE, ServiceMetrics


class RequestRecorder:
    """Record each HTTP request's route, method, status and duration in ``metrics``.

    ``route`` is the request's path if the app serves it, its mount's prefix, or ``other``,
    so that scanners cannot blow up the number of series.
    """

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self._paths: frozenset[str] | None = None
        self._mount_prefixes: tuple[str, ...] = ()

    def record_response(self, scope: Scope, status: int, seconds: float) -> None:
        """Count one answered request (``status`` 500 if its handler raised) and its duration."""
        self.metrics.observe_request(self._route_of(scope), scope["method"], status, seconds)

    def _route_of(self, scope: Scope) -> str:
        """The request's path if the app serves it, its mount's prefix, or ``other``."""
        if self._paths is None:
            self._learn_routes(scope.get("app"))
        path: str = scope["path"]
        if self._paths is not None and path in self._paths:
            return path
        for prefix in self._mount_prefixes:
            if path.startswith(prefix + "/"):
                return prefix
        return OTHER_ROUTE

    def _learn_routes(self, application: Any) -> None:
        """Collect the app's fixed paths and mount prefixes (once: routes do not change)."""
        routes = getattr(application, "routes", None)
        if routes is None:
            return
        paths: set[str] = set()
        prefixes: list[str] = []
        for route in routes:
            route_path = getattr(route, "path", None)
            if not isinstance(route_path, str) or "{" in route_path:
                continue
            if isinstance(route, Mount):
                prefixes.append(route_path)
            else:
                paths.add(route_path)
        self._paths = frozenset(paths)
        self._mount_prefixes = tuple(prefixes)
