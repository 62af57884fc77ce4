"""Reading one of the model's files (the ``.keras`` archive, ``metrics.json``) with a size
bound, every failure turned into :class:`~app.errors.ModelLoadError` naming the file."""

from __future__ import annotations

from pathlib import Path

from app.errors import ModelLoadError


def read_artifact_bytes(path: Path, *, kind: str, max_bytes: int, too_large: str) -> bytes:
    """The bytes of the ``kind`` file at ``path`` (e.g. ``"model file"``).

    Raises :class:`~app.errors.ModelLoadError` when it does not exist, cannot be read, or is
    larger than ``max_bytes`` (the message then ends with ``too_large``).
    """
    try:
        if path.stat().st_size > max_bytes:
            raise ModelLoadError(f"{kind} {path} {too_large}")
        return path.read_bytes()
    except FileNotFoundError as error:
        raise ModelLoadError(f"{kind} {path} does not exist") from error
    except OSError as error:
        raise ModelLoadError(f"{kind} {path} cannot be read: {error.strerror}") from error
