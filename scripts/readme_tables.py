"""Regenerate the README's tables from their sources, so the README stays true.

- The results table, between ``<!-- results:start -->`` and ``<!-- results:end -->``, comes from
  ``models/metrics.json`` (written by training).
- The configuration table, between ``<!-- settings:start -->`` and ``<!-- settings:end -->``,
  comes from the service's settings class, ``app.core.config.Settings``.

Run ``.venv/bin/python scripts/readme_tables.py`` after training or after changing a setting;
``--check`` exits 1 instead of writing when the README is out of date (tests/test_packaging.py
checks the same thing).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
README_PATH = REPO_ROOT / "README.md"
METRICS_PATH = REPO_ROOT / "models" / "metrics.json"
MIB = 1024 * 1024

REFERENCE_ROW = (
    "| Reference: the seed project's dense network | 10,000 | 97.56 % | 97.57 % | 97.54 % | — |"
)
"""The scores the seed project reported for the same architecture (our baseline)."""


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.2f} %"


def render_results(metrics: dict[str, Any]) -> str:
    """The Markdown results table and a line on what produced it, from metrics.json's content."""
    test = metrics["test"]
    model = metrics["model"]
    training = metrics["training"]
    row = (
        f"| This model: `models/{model['file']}` | {test['size']:,} | {_percent(test['accuracy'])}"
        f" | {_percent(test['precision_macro'])} | {_percent(test['recall_macro'])}"
        f" | {_percent(test['f1_macro'])} |"
    )
    return "\n".join(
        [
            "| Model | Test digits | Accuracy | Macro precision | Macro recall | Macro F1 |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            REFERENCE_ROW,
            row,
            "",
            f"Scores on the full MNIST test split. Model SHA-256 `{model['sha256'][:12]}…`, "
            f"{model['parameters']:,} parameters; training profile `{training['profile']}`, "
            f"{training['epochs']} epochs, seed {training['seed']}, "
            f"{training['seconds']:.0f} s on this project's 2-core machine. "
            "Per-class scores and the confusion matrix: `models/metrics.json`, "
            "`models/MODEL_CARD.md`, `GET /metrics`.",
        ]
    )


def _format_default(name: str, value: object) -> str:
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, Path):
        text = value.as_posix()
    elif value is None or value == []:
        return "unset"
    else:
        text = str(value)
    if name.endswith("_BYTES") and isinstance(value, int) and value % MIB == 0:
        return f"`{text}` ({value // MIB} MiB)"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000:
        return f"`{text}` ({value:,})"
    return f"`{text}`"


def render_settings() -> str:
    """The Markdown table of every setting: environment variable, default, meaning."""
    sys.path.insert(0, str(REPO_ROOT))
    from app.core.config import Settings

    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        if field.is_required():
            default = "required"
        elif field.default_factory is not None:
            default = _format_default(name, field.get_default(call_default_factory=True))
        else:
            default = _format_default(name, field.default)
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | {default} | {description} |")
    return "\n".join(lines)


def replace_section(text: str, section: str, body: str) -> str:
    """Put `body` between the section's start and end markers in `text`."""
    pattern = re.compile(
        rf"(<!-- {section}:start -->\n).*?(\n<!-- {section}:end -->)", flags=re.DOTALL
    )
    if not pattern.search(text):
        raise ValueError(f"README.md has no <!-- {section}:start/end --> markers")
    return pattern.sub(lambda match: match[1] + body + match[2], text)


def render_readme(text: str) -> str:
    """The README with both generated sections brought up to date."""
    metrics = json.loads(METRICS_PATH.read_text(encoding="utf-8"))
    text = replace_section(text, "results", render_results(metrics))
    return replace_section(text, "settings", render_settings())


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md, or with --check report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    arguments = parser.parse_args(argv)
    current = README_PATH.read_text(encoding="utf-8")
    updated = render_readme(current)
    if arguments.check:
        if updated != current:
            print("README.md is stale: run python scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    README_PATH.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
