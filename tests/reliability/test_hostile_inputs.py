"""Named hostile inputs against the real service (``mnist-serve`` on 127.0.0.1): each gets its
4xx with the JSON error body and a request ID, quickly, and, where memory is the attack, without
the server's peak memory moving; odd but valid images are read correctly; the service keeps
serving. Every request here goes over a real socket through uvicorn.

The server runs with a 1 MiB body limit and 1-1.5 s timeouts (see ``conftest.py``).
"""

from __future__ import annotations

import io
import json
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Final

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from bench.servers import LOOPBACK, ServerProcess

Sample = tuple[NDArray[np.uint8], NDArray[np.int64]]
MeasureMemory = Callable[[ServerProcess, Callable[[], object]], int]

LIMIT_BYTES: Final = 1024 * 1024
BOUNDARY: Final = "hostile-boundary-5d2a"
MULTIPART_TYPE: Final = f"multipart/form-data; boundary={BOUNDARY}"

QUICK_SECONDS: Final = 1.0
"""Refusals decided from a header or the first bytes take milliseconds; this leaves slack for a
busy CI machine."""
BOUNDED_SECONDS: Final = 3.0
"""Inputs that are decoded or read in full (still well within the limits)."""
HEADER_REFUSAL_MEMORY_KIB: Final = 16 * 1024
"""Peak memory an input refused from its header may cost the server (it costs ~0)."""


# Building hostile files.


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and a correct CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, *, color_type: int = 0, bit_depth: int = 8) -> bytes:
    """A well-formed PNG of a few dozen bytes whose header declares ``width`` x ``height``."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + png_chunk(b"IEND", b"")
    )


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def png_with_ancillary_bomb(kind: bytes) -> bytes:
    """A 28 x 28 PNG carrying a compressed text or colour-profile chunk that inflates to
    200 MB from 200 kB."""
    base = encoded(Image.new("L", (28, 28)), "PNG")
    inflated = bytes(200 * 1024 * 1024)
    payload = (b"Comment\x00\x00" if kind == b"zTXt" else b"icc\x00\x00") + zlib.compress(
        inflated, 9
    )
    ihdr_end = 8 + 25
    return base[:ihdr_end] + png_chunk(kind, payload) + base[ihdr_end:]


def gif_declaring(screen: tuple[int, int], frame: tuple[int, int]) -> bytes:
    """A GIF whose logical screen and first frame declare the given sizes (one pixel of data)."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", *screen, 0x80, 0, 0)
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, *frame, 0)
        + b"\x02\x02\x44\x01\x00"
        + b"\x3b"
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real 16 x 16 JPEG whose frame header is rewritten to declare ``width`` x ``height``."""
    data = bytearray(encoded(Image.new("L", (16, 16), 255), "JPEG"))
    start_of_frame = data.find(b"\xff\xc0")
    data[start_of_frame + 5 : start_of_frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    """A real 4 x 4 BMP whose info header is rewritten to declare ``width`` x ``height``."""
    data = bytearray(encoded(Image.new("L", (4, 4)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def tiff_declaring(width: int, height: int) -> bytes:
    """A real 4 x 4 TIFF whose ImageWidth and ImageLength tags are rewritten."""
    data = bytearray(encoded(Image.new("L", (4, 4)), "TIFF"))
    (directory,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, directory)
    for index in range(entries):
        entry = directory + 2 + 12 * index
        tag, field_type, _ = struct.unpack_from("<HHI", data, entry)
        if tag in (256, 257):
            struct.pack_into("<HHII", data, entry, tag, 4, 1, width if tag == 256 else height)
    return bytes(data)


def webp_declaring(width: int, height: int) -> bytes:
    """An extended-format WebP header (VP8X) declaring a ``width`` x ``height`` canvas."""
    chunk = (
        b"VP8X"
        + struct.pack("<I", 10)
        + b"\x00\x00\x00\x00"
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little")
    )
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def multipart(*parts: tuple[bytes, bytes | None, bytes | None, bytes]) -> bytes:
    """A multipart/form-data body from raw (name, filename, content type, data) parts, so that
    names and filenames may hold any bytes."""
    body = b""
    for name, filename, content_type, data in parts:
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        body += b"--" + BOUNDARY.encode() + b"\r\n" + disposition + b"\r\n"
        if content_type is not None:
            body += b"Content-Type: " + content_type + b"\r\n"
        body += b"\r\n" + data + b"\r\n"
    return body + b"--" + BOUNDARY.encode() + b"--\r\n"


# Talking to the server.


def assert_json_error(response: httpx.Response, status_code: int, code: str) -> str:
    """The status, the JSON error body with its request ID (also in the header), and nothing
    that leaks the server's internals; returns the message."""
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code, body
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    assert "/work/" not in response.text and ".py" not in response.text
    message: str = body["error"]["message"]
    return message


