"""How the running service serves the page (no browser needed): the page at ``/``, its own
stylesheet and script under ``/static/``, nothing else from disk, and headers that keep the page
self-contained."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def client(service_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_url, timeout=10.0) as http_client:
        yield http_client


def test_get_root_serves_the_page_with_a_strict_content_security_policy(
    client: httpx.Client,
) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<canvas" in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_get_root_references_only_files_the_service_serves(client: httpx.Client) -> None:
    page_html = client.get("/").text

    references = re.findall(r'(?:src|href)="([^"]+)"', page_html)
    local = [reference for reference in references if reference.startswith("/static/")]
    assert sorted(local) == ["/static/app.css", "/static/app.js"]
    # Nothing is loaded from another host: the page works offline.
    assert not [reference for reference in references if "//" in reference]
    for reference in local:
        assert client.get(reference).status_code == 200


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
    ],
)
def test_get_static_asset_has_its_media_type(
    client: httpx.Client, path: str, content_type: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.js",
        "/static/..%2Fapi%2Froutes%2Fpage.py",
        "/static/%2E%2E%2F%2E%2E%2Fmain.py",
        "/static/index.html",
        "/static/",
    ],
)
def test_get_static_outside_the_page_files_is_not_found(client: httpx.Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert set(response.json()["error"]) >= {"code", "message"}
