"""The service's settings, read once from the environment (and an optional ``.env`` file).

Every setting is an UPPER_CASE environment variable of the same name. Bad values are refused
when the settings are built, that is at start-up, never at the first request::

    MAX_UPLOAD_BYTES=1048576 WEB_CONCURRENCY=2 mnist-serve
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB: Final = 1024 * 1024

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]


class Settings(BaseSettings):
    """Configuration of the digit service; each field is the environment variable of its name."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=True,
        extra="ignore",
        frozen=True,
    )

    MODEL_DIR: Path = Field(
        default=Path("models"),
        description="Folder holding mnist_dense.keras and metrics.json.",
    )
    MAX_UPLOAD_BYTES: Annotated[int, Field(ge=1024, le=1024 * MIB)] = Field(
        default=5 * MIB,
        description="Largest request body accepted (413 above it), for one image or a batch.",
    )
    MAX_IMAGE_PIXELS: Annotated[int, Field(ge=28 * 28, le=1_000_000_000)] = Field(
        default=40_000_000,
        description="Largest image, in pixels (width x height), that is decoded (413 above it).",
    )
    MAX_BATCH_FILES: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=64,
        description="Most `file` parts accepted by POST /predict/batch (413 above it).",
    )
    INLINE_MAX_PIXELS: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=200 * 200,
        description=(
            "PNG uploads of at most this many pixels (about 1 ms of work) are classified on the "
            "event loop; everything else runs in the threadpool. 0 sends all to the threadpool."
        ),
    )
    HOST: str = Field(default="127.0.0.1", min_length=1, description="Interface to listen on.")
    PORT: Annotated[int, Field(ge=1, le=65535)] = Field(default=8000, description="TCP port.")
    WEB_CONCURRENCY: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1,
        description="Worker processes; each holds its own copy of the model (about 60 MB RSS).",
    )
    LOG_LEVEL: LogLevel = Field(default="INFO", description="Level of the service's log lines.")
    LOG_ACCESS: bool = Field(default=False, description="Log one line per request.")

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper_case_log_level(cls, value: object) -> object:
        """Accept ``info`` as well as ``INFO``."""
        return value.upper() if isinstance(value, str) else value

    @field_validator("MODEL_DIR")
    @classmethod
    def _model_dir_not_a_file(cls, value: Path) -> Path:
        """Refuse a path that names a file: MODEL_DIR is the folder holding the model."""
        if value.is_file():
            raise ValueError(f"MODEL_DIR must be a folder, and {value.name!r} is a file")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings()
