"""Fixtures for the real-browser tests: the real service in a subprocess and Debian's headless
Chromium driven by Playwright.

The service is started with ``mnist-serve`` (as ``./scripts/serve`` starts it) on a free port
of 127.0.0.1 and the model in ``MODEL_DIR`` (default: the repository's ``models/``). Set
``E2E_BASE_URL`` to test a service that is already running instead (a container, say). The
browser is ``/usr/bin/chromium`` (``CHROMIUM_PATH`` overrides it); Playwright never downloads
one. When the browser or the model is missing, the tests are skipped with the reason, except
under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from bench.servers import LOOPBACK, ServerProcess, ServerStartError, mnist_serve_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_PATH = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL_FILE = "mnist_dense.keras"
METRICS_FILE = "metrics.json"
SERVICE_START_TIMEOUT_SECONDS = 60.0
DESKTOP_CONTEXT: dict[str, Any] = {"viewport": {"width": 1280, "height": 860}}
PHONE_CONTEXT: dict[str, Any] = {
    "viewport": {"width": 375, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def running_in_ci() -> bool:
    """Whether the environment says this is a CI run (``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing_prerequisite(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it in CI, where nothing may be missing."""
    if running_in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _model_dir() -> Path:
    configured = Path(os.environ.get("MODEL_DIR", "models"))
    model_dir = configured if configured.is_absolute() else REPO_ROOT / configured
    for name in (MODEL_FILE, METRICS_FILE):
        if not (model_dir / name).is_file():
            missing_prerequisite(
                f"no trained model: {model_dir / name} is missing (train one, or point MODEL_DIR "
                "at a folder holding mnist_dense.keras and metrics.json)"
            )
    return model_dir


@pytest.fixture(scope="session")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the real service, started for this test session unless E2E_BASE_URL is set."""
    external = os.environ.get("E2E_BASE_URL", "").rstrip("/")
    if external:
        yield external
        return

    server = ServerProcess(
        mnist_serve_spec("mnist-serve for the browser tests", model_dir=_model_dir()),
        cwd=REPO_ROOT,
        log_path=tmp_path_factory.mktemp("service") / "mnist-serve.log",
    )
    with server:
        try:
            server.wait_ready(timeout_s=SERVICE_START_TIMEOUT_SECONDS)
        except ServerStartError as error:
            pytest.fail(f"the service did not start: {error}", pytrace=False)
        yield f"http://{LOOPBACK}:{server.port}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, launched once for the session."""
    if not CHROMIUM_PATH.is_file():
        missing_prerequisite(
            f"no browser at {CHROMIUM_PATH}: install it with `apt-get install -y chromium "
            "chromium-driver` (or set CHROMIUM_PATH)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_prerequisite("Playwright for Python is not installed (it is in the dev group)")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


class PageErrors:
    """Uncaught JavaScript errors seen on a page; a test ends by asserting there were none."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def record(self, error: Any) -> None:
        self.messages.append(str(error))


def open_page(browser: Any, url: str, errors: PageErrors, **context_options: Any) -> Any:
    """A fresh browser context and page at ``url``, with uncaught errors recorded."""
    browser_context = browser.new_context(**context_options)
    page = browser_context.new_page()
    page.on("pageerror", errors.record)
    page.goto(url)
    return page


@pytest.fixture
def page_errors() -> PageErrors:
    """Collects the uncaught JavaScript errors of the test's pages."""
    return PageErrors()


def _page_for(
    browser: Any, service_url: str, page_errors: PageErrors, context_options: dict[str, Any]
) -> Iterator[Any]:
    page = open_page(browser, f"{service_url}/", page_errors, **context_options)
    try:
        yield page
    finally:
        page.context.close()
    assert page_errors.messages == [], f"uncaught JavaScript errors: {page_errors.messages}"


@pytest.fixture
def desktop_page(browser: Any, service_url: str, page_errors: PageErrors) -> Iterator[Any]:
    """The page in a 1280 x 860 window."""
    yield from _page_for(browser, service_url, page_errors, DESKTOP_CONTEXT)


@pytest.fixture
def phone_page(browser: Any, service_url: str, page_errors: PageErrors) -> Iterator[Any]:
    """The page on a 375 px wide touch screen, as on a phone."""
    yield from _page_for(browser, service_url, page_errors, PHONE_CONTEXT)
