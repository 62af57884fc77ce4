"""The errors of the Open Inference Protocol routes (the API layer answers every error on
``/v2`` as ``{"error": "<message>"}``; see :mod:`app.api.errors`)."""

from __future__ import annotations

from app.errors import InputError


class InferenceRequestError(InputError):
    """An inference request the protocol refuses: bad JSON, an unknown input or output, a wrong
    datatype, shape, element count, encoding or binary section, or an unreadable image."""

    status_code = 400
    code = "invalid_inference_request"


class ModelNotFoundError(InputError):
    """A model name or version that the service does not serve."""

    status_code = 404
    code = "model_not_found"
