"""Access control: the optional API key of the prediction endpoints, and CORS.

* ``API_KEY`` set: ``POST /predict`` and ``POST /predict/batch`` need it in the ``X-API-Key``
  header, compared in constant time; without it they answer ``401`` with the JSON error body
  and ``WWW-Authenticate``. Health, readiness, metrics, model metadata, the docs and the page
  stay open (an orchestrator's probes carry no key). The OpenAPI document then declares the
  key, so ``/docs`` offers an "Authorize" button.
* ``CORS_ALLOW_ORIGINS`` set: browsers on those origins may call the API (Starlette's
  ``CORSMiddleware``: ``GET``/``POST``, the headers the API reads, ``X-Request-ID`` exposed, no
  credentials). Unset: no CORS headers at all, so other sites' scripts cannot read answers.

Both are installed only when configured, so by default they cost nothing per request.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from typing import Any, Final

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import send_error
from app.api.middleware import discard_request_body
from app.api.request_id import REQUEST_ID_HEADER
from app.errors import AuthenticationError, DigitServiceError

API_KEY_HEADER: Final = "X-API-Key"
PROTECTED_PATH: Final = "/predict"
"""``/predict`` and everything under it (``/predict/batch``) needs the key."""

SECURITY_SCHEME_NAME: Final = "ApiKeyHeader"
CORS_MAX_AGE_SECONDS: Final = 600

_API_KEY_HEADER_KEY: Final = API_KEY_HEADER.lower().encode()


def is_protected_path(path: str) -> bool:
    """Whether a request path needs the API key (when one is configured).

    >>> is_protected_path("/predict/batch"), is_protected_path("/readyz")
    (True, False)
    """
    return path == PROTECTED_PATH or path.startswith(PROTECTED_PATH + "/")


class ApiKeyMiddleware:
    """Refuse requests to the prediction endpoints that lack the right ``X-API-Key``.

    A refused request's body is read and dropped first (it is bounded by the body-size and
    body-time limits, which sit outside this middleware), so that the client, which may still
    be sending, reads a clean 401 instead of a reset connection.
    """

    def __init__(self, app: ASGIApp, *, api_key: str) -> None:
        self.app = app
        self._expected_key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_protected_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        supplied: bytes | None = None
        for name, value in scope["headers"]:
            if name == _API_KEY_HEADER_KEY:
                supplied = value
                break
        if supplied is not None and hmac.compare_digest(supplied, self._expected_key):
            await self.app(scope, receive, send)
            return
        if supplied is None:
            error = AuthenticationError(
                f"this endpoint needs an API key: send it in the {API_KEY_HEADER} header"
            )
        else:
            error = AuthenticationError(f"the API key in the {API_KEY_HEADER} header is not valid")
        try:
            await discard_request_body(receive)
        except DigitServiceError as body_error:
            # Too large or too slow: answer that instead, closing the connection.
            await send_error(send, body_error)
            return
        await send_error(send, error)


def install_cors(app: FastAPI, allow_origins: Sequence[str]) -> None:
    """Let browsers on ``allow_origins`` call the API; does nothing for an empty list."""
    if not allow_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(allow_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", API_KEY_HEADER, REQUEST_ID_HEADER],
        expose_headers=[REQUEST_ID_HEADER],
        allow_credentials=False,
        max_age=CORS_MAX_AGE_SECONDS,
    )


def document_api_key(app: FastAPI) -> None:
    """Declare the ``X-API-Key`` header and the 401 answer on the protected operations of the
    app's OpenAPI document."""
    build_openapi: Callable[[], dict[str, Any]] = app.openapi
    documented = False

    def openapi_with_api_key() -> dict[str, Any]:
        nonlocal documented
        schema = build_openapi()
        if not documented:
            _add_api_key_to_schema(schema)
            documented = True
        return schema

    app.openapi = openapi_with_api_key  # type: ignore[method-assign]


def _add_api_key_to_schema(schema: dict[str, Any]) -> None:
    """Add the security scheme, and the requirement and 401 response on protected paths."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME_NAME] = {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": "The service's API key (setting API_KEY).",
    }
    unauthorized = {
        "description": f"No {API_KEY_HEADER} header, or a wrong key.",
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorResponse"},
                "example": {
                    "error": {
                        "code": AuthenticationError.code,
                        "message": f"the API key in the {API_KEY_HEADER} header is not valid",
                    }
                },
            }
        },
    }
    for path, operations in schema.get("paths", {}).items():
        if not is_protected_path(path):
            continue
        for operation in operations.values():
            operation["security"] = [{SECURITY_SCHEME_NAME: []}]
            operation.setdefault("responses", {})["401"] = unauthorized
