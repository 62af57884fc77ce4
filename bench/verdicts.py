"""How honest the service's answers are on the development set: calibration of its confidence
on real digits, and its not-a-digit verdict on real images that are not one digit.

Called by :mod:`bench.accuracy` with the service's detailed answers
(:class:`~bench.accuracy_report.DetailedAnswer`) for the development set's digits and
not-digits. It measures what the not-a-digit issue sets targets for:

* not-digits flagged (``is_digit`` false, or refused with a 4xx such as the 422 of a blank
  image): at least :data:`FLAGGED_TARGET`;
* correctly read digits flagged: at most :data:`FALSE_FLAG_TARGET`;
* AUROC of the confidence, correctly read digits against not-digits (a refused image counts
  as confidence 0): at least :data:`AUROC_TARGET`;
* expected calibration error (15 bins) on the digits: at most :data:`ECE_TARGET`;

and draws a reliability diagram of the digits' confidence beside the MNIST test split's
(from ``metrics.json``, measured by training).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from bench.accuracy_report import DetailedAnswer
from training.calibration import auroc, expected_calibration_error, reliability_table
from training.realworld import RealDigit, RealNotDigit

FLAGGED_TARGET: Final = 0.90
FALSE_FLAG_TARGET: Final = 0.03
AUROC_TARGET: Final = 0.97
ECE_TARGET: Final = 0.02
CONFIDENT: Final = 0.9
"""A confidence at or above this is a confident answer."""


@dataclass
class VerdictSummary:
    """The figures of the module docstring, and the not-digits' answers one by one."""

    digits: int
    correct: int
    correct_flagged: int
    ece: float
    reliability: list[dict[str, float | int]]
    not_digits: int
    flagged: int
    confident: int
    """Not-digits answered as a digit with confidence >= :data:`CONFIDENT`."""
    auroc: float
    by_category: dict[str, Counter[str]] = field(default_factory=dict)
    answers: list[tuple[RealNotDigit, DetailedAnswer]] = field(default_factory=list)

    def targets(self) -> list[tuple[str, str, bool]]:
        """(figure, target, met) for each target."""
        flagged = self.flagged / self.not_digits
        false_flags = self.correct_flagged / max(1, self.correct)
        return [
            (f"not-digits flagged {100 * flagged:.1f} %", "≥ 90 %", flagged >= FLAGGED_TARGET),
            (
                f"correctly read digits flagged {100 * false_flags:.1f} %",
                "≤ 3 %",
                false_flags <= FALSE_FLAG_TARGET,
            ),
            (f"AUROC {self.auroc:.3f}", "≥ 0.97", self.auroc >= AUROC_TARGET),
            (f"ECE on the digits {self.ece:.4f}", "≤ 0.02", self.ece <= ECE_TARGET),
        ]


def summarise_verdicts(
    digits: Sequence[RealDigit],
    digit_answers: Sequence[DetailedAnswer],
    not_digits: Sequence[RealNotDigit],
    not_digit_answers: Sequence[DetailedAnswer],
) -> VerdictSummary:
    """Score the verdicts and the calibration (see the module docstring)."""
    answered = [
        (digit.digit, answer)
        for digit, answer in zip(digits, digit_answers, strict=True)
        if answer.probabilities is not None
    ]
    probabilities = np.stack([answer.probabilities for _, answer in answered])  # type: ignore[misc]
    labels = np.array([label for label, _ in answered])
    correct_answers = [answer for label, answer in answered if answer.digit == label]
    by_category: dict[str, Counter[str]] = {}
    for item, answer in zip(not_digits, not_digit_answers, strict=True):
        counts = by_category.setdefault(item.category, Counter())
        counts["total"] += 1
        counts["flagged"] += answer.flagged
        counts["confident"] += not answer.flagged and answer.confidence >= CONFIDENT
    not_digit_confidence = np.array(
        [
            answer.confidence if isinstance(answer.digit, int) else 0.0
            for answer in not_digit_answers
        ]
    )
    return VerdictSummary(
        digits=len(digits),
        correct=len(correct_answers),
        correct_flagged=sum(answer.flagged for answer in correct_answers),
        ece=expected_calibration_error(probabilities, labels),
        reliability=reliability_table(probabilities, labels),
        not_digits=len(not_digits),
        flagged=sum(answer.flagged for answer in not_digit_answers),
        confident=sum(counts["confident"] for counts in by_category.values()),
        auroc=auroc(
            np.array([answer.confidence for answer in correct_answers]), not_digit_confidence
        ),
        by_category=by_category,
        answers=list(zip(not_digits, not_digit_answers, strict=True)),
    )


