"""Reading the image(s) out of a prediction request: multipart ``file`` parts or a raw body.

The body has already passed :class:`app.api.body_guard.RequestBodyGuardMiddleware`, so what is
read here is at most ``MAX_UPLOAD_BYTES`` and is read whole (``Request.body()``). Multipart bodies
are split by python-multipart (:mod:`app.api.multipart_form`), so that a malformed body, a
missing ``file`` field or too many files get this service's own error codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fastapi import Request

from app.api.multipart_form import parse_form
from app.errors import InputError, MissingFileError, UnsupportedMediaTypeError

FILE_FIELD: Final = "file"
"""Name of the multipart field holding an image."""

MULTIPART_FORM_DATA: Final = "multipart/form-data"
OCTET_STREAM: Final = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ImageUpload:
    """One uploaded image: its bytes, or the reason it is refused before decoding."""

    data: bytes
    refusal: InputError | None = None


def media_type_of(content_type: str | None) -> str:
    """The bare, lower-case media type of a ``Content-Type`` value (no parameters)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_image_media_type(media_type: str) -> bool:
    """Whether a declared type may hold an image: ``image/*`` or the generic binary type."""
    return media_type.startswith("image/") or media_type == OCTET_STREAM


def _unsupported(media_type: str) -> UnsupportedMediaTypeError:
    shown = media_type or "no Content-Type"
    return UnsupportedMediaTypeError(
        f"{shown} is not an image type: send multipart/form-data with a '{FILE_FIELD}' part, "
        "or the image itself with an image/* Content-Type"
    )


async def read_single_image(request: Request) -> bytes:
    """The one image of a ``POST /predict``: the multipart ``file`` part or the raw body.

    Raises :class:`~app.errors.UnsupportedMediaTypeError` for any other Content-Type, and the
    errors of :func:`read_multipart_images` for a bad multipart body.
    """
    media_type = media_type_of(request.headers.get("content-type"))
    if media_type == MULTIPART_FORM_DATA:
        (upload,) = await read_multipart_images(
            request,
            max_files=1,
            too_many_message=(
                f"POST /predict takes one '{FILE_FIELD}' part; send several to /predict/batch"
            ),
        )
        if upload.refusal is not None:
            raise upload.refusal
        return upload.data
    if is_image_media_type(media_type):
        return await request.body()
    raise _unsupported(media_type)


async def read_multipart_images(
    request: Request, *, max_files: int, too_many_message: str | None = None
) -> list[ImageUpload]:
    """Every ``file`` part of a ``multipart/form-data`` body, in order.

    A part whose declared Content-Type is not an image type comes back with a
    :class:`~app.errors.UnsupportedMediaTypeError` refusal instead of being rejected outright,
    so a batch can report it in place. Raises :class:`~app.errors.InvalidMultipartError` for a
    body that does not parse, :class:`~app.errors.TooManyFilesError` past ``max_files`` files and
    :class:`~app.errors.MissingFileError` when there is no ``file`` part.
    """
    content_type = request.headers.get("content-type") or ""
    media_type = media_type_of(content_type)
    if media_type != MULTIPART_FORM_DATA:
        raise _unsupported(media_type)
    parts = parse_form(
        await request.body(), content_type, max_files=max_files, too_many_files=too_many_message
    )
    uploads: list[ImageUpload] = []
    for part in parts:
        if part.name != FILE_FIELD:
            continue
        if part.filename is None:
            raise MissingFileError(
                f"the '{FILE_FIELD}' part must be a file upload (with a filename), not a text value"
            )
        declared = media_type_of(part.content_type)
        if declared and not is_image_media_type(declared):
            uploads.append(ImageUpload(data=b"", refusal=_unsupported(declared)))
        else:
            uploads.append(ImageUpload(data=part.data))
    if not uploads:
        raise MissingFileError(
            f"the multipart body has no '{FILE_FIELD}' part: send the image as "
            f"-F {FILE_FIELD}=@digit.png"
        )
    return uploads
