"""What the benchmark measures besides wrk: memory of a process tree, the uploaded images."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.images import PHOTO_SIDE, load_test_digits, write_bench_images
from bench.process_stats import MemoryWatcher, session_memory, session_processes
from bench.run import REPO_ROOT

_PARENT_WITH_HUNGRY_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import time; block = bytearray(80 * 1024 * 1024); print('ready', flush=True); time.sleep(30)"],
    stdout=subprocess.PIPE)
child.stdout.readline()
print("ready", flush=True)
time.sleep(30)
"""


def test_session_memory_counts_child_processes() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT_WITH_HUNGRY_CHILD],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        parent.stdout.readline()
        with MemoryWatcher(parent.pid, interval_s=0.05) as watcher:
            time.sleep(0.2)
            window_peak_kib = watcher.window_peak_rss_kib()
        memories = session_memory(parent.pid)
    finally:
        for stat in session_processes(parent.pid):
            os.kill(stat.pid, signal.SIGKILL)
        parent.wait()
        assert parent.stdout is not None
        parent.stdout.close()
    assert [memory.pid for memory in memories][0] == parent.pid
    assert len(memories) == 2
    child = memories[1]
    assert child.parent_pid == parent.pid
    assert child.peak_rss_kib >= 80 * 1024
    assert window_peak_kib >= sum(memory.rss_kib for memory in memories) - 1024


def test_write_bench_images_png_is_the_stored_test_digit(tmp_path: Path) -> None:
    images = write_bench_images(tmp_path, batch_size=3, repo_root=REPO_ROOT)
    digits, labels, _ = load_test_digits(3, REPO_ROOT)
    png, _ = images.single
    with Image.open(png.path) as decoded:
        assert decoded.format == "PNG"
        np.testing.assert_array_equal(np.asarray(decoded), digits[0])
    assert png.digit == labels[0]
    assert len(images.batch) == 3
    with Image.open(images.batch[2]) as third:
        np.testing.assert_array_equal(np.asarray(third), digits[2])


def test_write_bench_images_photo_shows_the_digit_in_the_top_left_corner(tmp_path: Path) -> None:
    images = write_bench_images(tmp_path, batch_size=1, repo_root=REPO_ROOT)
    _, photo = images.single
    with Image.open(photo.path) as decoded:
        assert decoded.format == "JPEG"
        assert decoded.size == (PHOTO_SIDE, PHOTO_SIDE)
        grey = np.asarray(decoded.convert("L"), dtype=np.int32)
    half = PHOTO_SIDE // 2
    ink = grey < 120
    assert ink[:half, :half].sum() > 1000
    assert ink[half:, :].sum() == 0
    assert ink[:, half:].sum() == 0
