"""The trainer refuses an output folder it cannot write before it trains, and says how to fix
it (docker compose's `train` service runs as HOST_UID:HOST_GID, 1000:1000 unless set)."""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pytest

from training.cli import main, output_dir_problem

NOBODY = 65534


def test_writable_folder_and_missing_folder_below_it_pass(tmp_path: Path) -> None:
    """An existing writable folder passes, and so does a missing one whose parent is writable;
    the check leaves nothing behind and creates no folder."""
    assert output_dir_problem(tmp_path) is None
    assert output_dir_problem(tmp_path / "new" / "models") is None
    assert list(tmp_path.iterdir()) == []


def test_a_file_is_not_an_output_folder(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file")
    problem = output_dir_problem(not_a_folder)
    assert problem is not None and "is not a folder" in problem


def _main_as(user_id: int, arguments: list[str]) -> tuple[int, str]:
    """Run ``main(arguments)`` in a forked child that has become ``user_id`` (as root: root
    itself writes anywhere); return its exit status and what it printed on stderr."""
    # argparse imports locale on first use; the child may not be able to read the
    # interpreter's files (under root's home), so it gets it already imported.
    importlib.import_module("locale")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's coverage is not collected
        status = 99
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(user_id)
            os.setuid(user_id)
            os.dup2(write_end, 2)
            sys.stderr = open(2, "w", closefd=False)
            status = main(arguments)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(status)
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, wait_status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(wait_status), message


def test_unwritable_folder_fails_at_once_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit status 1 at once (before TensorFlow is imported and anything trained), naming the
    folder, its owner, this process's ids and the HOST_UID/HOST_GID fix."""
    started = time.monotonic()
    if os.geteuid() == 0:
        # Root writes anywhere: the trainer runs as nobody on a folder root owns (755), as
        # compose's train service runs as HOST_UID on a host folder of someone else's.
        with tempfile.TemporaryDirectory() as parent:
            Path(parent).chmod(0o755)
            folder = Path(parent) / "models"
            folder.mkdir()
            arguments = ["--sample", "--profile", "smoke", "--output-dir", str(folder)]
            status, message = _main_as(NOBODY, arguments)
            left_behind = list(folder.iterdir())
        user_id = NOBODY
        assert f"{folder} belongs to uid 0, gid 0" in message
    else:
        folder = tmp_path / "models"
        folder.mkdir(mode=0o555)
        arguments = ["--sample", "--profile", "smoke", "--output-dir", str(folder)]
        try:
            status = main(arguments)
        finally:
            folder.chmod(0o755)
        message, user_id = capsys.readouterr().err, os.getuid()
        left_behind = list(folder.iterdir())
    elapsed = time.monotonic() - started
    assert status == 1, message
    assert elapsed < 30, f"the check took {elapsed:.0f} s: it must come before the training"
    assert f"cannot write into {folder}" in message
    assert f"runs as uid {user_id}" in message
    assert "HOST_UID=$(id -u) HOST_GID=$(id -g)" in message
    assert left_behind == []
