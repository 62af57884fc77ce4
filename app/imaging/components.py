"""Connected regions of ink in a binary mask, found with numpy alone (no SciPy).

The mask is first cut into horizontal runs of ink pixels, one vectorised pass. Runs in adjacent
rows that touch (8-connectivity: overlapping or meeting at a corner) are linked, and the links
are resolved into regions by repeated hooking and pointer jumping, each round a handful of array
operations, so a region of any shape settles in a few rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class InkRuns:
    """The horizontal runs of a mask and the region each belongs to.

    Run ``i`` covers columns ``starts[i]`` to ``ends[i] - 1`` of row ``rows[i]``. Regions are
    numbered 0 to ``region_count - 1``.
    """

    rows: NDArray[np.intp]
    starts: NDArray[np.intp]
    ends: NDArray[np.intp]
    regions: NDArray[np.intp]
    region_count: int


@dataclass(frozen=True, slots=True)
class InkRegion:
    """One connected region: its ink mass and its bounding box (end coordinates exclusive)."""

    mass: float
    top: int
    left: int
    bottom: int
    right: int

    @property
    def extent(self) -> int:
        """The longer side of the bounding box, in pixels."""
        return max(self.bottom - self.top, self.right - self.left)

    def gap_to(self, top: int, left: int, bottom: int, right: int) -> int:
        """Pixels of empty space between this region's box and another box (0 if they touch)."""
        vertical = max(0, top - self.bottom, self.top - bottom)
        horizontal = max(0, left - self.right, self.left - right)
        return max(vertical, horizontal)


def horizontal_runs(
    mask: NDArray[np.bool_],
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """The horizontal runs of ``mask`` (2-D, boolean), ordered by row, then column: each one's
    row, first column and end column (exclusive)."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)
    return rows, starts, ends


def find_runs(mask: NDArray[np.bool_]) -> InkRuns:
    """Label the 8-connected regions of ``mask`` (2-D, boolean) run by run."""
    width = mask.shape[1]
    rows, starts, ends = horizontal_runs(mask)
    run_count = rows.size
    if run_count == 0:
        empty = np.zeros(0, dtype=np.intp)
        return InkRuns(empty, empty, empty, empty, 0)

    # Runs are ordered by row, then column; a key per run start and end orders them globally.
    stride = width + 2
    start_keys = rows * stride + starts
    end_keys = rows * stride + ends
    # For each run, the runs of the row above that touch it form one contiguous index range:
    # those ending at or after its start - 1 and starting at or before its end.
    first_touching = np.searchsorted(end_keys, (rows - 1) * stride + starts)
    past_touching = np.searchsorted(start_keys, (rows - 1) * stride + ends, side="right")
    link_counts = np.maximum(past_touching - first_touching, 0)
    lower = np.repeat(np.arange(run_count), link_counts)
    offsets = np.arange(lower.size) - np.repeat(np.cumsum(link_counts) - link_counts, link_counts)
    upper = np.repeat(first_touching, link_counts) + offsets

    parents = _resolve_links(run_count, lower, upper)
    roots, regions = np.unique(parents, return_inverse=True)
    return InkRuns(rows, starts, ends, regions.astype(np.intp), int(roots.size))


@dataclass(frozen=True, slots=True)
class RegionTable:
    """Mass and bounding box of every region, as arrays indexed by region number."""

    masses: NDArray[np.float64]
    tops: NDArray[np.intp]
    lefts: NDArray[np.intp]
    bottoms: NDArray[np.intp]
    rights: NDArray[np.intp]

    def __len__(self) -> int:
        """Number of regions."""
        return int(self.masses.size)

    def region(self, index: int) -> InkRegion:
        """Region ``index`` as an :class:`InkRegion`."""
        return InkRegion(
            float(self.masses[index]),
            int(self.tops[index]),
            int(self.lefts[index]),
            int(self.bottoms[index]),
            int(self.rights[index]),
        )


def describe_regions(runs: InkRuns, weights: NDArray[np.float32]) -> RegionTable:
    """Mass (sum of ``weights`` over the region) and bounding box of each region of ``runs``."""
    row_sums = np.zeros((weights.shape[0], weights.shape[1] + 1), dtype=np.float64)
    np.cumsum(weights, axis=1, out=row_sums[:, 1:])
    run_masses = row_sums[runs.rows, runs.ends] - row_sums[runs.rows, runs.starts]
    count = runs.region_count
    masses = np.bincount(runs.regions, weights=run_masses, minlength=count).astype(np.float64)
    tops = np.full(count, np.iinfo(np.intp).max, dtype=np.intp)
    lefts = np.full(count, np.iinfo(np.intp).max, dtype=np.intp)
    bottoms = np.zeros(count, dtype=np.intp)
    rights = np.zeros(count, dtype=np.intp)
    np.minimum.at(tops, runs.regions, runs.rows)
    np.minimum.at(lefts, runs.regions, runs.starts)
    np.maximum.at(bottoms, runs.regions, runs.rows + 1)
    np.maximum.at(rights, runs.regions, runs.ends)
    return RegionTable(masses, tops, lefts, bottoms, rights)


def paint_regions(
    runs: InkRuns, keep: NDArray[np.bool_], shape: tuple[int, int]
) -> NDArray[np.bool_]:
    """A mask of ``shape`` holding the pixels of the regions whose ``keep`` entry is true."""
    kept = keep[runs.regions]
    edges = np.zeros((shape[0], shape[1] + 1), dtype=np.int32)
    np.add.at(edges, (runs.rows[kept], runs.starts[kept]), 1)
    np.add.at(edges, (runs.rows[kept], runs.ends[kept]), -1)
    painted: NDArray[np.bool_] = np.cumsum(edges, axis=1)[:, :-1] > 0
    return painted


def label_regions(
    runs: InkRuns, numbering: NDArray[np.intp], shape: tuple[int, int]
) -> NDArray[np.intp]:
    """An image of ``shape`` holding, at each pixel of region ``r``, ``numbering[r]``, and -1
    elsewhere (regions numbered -1 are left out)."""
    run_labels = numbering[runs.regions]
    kept = run_labels >= 0
    # Each kept run painted with its number + 1 (0: none), as steps summed along the rows.
    steps = np.zeros((shape[0], shape[1] + 1), dtype=np.intp)
    np.add.at(steps, (runs.rows[kept], runs.starts[kept]), run_labels[kept] + 1)
    np.add.at(steps, (runs.rows[kept], runs.ends[kept]), -(run_labels[kept] + 1))
    labels: NDArray[np.intp] = np.cumsum(steps, axis=1)[:, :-1] - 1
    return labels


def _resolve_links(
    node_count: int, first: NDArray[np.intp], second: NDArray[np.intp]
) -> NDArray[np.intp]:
    """For each node, the smallest node index of its connected group, given undirected links."""
    parents = np.arange(node_count)
    while True:
        first_roots = parents[first]
        second_roots = parents[second]
        smaller = np.minimum(first_roots, second_roots)
        larger = np.maximum(first_roots, second_roots)
        pending = smaller != larger
        if not pending.any():
            return parents
        np.minimum.at(parents, larger[pending], smaller[pending])
        # Pointer jumping: make every node point straight at its group's current root.
        while True:
            grandparents = parents[parents]
            if np.array_equal(grandparents, parents):
                break
            parents = grandparents
