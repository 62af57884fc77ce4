"""Access control: the optional API key of the prediction endpoints, and CORS.

* ``API_KEY`` set: the prediction routes need it in the ``X-API-Key`` header, compared in
  constant time; without it they answer ``401`` with the JSON error body and
  ``WWW-Authenticate``. The key is a FastAPI security dependency
  (:class:`fastapi.security.APIKeyHeader`), added to the prediction router only when a key is
  configured, so the OpenAPI document declares it (and ``/docs`` offers "Authorize") exactly
  then. Health, readiness, metrics, model metadata, the docs and the page stay open (an
  orchestrator's probes carry no key).
* ``CORS_ALLOW_ORIGINS`` set: browsers on those origins may call the API (Starlette's
  ``CORSMiddleware``: ``GET``/``POST``, the headers the API reads, ``X-Request-ID`` exposed, no
  credentials). Unset: no CORS headers at all, so other sites' scripts cannot read answers.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Final

from fastapi import FastAPI, Request, Security
from fastapi.security import APIKeyHeader
from starlette.middleware.cors import CORSMiddleware

from app.api.request_id import REQUEST_ID_HEADER
from app.errors import AuthenticationError

API_KEY_HEADER: Final = "X-API-Key"
CORS_MAX_AGE_SECONDS: Final = 600

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKeyHeader",
    description="The service's API key (setting API_KEY).",
    auto_error=False,
)
"""The ``X-API-Key`` header as an OpenAPI security scheme; missing keys are judged below."""


def api_key_dependency(api_key: str) -> Any:
    """A security dependency that lets a request through only with ``api_key`` in the
    ``X-API-Key`` header; otherwise it raises :class:`~app.errors.AuthenticationError` (401).

    The refused request's body is read and dropped first (it is bounded by the body-size and
    body-time limits), so that a client still sending it reads a clean 401 rather than a reset
    connection.
    """
    expected = api_key.encode()

    async def require_api_key(
        request: Request, supplied: Annotated[str | None, Security(api_key_header)]
    ) -> None:
        if supplied is not None and hmac.compare_digest(supplied.encode(), expected):
            return
        await request.body()
        if supplied is None:
            raise AuthenticationError(
                f"this endpoint needs an API key: send it in the {API_KEY_HEADER} header"
            )
        raise AuthenticationError(f"the API key in the {API_KEY_HEADER} header is not valid")

    checker: Callable[..., Awaitable[None]] = require_api_key
    return Security(checker)


def install_cors(app: FastAPI, allow_origins: Sequence[str]) -> None:
    """Let browsers on ``allow_origins`` call the API; does nothing for an empty list."""
    if not allow_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(allow_origins),
        allow_methods=["GET", "POST"],
        allow_headers=[
            "Content-Type",
            API_KEY_HEADER,
            REQUEST_ID_HEADER,
            "Inference-Header-Content-Length",
        ],
        expose_headers=[REQUEST_ID_HEADER],
        allow_credentials=False,
        max_age=CORS_MAX_AGE_SECONDS,
    )
