"""Settings: defaults, environment variables, and bad values refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings


def _settings_from_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop any of the service's variables the test runner's environment happens to set."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)


def test_settings_defaults_match_the_documented_ones() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.MODEL_DIR == Path("models")
    assert settings.MAX_UPLOAD_BYTES == 5 * 1024 * 1024
    assert settings.MAX_BATCH_FILES == 64
    assert settings.MAX_IMAGE_PIXELS == 40_000_000
    assert (settings.HOST, settings.PORT, settings.WEB_CONCURRENCY) == ("127.0.0.1", 8000, 1)
    assert settings.LOG_ACCESS is False


def test_settings_read_upper_case_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_from_env(
        monkeypatch,
        MODEL_DIR="/srv/models",
        MAX_UPLOAD_BYTES="1048576",
        PORT="9000",
        WEB_CONCURRENCY="4",
        LOG_LEVEL="debug",
        LOG_ACCESS="true",
    )

    assert settings.MODEL_DIR == Path("/srv/models")
    assert settings.MAX_UPLOAD_BYTES == 1_048_576
    assert (settings.PORT, settings.WEB_CONCURRENCY) == (9000, 4)
    assert settings.LOG_LEVEL == "DEBUG"
    assert settings.LOG_ACCESS is True


def test_settings_read_a_dotenv_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MAX_BATCH_FILES=8\n", encoding="utf-8")

    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]

    assert settings.MAX_BATCH_FILES == 8


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_UPLOAD_BYTES", "0"),
        ("MAX_UPLOAD_BYTES", "-5"),
        ("MAX_UPLOAD_BYTES", "five megabytes"),
        ("MAX_IMAGE_PIXELS", "100"),
        ("MAX_BATCH_FILES", "0"),
        ("PORT", "70000"),
        ("WEB_CONCURRENCY", "0"),
        ("LOG_LEVEL", "chatty"),
        ("LOG_ACCESS", "sometimes"),
        ("INLINE_MAX_PIXELS", "-1"),
    ],
)
def test_settings_refuse_bad_value(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _settings_from_env(monkeypatch, **{name: value})

    assert name in str(raised.value)


def test_settings_refuse_model_dir_that_is_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model_file = tmp_path / "mnist_dense.keras"
    model_file.write_bytes(b"not a folder")

    with pytest.raises(ValidationError, match="MODEL_DIR must be a folder"):
        _settings_from_env(monkeypatch, MODEL_DIR=str(model_file))