@pytest.fixture(scope="module")
def client(hostile_server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client of the hostile-input server."""
    with httpx.Client(base_url=f"http://{LOOPBACK}:{hostile_server.port}", timeout=30) as http:
        yield http


def timed(action: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    """The response and the seconds it took."""
    started = time.perf_counter()
    response = action()
    return response, time.perf_counter() - started


UPLOAD_PATHS: Final = ("/predict", "/predict/number")
"""The endpoints that take one image: each hostile upload is sent to both."""


def post_raw(
    client: httpx.Client, data: bytes, content_type: str = "image/png", path: str = "/predict"
) -> httpx.Response:
    return client.post(path, content=data, headers={"Content-Type": content_type})


def raw_exchange(
    server: ServerProcess, head: bytes, chunks: list[bytes], pause: float = 0.0
) -> bytes:
    """Send a hand-written request over a socket (``chunks`` ``pause`` seconds apart), then read
    until the server closes; tolerates the server closing while we still send."""
    with socket.create_connection((LOOPBACK, server.port), timeout=10) as connection:
        connection.sendall(head)
        for chunk in chunks:
            try:
                connection.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(pause)
        reply = b""
        try:
            while data := connection.recv(65536):
                reply += data
        except (ConnectionResetError, TimeoutError):
            pass
    return reply


def parse_reply(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body of a raw HTTP/1.1 reply."""
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def digits(mnist_sample: Sample, client: httpx.Client) -> dict[int, bytes]:
    """One real MNIST digit per label 0-9 as a 28 x 28 PNG, each one the service classifies
    correctly on its own (so that a wrong answer below means the input was misread)."""
    images, labels = mnist_sample
    chosen: dict[int, bytes] = {}
    for image, label in zip(images, labels, strict=True):
        if int(label) in chosen:
            continue
        png = encoded(Image.fromarray(image), "PNG")
        response = post_raw(client, png)
        if response.status_code == 200 and response.json()["digit"] == label:
            chosen[int(label)] = png
        if len(chosen) == 10:
            return chosen
    pytest.fail("the service misread a digit of every label in the MNIST sample")


def digit_image(digits: dict[int, bytes], label: int) -> Image.Image:
    return Image.open(io.BytesIO(digits[label])).convert("L")


# Decompression bombs: refused from their header, in milliseconds, costing no memory.

BOMBS: Final[dict[str, tuple[bytes, int, str]]] = {
    "png-50000x50000": (png_declaring(50_000, 50_000), 413, "image_too_large"),
    "png-65535x65535-rgba-16bit": (
        png_declaring(65_535, 65_535, color_type=6, bit_depth=16),
        413,
        "image_too_large",
    ),
    "gif-screen-65535x65535": (gif_declaring((65_535, 65_535), (1, 1)), 413, "image_too_large"),
    "gif-frame-beyond-1x1-screen": (
        gif_declaring((1, 1), (65_535, 65_535)),
        413,
        "image_too_large",
    ),
    "jpeg-65000x65000": (jpeg_declaring(65_000, 65_000), 413, "image_too_large"),
    "bmp-50000x50000": (bmp_declaring(50_000, 50_000), 413, "image_too_large"),
    "tiff-100000x100000": (tiff_declaring(100_000, 100_000), 413, "image_too_large"),
    "webp-16384x16384": (webp_declaring(16_384, 16_384), 413, "image_too_large"),
    "png-ztxt-200mb-text": (png_with_ancillary_bomb(b"zTXt"), 413, "image_too_complex"),
    "png-iccp-200mb-profile": (png_with_ancillary_bomb(b"iCCP"), 413, "image_too_complex"),
}


@pytest.mark.parametrize("path", UPLOAD_PATHS)
@pytest.mark.parametrize("name", sorted(BOMBS))
def test_upload_decompression_bomb_is_refused_fast_with_bounded_memory(
    hostile_server: ServerProcess,
    client: httpx.Client,
    peak_memory_growth_kib: MeasureMemory,
    name: str,
    path: str,
) -> None:
    data, status_code, code = BOMBS[name]
    answers: list[tuple[httpx.Response, float]] = []

    growth = peak_memory_growth_kib(
        hostile_server,
        lambda: answers.append(timed(lambda: post_raw(client, data, path=path))),
    )

    ((response, seconds),) = answers
    assert_json_error(response, status_code, code)
    assert seconds < QUICK_SECONDS
    assert growth < HEADER_REFUSAL_MEMORY_KIB


def test_upload_huge_gif_canvas_within_the_pixel_limit_is_read_with_bounded_memory(
    hostile_server: ServerProcess, client: httpx.Client, peak_memory_growth_kib: MeasureMemory
) -> None:
    # 6,000 x 6,000 = 36 megapixels, under MAX_IMAGE_PIXELS (40 M): decoded (one byte per pixel
    # as a palette image), found blank. Its cost is bounded by the pixel limit.
    data = gif_declaring((6_000, 6_000), (1, 1))
    answers: list[tuple[httpx.Response, float]] = []

    growth = peak_memory_growth_kib(
        hostile_server, lambda: answers.append(timed(lambda: post_raw(client, data, "image/gif")))
    )

    ((response, seconds),) = answers
    assert_json_error(response, 422, "no_digit_found")
    assert seconds < BOUNDED_SECONDS
    assert growth < 64 * 1024


# Enormous and malformed multipart bodies.


def test_multipart_with_12000_parts_is_400(client: httpx.Client) -> None:
    body = multipart(*((b"field%d" % index, None, None, b"v") for index in range(12_000)))
    assert len(body) < LIMIT_BYTES

    response, seconds = timed(
        lambda: client.post("/predict", content=body, headers={"Content-Type": MULTIPART_TYPE})
    )

    assert_json_error(response, 400, "invalid_multipart")
    assert seconds < QUICK_SECONDS


@pytest.mark.parametrize(
    "padding",
    [
        pytest.param(b"X-Padding: " + b"a" * 900_000 + b"\r\n", id="one-900kb-header"),
        pytest.param(b"".join(b"X-H%d: v\r\n" % n for n in range(20_000)), id="20000-headers"),
    ],
)
def test_multipart_part_with_huge_headers_is_400(client: httpx.Client, padding: bytes) -> None:
    body = multipart((b"file", b"digit.png", b"image/png\r\n" + padding.rstrip(b"\r\n"), b"x"))
    assert len(body) < LIMIT_BYTES

    response, seconds = timed(
        lambda: client.post("/predict", content=body, headers={"Content-Type": MULTIPART_TYPE})
    )

    assert_json_error(response, 400, "invalid_multipart")
    assert seconds < QUICK_SECONDS


def test_multipart_deeply_nested_in_a_file_part_is_415(client: httpx.Client) -> None:
    nested = b"digit"
    for depth in range(500):
        nested = (
            b"--n%d\r\nContent-Type: multipart/mixed; boundary=n%d\r\n\r\n" % (depth, depth + 1)
            + nested
            + b"\r\n--n%d--\r\n" % depth
        )
    body = multipart((b"file", b"nested.bin", b"multipart/mixed; boundary=n0", nested))

    response, seconds = timed(
        lambda: client.post("/predict", content=body, headers={"Content-Type": MULTIPART_TYPE})
    )

    assert_json_error(response, 415, "unsupported_media_type")
    assert seconds < QUICK_SECONDS


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"--" + BOUNDARY.encode() + b"\r\ngarbage", MULTIPART_TYPE, id="unterminated"),
        pytest.param(b"", MULTIPART_TYPE, id="empty"),
        pytest.param(b"x", "multipart/form-data", id="no-boundary"),
        pytest.param(b"x", "multipart/form-data; boundary=" + "b" * 5000, id="5000-char-boundary"),
    ],
)
def test_multipart_malformed_is_400(client: httpx.Client, body: bytes, content_type: str) -> None:
    response = client.post("/predict", content=body, headers={"Content-Type": content_type})

    assert_json_error(response, 400, "invalid_multipart")


