"""The real-world development set: real people's digit photos and drawings, for measuring only.

The set (``../shared/data/realworld-dev``, or ``$REALWORLD_DEV``) holds single-digit images
from public repositories, each labelled by eye in ``labels.tsv`` with its source and style. It
is never trained on: training only measures the finished model on it (through the service's
own :func:`app.imaging.pipeline.prepare_upload`), and ``python -m bench.accuracy`` measures the
running service on it over HTTP.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

REALWORLD_ENVIRONMENT_VARIABLE = "REALWORLD_DEV"
DEFAULT_REALWORLD_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEFAULT_REALWORLD_DIR = DEFAULT_REALWORLD_DIR / "realworld-dev"
LABELS_FILE = "labels.tsv"

STYLE_GROUPS = (
    ("tablet", "tablet note-app screenshot"),
    ("28x28", "tiny 28x28 image"),
    ("phone photo", "phone photo"),
    ("photo", "photo-derived crop"),
    ("segmented", "photo-derived crop"),
    ("binarised", "photo-derived crop"),
    ("screenshot", "tablet note-app screenshot"),
)
"""Words in a ``style`` entry and the style group they put the image in (first match wins);
other images are canvas exports, small (under 150 pixels) or not."""


@dataclass(frozen=True)
class RealDigit:
    """One labelled image of the development set."""

    file: str
    digit: int
    repo: str
    style: str

    @property
    def source(self) -> str:
        """The repository the image comes from (OWNER/NAME)."""
        return self.repo


def realworld_dir() -> Path:
    """Where the development set is: ``$REALWORLD_DEV`` or ``../shared/data/realworld-dev``."""
    configured = os.environ.get(REALWORLD_ENVIRONMENT_VARIABLE, "").strip()
    return Path(configured) if configured else DEFAULT_REALWORLD_DIR


def read_labels(folder: Path) -> list[dict[str, str]]:
    """The rows of ``folder/labels.tsv``: ``file``, ``label``, ``category``, ``repo``, ``path``,
    ``style``."""
    with (folder / LABELS_FILE).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def read_digits(folder: Path) -> list[RealDigit]:
    """The single-digit images listed in ``folder/labels.tsv`` (not-digits are left out)."""
    return [
        RealDigit(row["file"], int(row["label"]), row["repo"], row["style"])
        for row in read_labels(folder)
        if row["category"] == "digit"
    ]


@dataclass(frozen=True)
class RealNotDigit:
    """One image of the development set that is not a single digit."""

    file: str
    category: str
    """``letter``, ``symbol``, ``doodle``, ``photo``, ``text``, ``blank`` or ``several_digits``."""
    label: str
    """``none``, or for ``several_digits`` the number as written."""


def read_not_digits(folder: Path) -> list[RealNotDigit]:
    """The images listed in ``folder/labels.tsv`` that are not a single digit."""
    return [
        RealNotDigit(row["file"], row["category"], row["label"])
        for row in read_labels(folder)
        if row["category"] != "digit"
    ]


def style_group(digit: RealDigit, size: tuple[int, int] | None = None) -> str:
    """The style group of an image, as the development set's README counts them."""
    style = digit.style.lower()
    for word, group in STYLE_GROUPS:
        if word in style:
            return group
    if size is not None and max(size) < 150:
        return "small canvas export (29-150 px)"
    return "canvas/paint export (>=150 px)"


def prepare_all(
    folder: Path, digits: Sequence[RealDigit]
) -> tuple[NDArray[np.uint8], list[str | None]]:
    """Each image through the service's preprocessing: the 28 x 28 digits (zeros where refused)
    and, per image, the error code of a refusal or None."""
    from app.errors import InputError
    from app.imaging.pipeline import prepare_upload
    from app.imaging.structure import DecodeLimits

    limits = DecodeLimits(max_pixels=40_000_000)
    prepared = np.zeros((len(digits), 28, 28), dtype=np.uint8)
    refusals: list[str | None] = []
    for index, digit in enumerate(digits):
        try:
            prepared[index] = prepare_upload((folder / digit.file).read_bytes(), limits)
            refusals.append(None)
        except InputError as error:
            refusals.append(error.code)
    return prepared, refusals


def image_size(folder: Path, digit: RealDigit) -> tuple[int, int] | None:
    """The image's width and height, or None when Pillow cannot read its header."""
    from PIL import Image

    try:
        with Image.open(folder / digit.file) as image:
            return image.size
    except OSError:
        return None


def summarise(
    folder: Path, digits: Sequence[RealDigit], answers: Sequence[int | str]
) -> dict[str, Any]:
    """Accuracy over all, per style group, per style (as labels.tsv words it) and per source,
    from the answers (a digit, or an error code for a refused image)."""
    groups: dict[str, list[bool]] = defaultdict(list)
    styles: dict[str, list[bool]] = defaultdict(list)
    sources: dict[str, list[bool]] = defaultdict(list)
    for digit, answer in zip(digits, answers, strict=True):
        correct = answer == digit.digit
        groups[style_group(digit, image_size(folder, digit))].append(correct)
        styles[digit.style].append(correct)
        sources[digit.source].append(correct)
    right = sum(answer == digit.digit for digit, answer in zip(digits, answers, strict=True))

    def table(results: dict[str, list[bool]]) -> dict[str, dict[str, int]]:
        return {
            key: {"right": sum(values), "total": len(values)}
            for key, values in sorted(results.items())
        }

    return {
        "images": len(digits),
        "right": right,
        "accuracy": right / len(digits) if digits else 0.0,
        "by_group": table(groups),
        "by_style": table(styles),
        "by_source": table(sources),
    }


def evaluate_model_on_realworld(model: Any, folder: Path) -> dict[str, Any] | None:
    """Measure ``model`` (Keras) on the development set in ``folder`` through the service's
    preprocessing; None when the set is not there."""
    from app.model_contract import to_model_input

    if not (folder / LABELS_FILE).is_file():
        return None
    digits = read_digits(folder)
    prepared, refusals = prepare_all(folder, digits)
    probabilities = model.predict(to_model_input(prepared), batch_size=1024, verbose=0)
    answers: list[int | str] = [
        refusal if refusal is not None else int(np.argmax(row))
        for refusal, row in zip(refusals, probabilities, strict=True)
    ]
    return summarise(folder, digits, answers)
