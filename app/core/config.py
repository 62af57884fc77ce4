"""The service's settings, read once from the environment (and an optional ``.env`` file).

Every setting is an UPPER_CASE environment variable of the same name. Bad values are refused
when the settings are built, that is at start-up, never at the first request::

    MAX_UPLOAD_BYTES=1048576 WEB_CONCURRENCY=2 mnist-serve
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB: Final = 1024 * 1024

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]

MIN_API_KEY_LENGTH: Final = 16
"""An API key shorter than this is refused: it could be guessed."""

# A browser origin: scheme, host and optional port, nothing after (no path, no trailing slash).
_ORIGIN_PATTERN: Final = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


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
    DIGIT_CONFIDENCE_THRESHOLD: Annotated[float | None, Field(ge=0.0, le=1.0)] = Field(
        default=None,
        description=(
            "Calibrated confidence below which an answer says `is_digit: false` (`not_a_digit` "
            "or `low_confidence`). Unset: the model's own threshold from metrics.json "
            "(`not_a_digit.threshold`), chosen on validation digits so that the training "
            "profile's share of correctly read ones (2 % for `full`) falls below it. Higher "
            "rejects more guesses and more real digits."
        ),
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
        default=32 * 32,
        description=(
            "PNG uploads of at most this many pixels (at most 64 KiB, structure verified, no "
            "compressed metadata) are classified on the event loop; everything else runs in the "
            "threadpool. Each holds the loop under 2 ms (`python -m bench.inline_budget`). 0 "
            "sends all to the threadpool."
        ),
    )
    HOST: str = Field(default="127.0.0.1", min_length=1, description="Interface to listen on.")
    PORT: Annotated[int, Field(ge=1, le=65535)] = Field(default=8000, description="TCP port.")
    WEB_CONCURRENCY: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1,
        description="Worker processes; each holds its own copy of the model (about 100 MB RSS).",
    )
    LOG_LEVEL: LogLevel = Field(default="INFO", description="Level of the service's log lines.")
    LOG_ACCESS: bool = Field(
        default=False,
        description=(
            "Log one line per request, with the client address taken from `X-Forwarded-For` "
            "when the request comes from uvicorn's `FORWARDED_ALLOW_IPS` (default 127.0.0.1)."
        ),
    )
    API_KEY: SecretStr | None = Field(
        default=None,
        description=(
            "When set, POST /predict, /predict/batch and the Open Inference Protocol's /infer "
            "need this key in the `X-API-Key` header "
            f"(401 otherwise); at least {MIN_API_KEY_LENGTH} characters. Health, metrics, model "
            "and the page stay open."
        ),
    )
    CORS_ALLOW_ORIGINS: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated browser origins allowed to call the API from another site "
            "(e.g. `https://a.example,https://b.example`, or `*`). Empty: CORS is off."
        ),
    )
    MAX_CONCURRENT_DECODES: Annotated[int, Field(ge=1, le=16)] = Field(
        default=1,
        description=(
            "Decoder processes per worker: uploads other than small PNGs are decoded there, at "
            "most this many at once, each under the DECODE_* limits."
        ),
    )
    DECODE_WAIT_SECONDS: Annotated[float, Field(ge=0, le=60)] = Field(
        default=2.0,
        description=(
            "How long an upload waits for a free decoder before it is answered 503 with "
            "`Retry-After`."
        ),
    )
    DECODE_MEMORY_MB: Annotated[int, Field(ge=64, le=16384)] = Field(
        default=256,
        description=(
            "Memory one decode may use beyond a decoder's resting size (RLIMIT_AS); more is "
            "answered 413 `image_too_complex`."
        ),
    )
    DECODE_CPU_SECONDS: Annotated[float, Field(ge=1, le=60)] = Field(
        default=2.0,
        description="CPU time one decode may use (RLIMIT_CPU); more is answered 413.",
    )
    DECODE_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0,
        description="Wall-clock time one decode may take; past it the decoder is killed (413).",
    )
    MAX_DIGITS_PER_IMAGE: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=32,
        description=(
            "Most digits POST /predict/number reads in one image; an image with more digit-sized "
            "marks is answered 422 `too_many_digits`."
        ),
    )
    MAX_IMAGE_SEGMENTS: Annotated[int, Field(ge=64, le=10_000_000)] = Field(
        default=50_000,
        description=(
            "Most markers, chunks, blocks, strips or tiles one image file may have (413 above)."
        ),
    )
    MAX_JPEG_SCANS: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=32,
        description="Most scans one JPEG may have; a progressive photo has about ten (413 above).",
    )
    MAX_METADATA_BYTES: Annotated[int, Field(ge=0, le=1024 * MIB)] = Field(
        default=MIB,
        description=(
            "Most bytes a PNG's compressed text and colour profiles may inflate to (413 above)."
        ),
    )
    REQUEST_BODY_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0,
        description="A request body must arrive in full within this time (408 otherwise).",
    )
    SHUTDOWN_TIMEOUT_SECONDS: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=20,
        description=(
            "On SIGTERM, in-flight requests get this long to finish before they are cancelled "
            "(keep it under the orchestrator's grace period, 30 s in Kubernetes)."
        ),
    )

    TELEMETRY_ENABLED: bool = Field(
        default=True,
        description=(
            "Prometheus telemetry at GET /monitoring/prometheus/metrics (request counts and "
            "latency, predictions by digit, stage timings, model info). With several workers, "
            "set PROMETHEUS_MULTIPROC_DIR to an empty folder (mnist-serve makes one)."
        ),
    )

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

    @field_validator("API_KEY")
    @classmethod
    def _api_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        """Refuse a short key; an empty one means no key."""
        if value is None or not value.get_secret_value():
            return None
        key = value.get_secret_value()
        if len(key) < MIN_API_KEY_LENGTH:
            raise ValueError(f"API_KEY must be at least {MIN_API_KEY_LENGTH} characters long")
        if not key.isascii() or not key.isprintable() or key.strip() != key:
            raise ValueError("API_KEY must be printable ASCII without surrounding spaces")
        return value

    @field_validator("CORS_ALLOW_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Read ``a,b`` (the environment's form) as a list; drop empty entries."""
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("CORS_ALLOW_ORIGINS")
    @classmethod
    def _origins_well_formed(cls, value: list[str]) -> list[str]:
        """Each origin is ``*`` or ``http(s)://host[:port]``, and ``*`` stands alone."""
        for origin in value:
            if origin != "*" and not _ORIGIN_PATTERN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], no path or slash"
                )
        if "*" in value and len(value) > 1:
            raise ValueError("'*' allows every origin and cannot be combined with others")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings()