# Bodies over the limit, with and without Content-Length, fast and slow.


def test_body_declared_over_the_limit_is_413_before_it_is_sent(
    hostile_server: ServerProcess,
) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Content-Length: 500000000\r\n\r\n"
    )

    started = time.perf_counter()
    status, headers, body = parse_reply(raw_exchange(hostile_server, head, []))

    assert time.perf_counter() - started < QUICK_SECONDS
    assert status == 413
    assert b'"code":"payload_too_large"' in body
    assert headers["connection"] == "close"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_a_little_over_the_limit_gets_a_clean_413_not_a_reset(
    client: httpx.Client, chunked: bool
) -> None:
    # The client sends its whole body before it reads: the server reads the rest and drops it,
    # so the client sees the 413 rather than a connection reset.
    data = bytes(LIMIT_BYTES + 300_000)
    content: bytes | Iterator[bytes] = data
    if chunked:
        content = iter([data[start : start + 65_536] for start in range(0, len(data), 65_536)])

    response, seconds = timed(
        lambda: client.post("/predict", content=content, headers={"Content-Type": "image/png"})
    )

    message = assert_json_error(response, 413, "payload_too_large")
    assert str(LIMIT_BYTES) in message
    assert seconds < BOUNDED_SECONDS


def test_chunked_body_over_the_limit_on_a_raw_socket_is_413(hostile_server: ServerProcess) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (65_536, bytes(65_536))

    status, _, body = parse_reply(raw_exchange(hostile_server, head, [chunk] * 40 + [b"0\r\n\r\n"]))

    assert status == 413
    assert b'"code":"payload_too_large"' in body


