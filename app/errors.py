"""The service's own errors: every bad input becomes one of these, and the API layer maps each
to a JSON response ``{"error": {"code": ..., "message": ...}}`` with its HTTP status.

Code below the API layer (decoding, preprocessing, model loading) raises these and nothing else
for problems caused by the input; any other exception is a bug.
"""

from __future__ import annotations


class DigitServiceError(Exception):
    """Base class. ``status_code`` and ``code`` say how the API reports it."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(DigitServiceError):
    """Something is wrong with what the client sent."""


class EmptyUploadError(InputError):
    status_code = 400
    code = "empty_upload"


class InvalidImageError(InputError):
    """The bytes are not a decodable image (corrupt, truncated, unknown format)."""

    status_code = 400
    code = "invalid_image"


class UnsupportedMediaTypeError(InputError):
    """The upload is a known non-image type (text, SVG, PDF, HTML, ...)."""

    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(InputError):
    """The request body is larger than ``MAX_UPLOAD_BYTES``."""

    status_code = 413
    code = "payload_too_large"


class ImageTooLargeError(InputError):
    """The image declares more pixels than ``MAX_IMAGE_PIXELS`` (decompression-bomb guard)."""

    status_code = 413
    code = "image_too_large"


class ImageTooComplexError(InputError):
    """The image needs more than one upload may cost: more segments, scans or metadata than any
    real digit photo has (see :mod:`app.imaging.structure`), or more CPU time, memory or
    wall-clock time to decode than the decoder sandbox allows (see :mod:`app.imaging.sandbox`).
    """

    status_code = 413
    code = "image_too_complex"


class InvalidMultipartError(InputError):
    """A ``multipart/form-data`` body that cannot be parsed (no boundary, broken framing)."""

    status_code = 400
    code = "invalid_multipart"


class MissingFileError(InputError):
    """A multipart request without the ``file`` field."""

    status_code = 422
    code = "missing_file"


class NoDigitFoundError(InputError):
    """The image decoded but holds no ink: blank, uniform or only faint noise."""

    status_code = 422
    code = "no_digit_found"


class TooManyFilesError(InputError):
    """A batch with more files than ``MAX_BATCH_FILES``."""

    status_code = 413
    code = "too_many_files"


class RequestTimeoutError(InputError):
    """The request body did not arrive within ``REQUEST_BODY_TIMEOUT_SECONDS`` (a slow client)."""

    status_code = 408
    code = "request_timeout"


class AuthenticationError(InputError):
    """A protected endpoint was called without the right ``X-API-Key`` (when ``API_KEY`` is set)."""

    status_code = 401
    code = "unauthorized"


class ServiceBusyError(DigitServiceError):
    """Every slot for decoding large images stayed taken for ``DECODE_WAIT_SECONDS``: try again
    shortly (the response carries ``Retry-After``)."""

    status_code = 503
    code = "server_busy"

    def __init__(self, message: str, *, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ModelLoadError(DigitServiceError):
    """The model file is missing, unreadable or not the expected architecture. Raised at
    start-up; the service refuses to start."""

    status_code = 503
    code = "model_unavailable"


class TooManyDigitsError(InputError):
    """``POST /predict/number`` found more digits than ``MAX_DIGITS_PER_IMAGE`` (a page of text,
    a grid of specks): the image is not one number."""

    status_code = 422
    code = "too_many_digits"
