"""docs/accuracy.md and the contact sheet of wrong answers, for :mod:`bench.accuracy`.

People find failures by looking, so every wrong answer on the real-world development set is
drawn in one PNG: the upload as sent (thumbnail), the 28 x 28 digit the model saw (enlarged),
the true digit, the answer and its confidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageOps

from app.verdict import Reason
from training.realworld import RealDigit

TILE = 168
"""Side of each of the two pictures of a failure, in pixels."""

COLUMNS = 3
"""Failures per row of the contact sheet."""

CAPTION_HEIGHT = 44


@dataclass(frozen=True)
class DetailedAnswer:
    """The service's answer to one upload: the digit (or the error code of a refusal), its
    confidence, the 28 x 28 digit the model saw (None when refused), and, when answered, the
    ten probabilities and the verdict (``is_digit``, ``reason``)."""

    digit: int | str
    confidence: float
    seen: NDArray[np.uint8] | None
    probabilities: NDArray[np.float32] | None = None
    is_digit: bool = False
    reason: Reason | None = None

    @property
    def refused_as_blank(self) -> bool:
        """Whether the service refused the image as holding no digit (422)."""
        return isinstance(self.digit, str) and self.digit.startswith("422 ")

    @property
    def flagged(self) -> bool:
        """Whether the service said this is not a digit: ``is_digit`` false, or refused as
        holding no digit (any other refusal, such as 503 busy, is not an answer)."""
        if isinstance(self.digit, int):
            return not self.is_digit
        return self.refused_as_blank


def draw_failures(
    folder: Path, failures: Sequence[tuple[RealDigit, DetailedAnswer]], path: Path
) -> None:
    """Draw the contact sheet of ``failures`` into ``path`` (a PNG)."""
    rows = max(1, -(-len(failures) // COLUMNS))
    cell_width, cell_height = 2 * TILE + 12, TILE + CAPTION_HEIGHT
    sheet = Image.new("RGB", (COLUMNS * cell_width, rows * cell_height), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    if not failures:
        draw.text((10, 10), "No wrong answers.", fill=(0, 0, 0))
    for number, (digit, answer) in enumerate(failures):
        left = (number % COLUMNS) * cell_width + 4
        top = (number // COLUMNS) * cell_height + 4
        with Image.open(folder / digit.file) as opened:
            upload = ImageOps.exif_transpose(opened).convert("RGBA")
        backdrop = Image.new("RGBA", upload.size, (200, 200, 200, 255))
        upload = Image.alpha_composite(backdrop, upload).convert("RGB")
        upload.thumbnail((TILE, TILE))
        sheet.paste(upload, (left + (TILE - upload.width) // 2, top + (TILE - upload.height) // 2))
        seen = answer.seen if answer.seen is not None else np.zeros((28, 28), dtype=np.uint8)
        enlarged = Image.fromarray(seen).resize((TILE, TILE), Image.Resampling.NEAREST)
        sheet.paste(enlarged.convert("RGB"), (left + TILE + 4, top))
        verdict = (
            f"true {digit.digit} -> {answer.digit} ({answer.confidence:.2f})"
            if isinstance(answer.digit, int)
            else f"true {digit.digit} -> refused: {answer.digit}"
        )
        draw.text((left, top + TILE + 4), verdict, fill=(160, 0, 0))
        draw.text((left, top + TILE + 20), Path(digit.file).name[:46], fill=(0, 0, 0))
    sheet.save(path, format="PNG", optimize=True)


def _percent(right: int, total: int) -> str:
    return f"{100 * right / total:.1f} %" if total else "-"


def _table(title: str, rows: Mapping[str, Mapping[str, int]]) -> list[str]:
    lines = [f"| {title} | Right | Images | Accuracy |", "| --- | ---: | ---: | ---: |"]
    for key, counts in rows.items():
        lines.append(
            f"| {key} | {counts['right']} | {counts['total']} | "
            f"{_percent(counts['right'], counts['total'])} |"
        )
    return lines


def render_report(
    summary: Mapping[str, Any],
    failures: Sequence[tuple[RealDigit, DetailedAnswer]],
    sheet_name: str,
    mode_description: str,
) -> str:
    """docs/accuracy.md: the development set's figures per style group, style and source, and
    every wrong answer."""
    lines = [
        "# Accuracy on real people's digits",
        "",
        "Written by `python -m bench.accuracy` (do not edit by hand). The real-world development",
        "set (`../shared/data/realworld-dev`, see its README) holds photos, scans, canvas exports",
        "and tiny images of single digits that other people committed to public repositories,",
        f"labelled by eye. Each image was sent {mode_description}, as its original bytes.",
        "The set is for measuring only: it is never trained on. It guided the preprocessing, so",
        "its figure is optimistic for digits the project has not seen. Numbers of several digits",
        "read by `POST /predict/number` (generated numbers, touching pairs and the set's",
        "several-digit images) are measured by `python -m bench.numbers` into",
        "[numbers.md](numbers.md).",
        "",
        f"**{summary['right']}/{summary['images']} right: "
        f"{_percent(summary['right'], summary['images'])}.**",
        "",
    ]
    lines += _table("Style group", summary["by_group"])
    lines += ["", "## Wrong answers", ""]
    if failures:
        lines += [
            f"![Every wrong answer: the upload, the 28 x 28 it became, the answer]({sheet_name})",
            "",
            "| Image | Style | True | Answer | Confidence |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for digit, answer in failures:
            lines.append(
                f"| `{digit.file}` | {digit.style} | {digit.digit} | {answer.digit} | "
                f"{answer.confidence:.2f} |"
            )
    else:
        lines.append("None.")
    lines += ["", "## By style (as labels.tsv describes the images)", ""]
    lines += _table("Style", summary["by_style"])
    lines += ["", "## By source repository", ""]
    lines += _table("Repository", summary["by_source"])
    lines.append("")
    return "\n".join(lines)