def test_slow_chunks_over_the_limit_are_413_before_the_body_deadline(
    hostile_server: ServerProcess,
) -> None:
    # 64 KiB every 50 ms: past the 1 MiB limit after 0.85 s, before the 1.5 s body deadline.
    head = (
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (65_536, bytes(65_536))

    started = time.perf_counter()
    status, _, body = parse_reply(raw_exchange(hostile_server, head, [chunk] * 24, pause=0.05))

    assert status == 413
    assert b'"code":"payload_too_large"' in body
    assert time.perf_counter() - started < BOUNDED_SECONDS


# Empty, mislabelled and non-image uploads.


@pytest.mark.parametrize("path", UPLOAD_PATHS)
@pytest.mark.parametrize("as_multipart", [False, True], ids=["raw", "multipart"])
def test_zero_byte_upload_is_400(client: httpx.Client, as_multipart: bool, path: str) -> None:
    if as_multipart:
        response = client.post(
            path,
            content=multipart((b"file", b"empty.png", b"image/png", b"")),
            headers={"Content-Type": MULTIPART_TYPE},
        )
    else:
        response = post_raw(client, b"", path=path)

    assert_json_error(response, 400, "empty_upload")


def test_zero_byte_file_in_a_batch_is_refused_in_place(
    client: httpx.Client, digits: dict[int, bytes]
) -> None:
    body = multipart(
        (b"file", b"empty.png", b"image/png", b""), (b"file", b"four.png", b"image/png", digits[4])
    )

    response = client.post("/predict/batch", content=body, headers={"Content-Type": MULTIPART_TYPE})

    assert response.status_code == 200
    first, second = response.json()["results"]
    assert (first["status"], first["error"]["code"]) == (400, "empty_upload")
    assert (second["status"], second["prediction"]["digit"]) == (200, 4)


SVG: Final = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
    b'<text x="4" y="24" font-size="24">7</text></svg>'
)
PDF: Final = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML: Final = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)>7</body></html>"

NOT_IMAGES: Final[dict[str, tuple[bytes, str, bytes]]] = {
    # name: (content, honest type, file name)
    "text": (b"just some text, not a digit\n", "text/plain", b"digit.png"),
    "svg": (SVG, "image/svg+xml", b"digit.svg"),
    "pdf": (PDF, "application/pdf", b"digit.pdf"),
    "html": (HTML, "text/html", b"digit.html"),
}


@pytest.mark.parametrize("path", UPLOAD_PATHS)
@pytest.mark.parametrize("declared", ["honest-type", "claims-png"])
@pytest.mark.parametrize("upload", ["raw", "multipart"])
@pytest.mark.parametrize("name", sorted(NOT_IMAGES))
def test_non_image_upload_is_415(
    client: httpx.Client, name: str, upload: str, declared: str, path: str
) -> None:
    content, honest_type, filename = NOT_IMAGES[name]
    content_type = honest_type if declared == "honest-type" else "image/png"
    if upload == "raw":
        response = post_raw(client, content, content_type, path=path)
    else:
        response = client.post(
            path,
            content=multipart((b"file", filename, content_type.encode(), content)),
            headers={"Content-Type": MULTIPART_TYPE},
        )

    assert_json_error(response, 415, "unsupported_media_type")
    assert "<" not in response.text  # The markup is never echoed back.


# Damaged images.


def _crc_broken(png: bytes) -> bytes:
    data = bytearray(png)
    data[-20] ^= 0x55  # Inside the last IDAT chunk's data: its CRC no longer matches.
    return bytes(data)


