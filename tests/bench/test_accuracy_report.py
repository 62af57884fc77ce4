"""The development set's report: per group, style and source tables; a contact sheet of every
wrong answer with the upload, the digit the model saw, the answer and its confidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.accuracy_report import DetailedAnswer, draw_failures, render_report
from training.realworld import RealDigit, read_digits, summarise


def _write_set(folder: Path) -> list[RealDigit]:
    """A two-image development set: a 28 x 28 digit and a larger phone photo."""
    (folder / "digits").mkdir(parents=True)
    Image.new("L", (28, 28), 0).save(folder / "digits" / "a_1_label7.png")
    Image.new("RGB", (300, 200), (230, 230, 230)).save(folder / "digits" / "b_1_label3.jpg")
    (folder / "labels.tsv").write_text(
        "file\tlabel\tcategory\trepo\tpath\tstyle\n"
        "digits/a_1_label7.png\t7\tdigit\towner/a\t7.png\t28x28 PNG, white on black\n"
        "digits/b_1_label3.jpg\t3\tdigit\towner/b\t3.jpg\tphone photo, pen on paper\n"
        "not-digits/x.png\tnone\tletter\towner/c\tx.png\tletter\n",
        encoding="utf-8",
    )
    return read_digits(folder)


def test_read_digits_keeps_digits_only(tmp_path: Path) -> None:
    digits = _write_set(tmp_path)
    assert [(digit.file, digit.digit) for digit in digits] == [
        ("digits/a_1_label7.png", 7),
        ("digits/b_1_label3.jpg", 3),
    ]


def test_summarise_counts_by_group_style_and_source(tmp_path: Path) -> None:
    digits = _write_set(tmp_path)
    summary = summarise(tmp_path, digits, [7, "422 no_digit_found"])
    assert (summary["right"], summary["images"]) == (1, 2)
    assert summary["by_group"]["tiny 28x28 image"] == {"right": 1, "total": 1}
    assert summary["by_group"]["phone photo"] == {"right": 0, "total": 1}
    assert summary["by_source"]["owner/b"] == {"right": 0, "total": 1}
    assert set(summary["by_style"]) == {digit.style for digit in digits}


def test_report_and_contact_sheet_show_every_wrong_answer(tmp_path: Path) -> None:
    digits = _write_set(tmp_path)
    answers = [
        DetailedAnswer(1, 0.93, np.full((28, 28), 255, dtype=np.uint8)),
        DetailedAnswer("422 no_digit_found", 0.0, None),
    ]
    summary = summarise(tmp_path, digits, [answer.digit for answer in answers])
    failures = list(zip(digits, answers, strict=True))
    sheet = tmp_path / "failures.png"
    draw_failures(tmp_path, failures, sheet)
    with Image.open(sheet) as image:
        assert image.format == "PNG" and image.width > 300
    report = render_report(summary, failures, sheet.name, "in-process")
    assert "**0/2 right: 0.0 %.**" in report
    assert "failures.png" in report
    assert "| `digits/a_1_label7.png` | 28x28 PNG, white on black | 7 | 1 | 0.93 |" in report