def describe(answer: DetailedAnswer) -> str:
    """An answer in a few words: the verdict, the digit and its confidence."""
    if not isinstance(answer.digit, int):
        return f"refused: {answer.digit}"
    verdict = "digit" if answer.is_digit else str(answer.reason)
    return f"{verdict} ({answer.digit} at {answer.confidence:.2f})"


def draw_reliability(
    development: Sequence[Mapping[str, Any]], test: Sequence[Mapping[str, Any]], path: Path
) -> None:
    """A reliability diagram (PNG): accuracy against confidence per bin, for the development
    set's digits and the MNIST test split, with the diagonal of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6.4, 4.8), dpi=100)
    axes.plot([0, 1], [0, 1], color="#999999", linestyle="--", label="perfectly calibrated")
    for rows, name, colour in (
        (test, "MNIST test split", "#1f77b4"),
        (development, "real digits of the development set", "#d62728"),
    ):
        if not rows:
            continue
        total = sum(int(row["count"]) for row in rows)
        axes.plot(
            [float(row["confidence"]) for row in rows],
            [float(row["accuracy"]) for row in rows],
            marker="o",
            color=colour,
            label=f"{name}, n={total}",
        )
        for row in rows:
            axes.scatter(
                float(row["confidence"]),
                float(row["accuracy"]),
                s=8 + 200 * int(row["count"]) / total,
                color=colour,
                alpha=0.3,
            )
    axes.set_xlabel("stated confidence (mean of the bin)")
    axes.set_ylabel("share right")
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_title("Reliability of the calibrated confidence (15 bins; dot area: answers)")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def report_lines(
    summary: VerdictSummary, stored: Mapping[str, Any], diagram_name: str
) -> list[str]:
    """The docs/accuracy.md section on calibration and the not-a-digit verdict; ``stored``
    is ``metrics.json``'s ``calibration`` and ``not_a_digit``."""
    calibration, not_a_digit = stored["calibration"], stored["not_a_digit"]
    lines = [
        "## Knowing when it is not sure",
        "",
        "Every answer carries `is_digit` (and a `reason` when false); the confidence is",
        f"calibrated by temperature scaling (T = {calibration['temperature']:g}, fitted on",
        "held-out validation digits). The not-a-digit threshold is "
        f"{not_a_digit['threshold']:.4f}, chosen so that",
        f"{100 * not_a_digit['false_rejection_rate']:.0f} % of correctly read validation digits "
        "fall below it. The model was trained to spread its belief evenly on synthetic",
        "non-digits (outlier exposure, `training/outliers.py`).",
        "",
        "| Figure | Target | |",
        "| --- | --- | --- |",
    ]
    for figure, target, met in summary.targets():
        lines.append(f"| {figure} | {target} | {'met' if met else 'MISSED'} |")
    lines += [
        f"| ECE on the MNIST test split {calibration['test_ece_after']:.4f} (metrics.json) "
        f"| ≤ 0.01 | {'met' if calibration['test_ece_after'] <= 0.01 else 'MISSED'} |",
        f"| not-digits answered a digit at ≥ {CONFIDENT} confidence: {summary.confident} | | |",
        f"| held-out synthetic not-digits flagged {100 * not_a_digit['outliers_flagged']:.1f} % "
        f"(AUROC {not_a_digit['auroc']:.3f}; metrics.json) | | |",
        "",
        f"![Reliability diagram]({diagram_name})",
        "",
        "### Not-digits by category",
        "",
        "| Category | Flagged | Images | Confident digit answers |",
        "| --- | ---: | ---: | ---: |",
    ]
    for category, counts in sorted(summary.by_category.items()):
        lines.append(
            f"| {category} | {counts['flagged']} | {counts['total']} | {counts['confident']} |"
        )
    lines += ["", "### Each not-digit", "", "| Image | Label | Answer |", "| --- | --- | --- |"]
    for item, answer in summary.answers:
        lines.append(f"| `{item.file}` | {item.label} | {describe(answer)} |")
    lines += ["", "### Reliability on the development set's digits", ""]
    lines += [
        "| Confidence | Answers | Mean confidence | Share right |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in summary.reliability:
        lines.append(
            f"| {row['low']:.2f}–{row['high']:.2f} | {row['count']} | "
            f"{float(row['confidence']):.3f} | {float(row['accuracy']):.3f} |"
        )
    lines.append("")
    return lines
