"""The lean multipart reader: what real clients send parses to the same parts, and every
malformed body is refused with :class:`MultipartFormatError` (a 400 in the API)."""

from __future__ import annotations

import httpx
import pytest

from app.api.multipart_body import (
    FormPart,
    MultipartFormatError,
    TooManyPartsError,
    boundary_of,
    parse_multipart,
)

PNG_LIKE = b"\x89PNG\r\n\x1a\n\r\n--not-the-boundary\r\n\x00\xff"


def _parse(body: bytes, content_type: str, max_files: int = 4) -> list[FormPart]:
    return parse_multipart(body, content_type, max_files=max_files, max_fields=4)


def test_parse_multipart_reads_what_httpx_sends() -> None:
    request = httpx.Request(
        "POST",
        "http://x/predict",
        files={"file": ('a;b "c".png', PNG_LIKE, "image/png")},
        data={"note": "hello"},
    )
    body = request.read()

    parts = _parse(body, request.headers["content-type"])

    assert parts == [
        FormPart(name="note", filename=None, content_type=None, data=b"hello"),
        FormPart(name="file", filename="a;b %22c%22.png", content_type="image/png", data=PNG_LIKE),
    ]


def test_parse_multipart_ignores_preamble_epilogue_and_padding() -> None:
    body = (
        b"preamble\r\n--xyz  \t\r\n"
        b'content-disposition: form-data; name="file"; filename="d.png"\r\n\r\n'
        b"DATA\r\n--xyz--\r\nepilogue"
    )

    parts = _parse(body, 'multipart/form-data; boundary="xyz"')

    assert [(part.name, part.data) for part in parts] == [("file", b"DATA")]


def test_parse_multipart_refuses_part_without_headers() -> None:
    body = b"--b\r\n\r\nDATA\r\n--b--\r\n"

    with pytest.raises(MultipartFormatError, match="Content-Disposition"):
        _parse(body, "multipart/form-data; boundary=b")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"no delimiter at all", id="no-delimiter"),
        pytest.param(
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nDATA',
            id="unterminated-part",
        ),
        pytest.param(b'--b\r\nContent-Disposition: form-data; name="file"', id="cut-in-headers"),
        pytest.param(b"--bX\r\n\r\nDATA\r\n--b--", id="garbage-after-delimiter"),
        pytest.param(b"--b\r\nno colon here\r\n\r\nDATA\r\n--b--\r\n", id="header-without-colon"),
        pytest.param(
            b"--b\r\nContent-Disposition: form-data\r\n\r\nDATA\r\n--b--\r\n", id="no-name"
        ),
        pytest.param(
            b"--b\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\nDATA\r\n--b--\r\n", id="huge-headers"
        ),
    ],
)
def test_parse_multipart_refuses_malformed_body(body: bytes) -> None:
    with pytest.raises(MultipartFormatError):
        _parse(body, "multipart/form-data; boundary=b")


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", 'multipart/form-data; boundary=a"b'],
)
def test_boundary_of_refuses_missing_or_invalid_boundary(content_type: str) -> None:
    with pytest.raises(MultipartFormatError):
        boundary_of(content_type)


def test_parse_multipart_stops_past_max_files() -> None:
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nD\r\n'
    body = part * 3 + b"--b--\r\n"

    assert len(_parse(body, "multipart/form-data; boundary=b", max_files=3)) == 3
    with pytest.raises(TooManyPartsError):
        _parse(body, "multipart/form-data; boundary=b", max_files=2)
