"""The page for people: ``GET /`` serves the drawing page, ``GET /static/<name>`` its CSS and
JavaScript, all from ``app/static`` (plain files, no build step, nothing fetched from elsewhere).

Only files that sit directly in ``app/static`` and have a known type are served, so a request
can never reach another file. Wire it into the app with ``app.include_router(page.router)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR: Final = Path(__file__).resolve().parents[2] / "static"
"""The folder holding ``index.html``, ``app.css`` and ``app.js``."""

PAGE_FILE: Final = "index.html"

_MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

# The page loads only its own files and talks only to this service; inline scripts are refused.
# Images may be data: URLs, because the 28 x 28 preview arrives as base64 PNG.
_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_HEADERS: Final = {
    # The browser revalidates on every visit, so a new release is picked up at once.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(tags=["page"])


def _static_asset_names() -> frozenset[str]:
    """Names of the files in ``STATIC_DIR`` that may be served."""
    return frozenset(
        path.name
        for path in STATIC_DIR.iterdir()
        if path.is_file() and path.suffix in _MEDIA_TYPES and path.name != PAGE_FILE
    )


STATIC_ASSETS: Final = _static_asset_names()
"""The files served under ``/static/``, fixed when the module is imported."""


@router.get("/", include_in_schema=False)
def read_page() -> FileResponse:
    """The drawing page."""
    return FileResponse(
        STATIC_DIR / PAGE_FILE,
        media_type=_MEDIA_TYPES[".html"],
        headers={**_HEADERS, "Content-Security-Policy": _CONTENT_SECURITY_POLICY},
    )


@router.get("/static/{asset_name}", include_in_schema=False)
def read_static_asset(asset_name: str) -> FileResponse:
    """One of the page's own files (stylesheet, script)."""
    if asset_name not in STATIC_ASSETS:
        raise HTTPException(status_code=404, detail=f"No static file named {asset_name!r}.")
    path = STATIC_DIR / asset_name
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)