@pytest.mark.parametrize("path", UPLOAD_PATHS)
@pytest.mark.parametrize(
    "damage",
    ["png-truncated-in-header", "png-truncated-in-pixels", "png-crc-broken", "jpeg-truncated"],
)
def test_damaged_image_is_400(
    client: httpx.Client, digits: dict[int, bytes], damage: str, path: str
) -> None:
    png = digits[3]
    jpeg = encoded(digit_image(digits, 3).resize((112, 112)), "JPEG")
    data = {
        "png-truncated-in-header": png[:20],
        "png-truncated-in-pixels": png[: len(png) - 30],
        "png-crc-broken": _crc_broken(png),
        "jpeg-truncated": jpeg[: len(jpeg) // 2],
    }[damage]

    response, seconds = timed(lambda: post_raw(client, data, path=path))

    assert_json_error(response, 400, "invalid_image")
    assert seconds < QUICK_SECONDS


# Odd but valid images.


@pytest.mark.parametrize("image_format", ["GIF", "PNG"], ids=["animated-gif", "apng"])
def test_animated_image_is_classified_by_its_first_frame(
    client: httpx.Client, digits: dict[int, bytes], image_format: str
) -> None:
    for first, second in ((2, 8), (8, 2)):
        frames = [digit_image(digits, first), digit_image(digits, second)]
        if image_format == "GIF":
            frames = [frame.convert("P") for frame in frames]
        data = encoded(frames[0], image_format, save_all=True, append_images=frames[1:])

        response = post_raw(client, data, f"image/{image_format.lower()}")

        assert response.status_code == 200, response.text
        assert response.json()["digit"] == first


def _degenerate_png(size: tuple[int, int], content: str) -> bytes:
    """A white PNG of ``size`` (width, height), blank or with a black line through the middle
    each way: a single pixel, or a thin streak no digit looks like."""
    pixels = np.full((size[1], size[0]), 255, dtype=np.uint8)
    if content == "ink":
        pixels[size[1] // 2, :] = 0
        pixels[:, size[0] // 2] = 0
    return encoded(Image.fromarray(pixels), "PNG")


@pytest.mark.parametrize("size", [(1, 1), (10_000, 10), (10, 10_000)], ids=str)
@pytest.mark.parametrize("content", ["blank", "ink"])
def test_degenerate_image_size_is_422(
    client: httpx.Client, size: tuple[int, int], content: str
) -> None:
    data = _degenerate_png(size, content)

    response, seconds = timed(lambda: post_raw(client, data))

    assert_json_error(response, 422, "no_digit_found")
    assert seconds < QUICK_SECONDS


@pytest.mark.parametrize("size", [(1, 1), (10_000, 10), (10, 10_000)], ids=str)
@pytest.mark.parametrize("content", ["blank", "ink"])
def test_degenerate_image_size_is_answered_by_predict_number_without_5xx(
    client: httpx.Client, size: tuple[int, int], content: str
) -> None:
    data = _degenerate_png(size, content)

    response, seconds = timed(lambda: post_raw(client, data, path="/predict/number"))

    # A vertical streak may be read as a 1; anything else is no digit.
    if response.status_code != 200:
        assert_json_error(response, 422, "no_digit_found")
    assert seconds < QUICK_SECONDS


@pytest.mark.parametrize("density", [0.002, 0.02, 0.2])
def test_number_image_of_thousands_of_specks_is_answered_in_bounded_time(
    client: httpx.Client, density: float
) -> None:
    # 1,200 x 900 pixels sown with black specks: from a few thousand to hundreds of thousands
    # of components. The segmentation considers a bounded number of them.
    generator = np.random.default_rng(16)
    pixels = np.full((900, 1200), 255, dtype=np.uint8)
    pixels[generator.random(pixels.shape) < density] = 0
    data = encoded(Image.fromarray(pixels), "PNG")

    response, seconds = timed(lambda: post_raw(client, data, path="/predict/number"))

    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.json()["error"]["code"] in {"no_digit_found", "too_many_digits"}
    else:
        digits = sum(len(line["digits"]) for line in response.json()["lines"])
        assert digits <= 32
    assert seconds < BOUNDED_SECONDS


def test_number_image_of_hundreds_of_marks_is_too_many_digits(client: httpx.Client) -> None:
    # A grid of 25 x 15 crosses, each the size of a digit: far more than MAX_DIGITS_PER_IMAGE.
    pixels = np.full((1000, 1600), 255, dtype=np.uint8)
    for row in range(15):
        for column in range(25):
            top, left = 20 + 64 * row, 20 + 64 * column
            pixels[top : top + 48, left + 21 : left + 27] = 0
            pixels[top + 21 : top + 27, left : left + 48] = 0
    data = encoded(Image.fromarray(pixels), "PNG")

    response, seconds = timed(lambda: post_raw(client, data, path="/predict/number"))

    assert_json_error(response, 422, "too_many_digits")
    assert seconds < BOUNDED_SECONDS


@pytest.mark.parametrize("variant", ["cmyk-jpeg", "cmyk-tiff", "16-bit-png", "16-bit-png-dark-ink"])
def test_unusual_colour_format_is_classified(
    client: httpx.Client, digits: dict[int, bytes], variant: str
) -> None:
    digit = digit_image(digits, 5).resize((112, 112), Image.Resampling.BILINEAR)
    if variant == "cmyk-jpeg":
        data = encoded(digit.convert("CMYK"), "JPEG", quality=95)
    elif variant == "cmyk-tiff":
        data = encoded(digit.convert("CMYK"), "TIFF")
    else:
        wide = np.asarray(digit, dtype=np.uint16) * 257
        if variant == "16-bit-png-dark-ink":
            wide = 65_535 - wide
        data = encoded(Image.fromarray(wide), "PNG")
    assert Image.open(io.BytesIO(data)).mode in ("CMYK", "I;16")

    response = post_raw(client, data, "application/octet-stream")

    assert response.status_code == 200, response.text
    assert response.json()["digit"] == 5


# File names and field names.

HOSTILE_FILENAMES: Final = {
    "path-traversal": b"../../../../etc/passwd",
    "windows-traversal": b"..\\..\\..\\windows\\win.ini",
    "absolute-path": b"/etc/shadow",
    "nul-byte": b"digit.png\x00.exe",
    "terminal-escapes": b"\x1b[31mred\x1b[0m\x07.png",
    "header-injection": b"d.png\r\nX-Injected: yes",
    "right-to-left-override": "\u202egnp.exe".encode(),
    "4000-characters": b"a" * 4000 + b".png",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILENAMES))
def test_hostile_filename_is_ignored_and_never_echoed(
    client: httpx.Client, digits: dict[int, bytes], name: str
) -> None:
    filename = HOSTILE_FILENAMES[name]
    good = multipart((b"file", filename, b"image/png", digits[6]))
    bad = multipart((b"file", filename, b"text/plain", b"not an image"))

    answered = client.post("/predict", content=good, headers={"Content-Type": MULTIPART_TYPE})
    refused = client.post("/predict", content=bad, headers={"Content-Type": MULTIPART_TYPE})

    # A header-injection name breaks its part's header block; the service then either reads the
    # file or refuses the malformed part, and still never echoes the name.
    if name == "header-injection":
        assert answered.status_code in (200, 400)
    else:
        assert answered.status_code == 200, answered.text
        assert answered.json()["digit"] == 6
    assert refused.status_code in (400, 415)
    for response in (answered, refused):
        assert "x-injected" not in response.headers
        text = response.content
        for fragment in (
            b"passwd",
            b"win.ini",
            b"shadow",
            b".exe",
            b"\x1b",
            b"X-Injected",
            b"aaaa",
        ):
            assert fragment not in text


@pytest.mark.parametrize("field", [b"image", b"File", b"files", b"file[]", b""])
def test_wrong_field_name_is_422(
    client: httpx.Client, digits: dict[int, bytes], field: bytes
) -> None:
    body = multipart((field, b"digit.png", b"image/png", digits[1]))

    response = client.post("/predict", content=body, headers={"Content-Type": MULTIPART_TYPE})

    if field == b"":
        # An empty field name is not a valid form part at all.
        assert response.status_code in (400, 422)
        assert response.json()["error"]["code"] in ("invalid_multipart", "missing_file")
    else:
        message = assert_json_error(response, 422, "missing_file")
        assert "'file'" in message


def test_file_field_sent_as_text_is_422(client: httpx.Client) -> None:
    body = multipart((b"file", None, None, b"iVBORw0KGgo="))

    response = client.post("/predict", content=body, headers={"Content-Type": MULTIPART_TYPE})

    assert_json_error(response, 422, "missing_file")


# Too many files.


def test_batch_with_more_files_than_allowed_is_413(
    client: httpx.Client, digits: dict[int, bytes]
) -> None:
    body = multipart(*((b"file", b"d%d.png" % n, b"image/png", digits[n % 10]) for n in range(65)))

    response, seconds = timed(
        lambda: client.post(
            "/predict/batch", content=body, headers={"Content-Type": MULTIPART_TYPE}
        )
    )

    assert_json_error(response, 413, "too_many_files")
    assert seconds < QUICK_SECONDS


def test_single_predict_with_two_files_is_413(
    client: httpx.Client, digits: dict[int, bytes]
) -> None:
    body = multipart(
        (b"file", b"a.png", b"image/png", digits[1]), (b"file", b"b.png", b"image/png", digits[2])
    )

    response = client.post("/predict", content=body, headers={"Content-Type": MULTIPART_TYPE})

    assert_json_error(response, 413, "too_many_files")


# The Open Inference Protocol (POST /v2/models/mnist_dense/infer).

INFER_PATH: Final = "/v2/models/mnist_dense/infer"
HEADER_LENGTH: Final = "Inference-Header-Content-Length"


def assert_protocol_error(response: httpx.Response, status_code: int) -> str:
    """The status and the protocol's error body, ``{"error": "<message>"}``, with the request
    ID in the header and nothing of the server's internals; returns the message."""
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    assert "Traceback" not in response.text
    assert "/work/" not in response.text and ".py" not in response.text
    message: str = body["error"]
    return message


def post_infer(
    client: httpx.Client, header: object, binary: bytes = b"", header_length: int | None = None
) -> httpx.Response:
    """POST an inference request: the JSON ``header``, then ``binary`` (with the header's length
    in Inference-Header-Content-Length when there is binary data or one is given)."""
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    headers = {}
    if binary or header_length is not None:
        headers[HEADER_LENGTH] = str(len(encoded) if header_length is None else header_length)
    return client.post(INFER_PATH, content=encoded + binary, headers=headers)


def image_tensor(*files: bytes, shape: list[int] | None = None) -> tuple[dict[str, object], bytes]:
    """A binary BYTES ``image`` request of ``files`` (length-prefixed), shape ``[len(files)]``."""
    raw = b"".join(struct.pack("<I", len(data)) + data for data in files)
    header = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": shape or [len(files)],
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    return header, raw


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_infer_decompression_bomb_is_refused_fast_with_bounded_memory(
    hostile_server: ServerProcess,
    client: httpx.Client,
    peak_memory_growth_kib: MeasureMemory,
    name: str,
) -> None:
    data, _, _ = BOMBS[name]
    header, raw = image_tensor(data)
    # The same status as POST /predict gives the file.
    status_code = post_raw(client, data).status_code
    assert status_code in (400, 413)
    answers: list[tuple[httpx.Response, float]] = []

    growth = peak_memory_growth_kib(
        hostile_server, lambda: answers.append(timed(lambda: post_infer(client, header, raw)))
    )

    ((response, seconds),) = answers
    assert "element 0" in assert_protocol_error(response, status_code)
    assert seconds < QUICK_SECONDS
    assert growth < HEADER_REFUSAL_MEMORY_KIB


@pytest.mark.parametrize(
    ("shape", "binary"),
    [
        pytest.param([10**12, 784], bytes(3136), id="fp32-trillion-rows"),
        pytest.param([2**62, 2**62], bytes(3136), id="fp32-shape-product-overflows-int64"),
        pytest.param([1, 784] + [1] * 10_000, bytes(3136), id="fp32-10000-dimensions"),
    ],
)
def test_infer_shape_far_beyond_the_data_is_400_without_allocating(
    hostile_server: ServerProcess,
    client: httpx.Client,
    peak_memory_growth_kib: MeasureMemory,
    shape: list[int],
    binary: bytes,
) -> None:
    header = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": shape,
                "parameters": {"binary_data_size": len(binary)},
            }
        ]
    }
    answers: list[tuple[httpx.Response, float]] = []

    growth = peak_memory_growth_kib(
        hostile_server, lambda: answers.append(timed(lambda: post_infer(client, header, binary)))
    )

    ((response, seconds),) = answers
    assert_protocol_error(response, 400)
    assert seconds < QUICK_SECONDS
    assert growth < HEADER_REFUSAL_MEMORY_KIB


