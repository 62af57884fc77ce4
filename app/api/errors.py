"""Every error the API returns is JSON ``{"error": {"code": "...", "message": "...",
"request_id": "..."}}`` (the ID also in the ``X-Request-ID`` header; see
:mod:`app.api.request_id`).

The handlers here map, once for the whole app, the service's own exceptions
(:mod:`app.errors`), FastAPI's request validation errors, Starlette's HTTP exceptions (404, 405,
...) and any unexpected exception to that shape. Client-facing messages never carry a stack
trace or a file path: an unexpected exception answers a fixed message and the server logs the
traceback.

The Open Inference Protocol routes (``/v2``, :mod:`app.api.routes.inference_protocol`) answer
the same errors in that protocol's shape, ``{"error": "<message>"}``, with the same status,
except that a request validation error is a 400 there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Scope, Send

from app.core.request_context import current_request_id
from app.errors import (
    AuthenticationError,
    DigitServiceError,
    InputError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServiceBusyError,
)

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE: Final = "application/json"

# A status the client never sees: it hung up before the request was read.
_CLIENT_CLOSED_REQUEST: Final = 499


INFERENCE_PROTOCOL_PREFIX: Final = "/v2"
"""Path prefix of the Open Inference Protocol routes, whose errors take that protocol's shape."""

API_KEY_CHALLENGE: Final = 'ApiKey header="X-API-Key"'
"""The ``WWW-Authenticate`` value of a 401: the key goes in the ``X-API-Key`` header."""


def error_body(code: str, message: str) -> bytes:
    """The JSON bytes of an error response, with the current request's ID when there is one."""
    detail: dict[str, Any] = {"code": code, "message": message}
    request_id = current_request_id()
    if request_id is not None:
        detail["request_id"] = request_id
    return orjson.dumps({"error": detail})


def error_headers(error: DigitServiceError) -> dict[str, str]:
    """The response headers an error needs besides the content type.

    Errors that leave the request body unread close the connection, which stops the server
    from reading (and discarding) the rest; a 401 names the expected credentials; a 503 for a
    busy server says when to try again.
    """
    if isinstance(error, PayloadTooLargeError | RequestTimeoutError):
        return {"Connection": "close"}
    if isinstance(error, AuthenticationError):
        return {"WWW-Authenticate": API_KEY_CHALLENGE}
    if isinstance(error, ServiceBusyError):
        return {"Retry-After": str(error.retry_after_seconds)}
    return {}


async def send_error(scope: Scope, send: Send, error: DigitServiceError) -> None:
    """Answer a request straight from ASGI middleware with ``error``'s status and JSON body (in
    the Open Inference Protocol's shape on its routes)."""
    if _is_inference_protocol_path(scope["path"]):
        body = orjson.dumps({"error": error.message})
    else:
        body = error_body(error.code, error.message)
    headers = [
        (b"content-type", JSON_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in error_headers(error).items()),
    ]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_response(
    status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error response in the API's JSON shape."""
    return Response(
        content=error_body(code, message),
        status_code=status_code,
        media_type=JSON_MEDIA_TYPE,
        headers=headers,
    )


def protocol_error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An error response in the Open Inference Protocol's shape, ``{"error": "<message>"}``."""
    return Response(
        content=orjson.dumps({"error": message}),
        status_code=status_code,
        media_type=JSON_MEDIA_TYPE,
        headers=headers,
    )


def _is_inference_protocol_path(path: str) -> bool:
    """Whether ``path`` is an Open Inference Protocol route's (``/v2``, ``/v2/...``)."""
    return path == INFERENCE_PROTOCOL_PREFIX or path.startswith(INFERENCE_PROTOCOL_PREFIX + "/")


def _is_inference_protocol(request: Request) -> bool:
    """Whether ``request`` went to an Open Inference Protocol route."""
    return _is_inference_protocol_path(request.url.path)


def _answer(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error response in the shape of the route ``request`` went to."""
    if _is_inference_protocol(request):
        return protocol_error_response(status_code, message, headers)
    return error_response(status_code, code, message, headers)


def _status_code_name(status_code: int) -> str:
    """A machine-readable name for an HTTP status, e.g. ``method_not_allowed`` for 405."""
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


async def handle_service_error(request: Request, error: Exception) -> Response:
    """The service's own exceptions: their status, code and message.

    Only input errors and a busy server describe the situation; other service errors (a model
    that failed to load, say) answer with a generic message, since theirs may name server-side
    files.
    """
    if not isinstance(error, DigitServiceError):  # pragma: no cover - registration guarantees it
        raise error
    if isinstance(error, InputError | ServiceBusyError):
        return _answer(
            request, error.status_code, error.code, error.message, headers=error_headers(error)
        )
    logger.error("service error on %s %s: %s", request.method, request.url.path, error.message)
    return _answer(request, error.status_code, error.code, "the model is not available")


async def handle_request_validation_error(request: Request, error: Exception) -> Response:
    """FastAPI's parameter validation errors: 422 naming each bad parameter, not its value."""
    if not isinstance(error, RequestValidationError):  # pragma: no cover
        raise error
    problems = []
    for issue in error.errors()[:5]:
        location = ".".join(str(part) for part in issue.get("loc", ()))
        problems.append(f"{location}: {issue.get('msg', 'invalid')}")
    message = "; ".join(problems) or "invalid request"
    if _is_inference_protocol(request):
        return protocol_error_response(400, message)
    return error_response(422, "validation_error", message)


async def handle_http_exception(request: Request, error: Exception) -> Response:
    """Starlette's HTTP exceptions (404 no route, 405 wrong method, ...) in the JSON shape."""
    if not isinstance(error, StarletteHTTPException):  # pragma: no cover
        raise error
    status_code = error.status_code
    if status_code == 404 and error.detail == "Not Found":
        message = "there is no such endpoint; the API is described at /docs"
    elif status_code == 405 and error.detail == "Method Not Allowed":
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = error.detail if isinstance(error.detail, str) else _status_code_name(status_code)
    return _answer(request, status_code, _status_code_name(status_code), message, error.headers)


async def handle_client_disconnect(request: Request, error: Exception) -> Response:
    """The client hung up while sending its body: nothing to answer, nothing to log loudly."""
    logger.debug("client disconnected during %s %s", request.method, request.url.path)
    return _answer(
        request, _CLIENT_CLOSED_REQUEST, "client_disconnected", "the client disconnected"
    )


async def handle_unexpected_error(request: Request, error: Exception) -> Response:
    """Any other exception: a 500 with a fixed message. The server logs the traceback.

    Starlette sends this response from outside every user middleware, so it carries the
    request ID header itself.
    """
    request_id = current_request_id()
    headers = {"X-Request-ID": request_id} if request_id is not None else None
    return _answer(request, 500, "internal_error", "internal server error", headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(DigitServiceError, handle_service_error)
    app.add_exception_handler(RequestValidationError, handle_request_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(ClientDisconnect, handle_client_disconnect)
    app.add_exception_handler(Exception, handle_unexpected_error)
