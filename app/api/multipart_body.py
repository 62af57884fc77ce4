"""A lean ``multipart/form-data`` reader for a body already held in memory.

The request body has passed :class:`app.api.middleware.RequestBodyLimitMiddleware`, so it is
at most ``MAX_UPLOAD_BYTES`` long and can be read whole. Splitting it at its boundaries with
``bytes.find`` (C speed, linear in the body) costs a few microseconds for a small upload, where
Starlette's streaming parser, a Python state machine fed by callbacks that spools each file
into a ``SpooledTemporaryFile``, costs about 100 µs (measured with the ASGI app called
directly: ``POST /predict`` with a 28 x 28 PNG, 230 µs of CPU per request before, see
``docs/benchmark.md``).

The grammar is RFC 2046 section 5.1.1 as RFC 7578 uses it, read strictly: a body that does not
follow it (no boundary, no delimiter, a truncated part, a part without the closing delimiter,
unparsable part headers, no ``name``) raises :class:`MultipartFormatError`. Hostile bodies cost
at most linear time: every search starts where the previous one ended, part headers are
bounded by :data:`MAX_PART_HEADER_BYTES`, and parsing stops at the first part past
``max_files`` file parts or ``max_fields`` text parts.

>>> head = b'Content-Disposition: form-data; name="file"; filename="a.png"'
>>> body = b"--b\\r\\n" + head + b"\\r\\n\\r\\nPNG\\r\\n--b--\\r\\n"
>>> parse_multipart(body, "multipart/form-data; boundary=b", max_files=1, max_fields=1)
[FormPart(name='file', filename='a.png', content_type=None, data=b'PNG')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_PART_HEADER_BYTES: Final = 16 * 1024
"""Longest header block of one part; real clients send well under 1 KiB."""

MAX_BOUNDARY_LENGTH: Final = 200
"""RFC 2046 allows 70 characters; a little slack for clients that exceed it."""

# RFC 2046 ``bchars``: digits, letters, ``'()+_,-./:=?`` and space (not last).
_BOUNDARY_PATTERN: Final = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]")
# One ``; name=value`` parameter of a header, the value a token or a quoted string.
_PARAMETER_PATTERN: Final = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.DOTALL)
_QUOTED_PAIR: Final = re.compile(r"\\(.)", re.DOTALL)
_CRLF: Final = b"\r\n"
_HEADER_END: Final = b"\r\n\r\n"
_TRANSPORT_PADDING: Final = b" \t"


class MultipartFormatError(ValueError):
    """The body is not well-formed ``multipart/form-data``; the message says why."""


class TooManyPartsError(MultipartFormatError):
    """The body holds more file parts than allowed."""


@dataclass(frozen=True, slots=True)
class FormPart:
    """One part of the form: its field name, file name (None for a text field), declared
    Content-Type (None when absent) and content."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter of a ``multipart/form-data`` Content-Type value.

    Raises :class:`MultipartFormatError` when it is missing or not a valid boundary.
    """
    _, _, parameters = content_type.partition(";")
    for name, value in _parameters(";" + parameters):
        if name == "boundary":
            if len(value) <= MAX_BOUNDARY_LENGTH and _BOUNDARY_PATTERN.fullmatch(value):
                return value.encode("ascii")
            raise MultipartFormatError("Invalid boundary in multipart.")
    raise MultipartFormatError("Missing boundary in multipart.")


def parse_multipart(
    body: bytes, content_type: str, *, max_files: int, max_fields: int
) -> list[FormPart]:
    """Every part of a ``multipart/form-data`` body, in order.

    A part with a ``filename`` parameter is a file (at most ``max_files`` of them, or
    :class:`TooManyPartsError`); any other is a text field (at most ``max_fields``, or
    :class:`MultipartFormatError`). The preamble before the first delimiter and the epilogue
    after the last are ignored, as RFC 2046 says.
    """
    delimiter = b"--" + boundary_of(content_type)
    if body.startswith(delimiter):
        position = 0
    else:
        found = body.find(_CRLF + delimiter)
        if found < 0:
            raise MultipartFormatError("Invalid multipart data: no boundary delimiter found.")
        position = found + len(_CRLF)
    part_end_marker = _CRLF + delimiter
    parts: list[FormPart] = []
    files = fields = 0
    while True:
        position += len(delimiter)
        if body.startswith(b"--", position):
            return parts
        while position < len(body) and body[position] in _TRANSPORT_PADDING:
            position += 1
        if not body.startswith(_CRLF, position):
            raise MultipartFormatError("Invalid multipart data: malformed boundary delimiter.")
        position += len(_CRLF)
        if body.startswith(_CRLF, position):
            header_block = b""
            content_start = position + len(_CRLF)
        else:
            header_end = body.find(_HEADER_END, position, position + MAX_PART_HEADER_BYTES)
            if header_end < 0:
                raise MultipartFormatError("Invalid multipart data: unterminated part headers.")
            header_block = body[position:header_end]
            content_start = header_end + len(_HEADER_END)
        content_end = body.find(part_end_marker, content_start)
        if content_end < 0:
            raise MultipartFormatError("Invalid multipart data: a part is not terminated.")
        part = _part(header_block, body[content_start:content_end])
        if part.filename is not None:
            files += 1
            if files > max_files:
                raise TooManyPartsError(f"Too many files. Maximum number of files is {max_files}.")
        else:
            fields += 1
            if fields > max_fields:
                raise MultipartFormatError(
                    f"Too many fields. Maximum number of fields is {max_fields}."
                )
        parts.append(part)
        position = content_end + len(_CRLF)


def _part(header_block: bytes, data: bytes) -> FormPart:
    """A part from its raw header block (without the blank line) and its content."""
    disposition: str | None = None
    content_type: str | None = None
    for line in header_block.split(_CRLF) if header_block else ():
        raw_name, colon, raw_value = line.partition(b":")
        if not colon or not raw_name.strip():
            raise MultipartFormatError("Invalid multipart data: malformed part header.")
        name = raw_name.strip().lower()
        if name == b"content-disposition":
            disposition = raw_value.decode("latin-1").strip()
        elif name == b"content-type":
            content_type = raw_value.decode("latin-1").strip()
    if disposition is None:
        raise MultipartFormatError("Invalid multipart data: a part has no Content-Disposition.")
    _, _, parameters = disposition.partition(";")
    options = dict(_parameters(";" + parameters))
    field_name = options.get("name")
    if field_name is None:
        raise MultipartFormatError('The Content-Disposition header field "name" must be provided.')
    filename = options.get("filename", options.get("filename*"))
    return FormPart(name=field_name, filename=filename, content_type=content_type, data=data)


def _parameters(text: str) -> list[tuple[str, str]]:
    """The ``; name=value`` parameters of a header value (names lower-cased, values unquoted)."""
    found: list[tuple[str, str]] = []
    for match in _PARAMETER_PATTERN.finditer(text):
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
            if "\\" in value:
                value = _QUOTED_PAIR.sub(r"\1", value)
        found.append((match.group(1).lower(), value))
    return found
