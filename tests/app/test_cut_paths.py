"""Cut paths between touching digits (:mod:`app.imaging.cut_paths`) and the candidate cuts
drawn from them (:mod:`app.imaging.digit_cuts`)."""

from __future__ import annotations

import numpy as np

from app.imaging.cut_paths import find_paths, trace
from app.imaging.digit_cuts import candidate_cuts


def _slanted_pair() -> np.ndarray:
    """Two bars slanted by a fifth, 40 rows tall, that overlap in columns but never touch: no
    straight column separates them, a slanted path does."""
    ink = np.zeros((40, 40), dtype=np.float32)
    for row in range(40):
        start = 20 - row // 5
        ink[row, start : start + 3] = 1.0
        ink[row, start + 8 : start + 11] = 1.0
    return ink


def test_cheapest_path_threads_the_gap_between_slanted_strokes() -> None:
    ink = _slanted_pair()
    paths = find_paths(ink)
    (column,) = [cut for cut in candidate_cuts(paths, line_height=40.0) if 14 <= cut <= 24]

    (path,) = trace(paths, [column])

    assert float(ink[np.arange(40), path].sum()) == 0.0
    left = np.arange(40)[np.newaxis, :] < path[:, np.newaxis]
    assert float(ink[left].sum()) == float(ink.sum()) / 2


def test_paths_step_at_most_one_column_per_row() -> None:
    ink = _slanted_pair()
    paths = find_paths(ink)

    traced = trace(paths, list(range(40)))

    assert np.abs(np.diff(traced, axis=1)).max() <= 1
    assert traced.min() >= 0 and traced.max() < 40


def test_candidate_cuts_keep_clear_of_the_edges() -> None:
    ink = _slanted_pair()

    cuts = candidate_cuts(find_paths(ink), line_height=40.0)

    assert cuts
    assert all(5 <= cut <= 35 for cut in cuts)


def test_a_narrow_group_gets_no_cuts() -> None:
    ink = np.ones((40, 10), dtype=np.float32)

    assert candidate_cuts(find_paths(ink), line_height=40.0) == []