def test_infer_image_element_declaring_4_gib_is_400(client: httpx.Client) -> None:
    raw = struct.pack("<I", 2**32 - 1) + b"\x89PNG"
    header = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [1],
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }

    response, seconds = timed(lambda: post_infer(client, header, raw))

    assert "more than follow" in assert_protocol_error(response, 400)
    assert seconds < QUICK_SECONDS


def test_infer_100000_empty_image_elements_are_413_before_decoding(client: httpx.Client) -> None:
    header, raw = image_tensor(*([b""] * 100_000))

    response, seconds = timed(lambda: post_infer(client, header, raw))

    assert "at most 64" in assert_protocol_error(response, 413)
    assert seconds < QUICK_SECONDS


def test_infer_65_images_are_413(client: httpx.Client, digits: dict[int, bytes]) -> None:
    header, raw = image_tensor(*(digits[n % 10] for n in range(65)))

    response, seconds = timed(lambda: post_infer(client, header, raw))

    assert_protocol_error(response, 413)
    assert seconds < QUICK_SECONDS


def test_infer_64_images_with_one_bad_one_names_it(
    client: httpx.Client, digits: dict[int, bytes]
) -> None:
    files = [digits[n % 10] for n in range(64)]
    files[37] = b"GIF89a" + b"\x00" * 40
    header, raw = image_tensor(*files)

    response, seconds = timed(lambda: post_infer(client, header, raw))

    assert "element 37" in assert_protocol_error(response, 400)
    assert seconds < BOUNDED_SECONDS


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="deep-nesting"),
        pytest.param(b'{"inputs": [{"name": "\xff\xfe"}]}', id="invalid-utf8"),
        pytest.param(b'{"id": "' + b"a" * 900_000 + b'"}', id="900kb-id"),
        pytest.param(
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input",
                            "datatype": "FP32",
                            "shape": [1, 784],
                            "data": [[[0.0] * 784]] * 1,
                        }
                    ]
                }
            ).encode()[:-3],
            id="truncated",
        ),
        pytest.param(
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input",
                            "datatype": "FP32",
                            "shape": [1, 784],
                            "data": [{"x": 1}] * 784,
                        }
                    ]
                }
            ).encode(),
            id="objects-as-numbers",
        ),
    ],
)
def test_infer_malformed_json_is_400(client: httpx.Client, body: bytes) -> None:
    assert len(body) < LIMIT_BYTES

    response, seconds = timed(lambda: client.post(INFER_PATH, content=body))

    assert_protocol_error(response, 400)
    assert seconds < QUICK_SECONDS


