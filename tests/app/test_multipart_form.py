"""The multipart adapter over python-multipart: what clients send is read, part by part, and
every malformed or over-limit body is one of the service's own errors."""

from __future__ import annotations

import httpx
import pytest

from app.api.multipart_form import MAX_TEXT_FIELDS, parse_form
from app.errors import InvalidMultipartError, TooManyFilesError

BOUNDARY = "test-boundary-4f1c"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _part(
    name: str, content: bytes, filename: str | None = None, media: str | None = None
) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = disposition + (f"\r\nContent-Type: {media}" if media else "")
    return f"--{BOUNDARY}\r\n{head}\r\n\r\n".encode() + content + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def test_parse_form_reads_what_httpx_sends() -> None:
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/predict/batch",
        files=[("file", ("a.png", b"\x89PNG-a", "image/png")), ("file", ("b.jpg", b"JPEG-b"))],
        data={"note": "hello"},
    )
    body = request.read()

    parts = parse_form(body, request.headers["content-type"], max_files=2)

    files = [part for part in parts if part.filename is not None]
    assert [(part.name, part.filename, part.data) for part in files] == [
        ("file", "a.png", b"\x89PNG-a"),
        ("file", "b.jpg", b"JPEG-b"),
    ]
    assert files[0].content_type == "image/png"
    assert [part.data for part in parts if part.filename is None] == [b"hello"]


def test_parse_form_keeps_binary_data_with_crlf_and_dashes() -> None:
    content = b"\r\n--not-the-boundary\r\n\x00\xff" * 100

    (part,) = parse_form(_body(_part("file", content, "x.bin")), CONTENT_TYPE, max_files=1)

    assert part.data == content


def test_parse_form_past_max_files_is_too_many_files() -> None:
    body = _body(*(_part("file", b"x", f"{index}.png") for index in range(3)))

    with pytest.raises(TooManyFilesError, match="one at most"):
        parse_form(body, CONTENT_TYPE, max_files=2, too_many_files="one at most")


def test_parse_form_refuses_too_many_text_fields() -> None:
    body = _body(*(_part(f"field{index}", b"v") for index in range(MAX_TEXT_FIELDS + 1)))

    with pytest.raises(InvalidMultipartError, match="text fields"):
        parse_form(body, CONTENT_TYPE, max_files=1)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (_body(_part("file", b"x", "a.png")), "multipart/form-data"),
        (_body(_part("file", b"x", "a.png")), "multipart/form-data; boundary="),
        (_body(_part("file", b"x", "a.png"))[:-10], CONTENT_TYPE),
        (b"garbage without any boundary", CONTENT_TYPE),
        (f"--{BOUNDARY}\r\nX-Other: 1\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(), CONTENT_TYPE),
        (f"--{BOUNDARY}\r\nno colon here\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(), CONTENT_TYPE),
        (b"", CONTENT_TYPE),
    ],
    ids=["no-boundary", "empty-boundary", "truncated", "garbage", "no-name", "bad-header", "empty"],
)
def test_parse_form_refuses_malformed_bodies(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidMultipartError, match="cannot be parsed"):
        parse_form(body, content_type, max_files=4)
