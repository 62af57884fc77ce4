"""Every error the API returns is JSON ``{"error": {"code": "...", "message": "..."}}``.

The handlers here map, once for the whole app, the service's own exceptions
(:mod:`app.errors`), FastAPI's request validation errors, Starlette's HTTP exceptions (404, 405,
...) and any unexpected exception to that shape. Client-facing messages never carry a stack
trace or a file path: an unexpected exception answers a fixed message and the server logs the
traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.errors import DigitServiceError, InputError, PayloadTooLargeError

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE: Final = "application/json"

# A status the client never sees: it hung up before the request was read.
_CLIENT_CLOSED_REQUEST: Final = 499


def error_body(code: str, message: str) -> bytes:
    """The JSON bytes of an error response."""
    return orjson.dumps({"error": {"code": code, "message": message}})


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


def _status_code_name(status_code: int) -> str:
    """A machine-readable name for an HTTP status, e.g. ``method_not_allowed`` for 405."""
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


async def handle_service_error(request: Request, error: Exception) -> Response:
    """The service's own exceptions: their status, code and message.

    Only input errors describe the request; other service errors (a model that failed to
    load, say) answer with a generic message, since theirs may name server-side files.
    """
    if not isinstance(error, DigitServiceError):  # pragma: no cover - registration guarantees it
        raise error
    if isinstance(error, PayloadTooLargeError):
        # The rest of the body is still on its way; closing the connection stops the server
        # from reading (and discarding) it.
        return error_response(
            error.status_code, error.code, error.message, headers={"Connection": "close"}
        )
    if isinstance(error, InputError):
        return error_response(error.status_code, error.code, error.message)
    logger.error("service error on %s %s: %s", request.method, request.url.path, error.message)
    return error_response(error.status_code, error.code, "the model is not available")


async def handle_request_validation_error(request: Request, error: Exception) -> Response:
    """FastAPI's parameter validation errors: 422 naming each bad parameter, not its value."""
    if not isinstance(error, RequestValidationError):  # pragma: no cover
        raise error
    problems = []
    for issue in error.errors()[:5]:
        location = ".".join(str(part) for part in issue.get("loc", ()))
        problems.append(f"{location}: {issue.get('msg', 'invalid')}")
    return error_response(422, "validation_error", "; ".join(problems) or "invalid request")


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
    return error_response(status_code, _status_code_name(status_code), message, error.headers)


async def handle_client_disconnect(request: Request, error: Exception) -> Response:
    """The client hung up while sending its body: nothing to answer, nothing to log loudly."""
    logger.debug("client disconnected during %s %s", request.method, request.url.path)
    return error_response(_CLIENT_CLOSED_REQUEST, "client_disconnected", "the client disconnected")


async def handle_unexpected_error(request: Request, error: Exception) -> Response:
    """Any other exception: a 500 with a fixed message. The server logs the traceback."""
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(DigitServiceError, handle_service_error)
    app.add_exception_handler(RequestValidationError, handle_request_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(ClientDisconnect, handle_client_disconnect)
    app.add_exception_handler(Exception, handle_unexpected_error)