def test_infer_a_megabyte_of_json_numbers_is_answered_with_bounded_memory(
    hostile_server: ServerProcess, client: httpx.Client, peak_memory_growth_kib: MeasureMemory
) -> None:
    # 600 x 784 zeros written as "0,": 470,400 JSON numbers in 0.94 MB, under the 1 MiB limit.
    rows = 600
    data = b"[" + b",".join([b"0"] * (rows * 784)) + b"]"
    head = b'{"inputs":[{"name":"input","datatype":"FP32","shape":[%d,784],"data":' % rows
    body = head + data + b'}],"outputs":[{"name":"digit"}]}'
    assert len(body) < LIMIT_BYTES
    answers: list[tuple[httpx.Response, float]] = []

    growth = peak_memory_growth_kib(
        hostile_server,
        lambda: answers.append(timed(lambda: client.post(INFER_PATH, content=body))),
    )

    ((response, seconds),) = answers
    assert response.status_code == 200, response.text
    assert len(response.json()["outputs"][0]["data"]) == rows
    assert seconds < BOUNDED_SECONDS
    assert growth < 128 * 1024


def test_infer_header_length_beyond_the_body_is_400(client: httpx.Client) -> None:
    response = post_infer(client, {"inputs": []}, header_length=10**15)

    assert HEADER_LENGTH in assert_protocol_error(response, 400)


def test_infer_body_over_the_limit_is_413(
    hostile_server: ServerProcess, client: httpx.Client
) -> None:
    header, raw = image_tensor(bytes(LIMIT_BYTES))

    def chunks() -> Iterator[bytes]:
        body = json.dumps(header).encode() + raw
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    declared = post_infer(client, header, raw)
    chunked = client.post(
        INFER_PATH, content=chunks(), headers={HEADER_LENGTH: str(len(json.dumps(header)))}
    )

    # With a declared Content-Length over the limit, the body guard answers before any route
    # (in the service's error shape); a chunked body is refused inside the route.
    assert declared.status_code == 413
    assert "larger than" in assert_protocol_error(chunked, 413)


# Afterwards.


def test_service_still_serves_after_the_hostile_inputs(
    hostile_server: ServerProcess, client: httpx.Client, digits: dict[int, bytes]
) -> None:
    response = post_raw(client, digits[9])

    assert response.status_code == 200
    assert response.json()["digit"] == 9
    log = hostile_server.log_tail(lines=10_000)
    assert "Traceback" not in log
    assert " 500 " not in log
