"""Schema-driven fuzzing: schemathesis generates requests from the app's own OpenAPI document,
valid and invalid, for every operation, and checks each answer: never a 5xx, and every status,
content type, header and body is the one the document declares. Once as configured by
default, once with an API key set (the prediction endpoints then answer 401 without it)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from app.core.config import Settings
from app.main import create_app

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "fuzzing-api-key-0123456789"

# Deterministic (a fixed sequence of examples) and without Hypothesis's example database, so a
# run in CI repeats exactly and leaves nothing behind; schemathesis under pytest writes no
# .schemathesis/ folder either.
FUZZ_SETTINGS = settings(
    derandomize=True,
    max_examples=100,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

default_app = create_app(Settings(MODEL_DIR=REPO_ROOT / "models", _env_file=None))  # type: ignore[call-arg]
default_schema = schemathesis.openapi.from_asgi("/openapi.json", default_app)

keyed_app = create_app(
    Settings(MODEL_DIR=REPO_ROOT / "models", API_KEY=API_KEY, _env_file=None)  # type: ignore[call-arg]
)
keyed_schema = schemathesis.openapi.from_asgi("/openapi.json", keyed_app)


def _excluded_checks(case: schemathesis.Case) -> list[object]:
    # positive_data_acceptance expects every schema-valid request to succeed, but a request
    # body that is valid "binary" by the schema is random bytes, which is not an image: the
    # image endpoints rightly answer 400/415/422 to it.
    excluded: list[object] = [positive_data_acceptance]
    if case.operation.path == "/predict/batch":
        # A batch answers 200 with an error in place for each file it cannot read, and the
        # "schema violations" generated for its multipart files (a boolean instead of a binary
        # string) are the same bytes on the wire, so negative_data_rejection cannot apply.
        excluded.append(negative_data_rejection)
    return excluded


@default_schema.parametrize()
@FUZZ_SETTINGS
def test_api_answers_generated_requests_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate(excluded_checks=_excluded_checks(case))


@keyed_schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=25)
def test_api_with_key_answers_generated_requests_as_documented(case: schemathesis.Case) -> None:
    # Generated keys are random, so the prediction endpoints answer 401 (declared in the
    # document when a key is set); the open endpoints answer as without a key.
    case.call_and_validate(excluded_checks=_excluded_checks(case))
