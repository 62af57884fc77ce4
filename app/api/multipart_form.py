"""``multipart/form-data`` bodies split into parts by python-multipart, with this service's limits.

A thin adapter over :class:`python_multipart.MultipartParser`, as Starlette's form parser is, but
keeping each part's bytes in memory (the whole body is already bounded by ``MAX_UPLOAD_BYTES``)
and reporting limits and malformed bodies as the service's own errors, so that a client learns
whether it sent too many files (413) or a broken body (400).

>>> body = b'--b\\r\\nContent-Disposition: form-data; name="file"; filename="a.png"\\r\\n\\r\\nPNG\\r\\n--b--\\r\\n'
>>> [(part.name, part.filename, part.data) for part in parse_form(body, "multipart/form-data; boundary=b", max_files=1)]
[('file', 'a.png', b'PNG')]
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from app.errors import InvalidMultipartError, TooManyFilesError

MAX_TEXT_FIELDS: Final = 16
"""Parts without a filename kept at most; text fields are ignored by the API anyway."""

_CONTENT_DISPOSITION: Final = b"content-disposition"
_CONTENT_TYPE: Final = b"content-type"


@dataclass(slots=True)
class FormPart:
    """One part of a form: its field name, filename (None for a text field), declared
    Content-Type (None if absent) and bytes."""

    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    chunks: list[bytes] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        """The part's bytes."""
        return b"".join(self.chunks)


class _FormCollector:
    """The parser's callbacks: collect the parts, counting files and text fields."""

    def __init__(self, *, max_files: int, too_many_files: str) -> None:
        self.parts: list[FormPart] = []
        self.ended = False
        self._max_files = max_files
        self._too_many_files = too_many_files
        self._files = 0
        self._fields = 0
        self._part = FormPart()
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self._part = FormPart()
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_name.strip().lower()] = self._header_value.strip()
        self._header_name = self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(_CONTENT_DISPOSITION))
        if b"name" not in options:
            raise InvalidMultipartError(
                "the multipart body cannot be parsed: a part has no Content-Disposition name"
            )
        self._part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            self._files += 1
            if self._files > self._max_files:
                raise TooManyFilesError(self._too_many_files)
            self._part.filename = options[b"filename"].decode("utf-8", "replace")
        else:
            self._fields += 1
            if self._fields > MAX_TEXT_FIELDS:
                raise InvalidMultipartError(
                    f"the multipart body has more than {MAX_TEXT_FIELDS} text fields"
                )
        declared = self._headers.get(_CONTENT_TYPE)
        self._part.content_type = declared.decode("latin-1") if declared else None

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._part.chunks.append(data[start:end])

    def _on_part_end(self) -> None:
        self.parts.append(self._part)

    def _on_end(self) -> None:
        self.ended = True


def parse_form(
    body: bytes, content_type: str, *, max_files: int, too_many_files: str | None = None
) -> list[FormPart]:
    """The parts of a complete ``multipart/form-data`` body, in order.

    Raises :class:`~app.errors.TooManyFilesError` (with ``too_many_files`` as its message, if
    given) past ``max_files`` file parts, and :class:`~app.errors.InvalidMultipartError` for a
    body without a boundary, a malformed or truncated body, or more than
    :data:`MAX_TEXT_FIELDS` text fields.
    """
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidMultipartError(
            "the multipart body cannot be parsed: the Content-Type names no boundary"
        )
    collector = _FormCollector(
        max_files=max_files,
        too_many_files=too_many_files or f"too many files: at most {max_files} per request",
    )
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except FormParserError as error:
        raise InvalidMultipartError(f"the multipart body cannot be parsed: {error}") from None
    if not collector.ended:
        raise InvalidMultipartError(
            "the multipart body cannot be parsed: it ends before its closing boundary"
        )
    return collector.parts
