"""Min/max rollups: per-bucket extremes of each series, kept beside the raw points for fast downsampling."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

SERIES_COLUMNS = ["step", "epoch", "value", "wall_time"]
# Step widths of the min/max rollups kept beside the raw points. A downsampled read of a long series
# reads at most ~8x the requested number of rollup rows instead of scanning every raw point (a scan of
# 1M points costs ~0.5 s in SQLite; the rollup read costs a few ms). Widths grow 8x per level.
ROLLUP_WIDTHS = (16, 128, 1024, 8192, 65536)
# Portable to both dialects: the old row's columns are named through the alias ``r`` (PostgreSQL calls
# bare names ambiguous beside ``excluded``), and CASE stands in for SQLite's two-argument MIN/MAX
# (PostgreSQL's LEAST/GREATEST). Every SET expression reads the row as it was before the update, in both.
ROLLUP_UPSERT = """
INSERT INTO metric_rollups AS r (run_id, key, width, bucket, n, min_step, min_epoch, min_value, min_wall,
                            max_step, max_epoch, max_value, max_wall)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key, width, bucket) DO UPDATE SET
    n = r.n + excluded.n,
    min_step = CASE WHEN excluded.min_value < r.min_value THEN excluded.min_step ELSE r.min_step END,
    min_epoch = CASE WHEN excluded.min_value < r.min_value THEN excluded.min_epoch ELSE r.min_epoch END,
    min_wall = CASE WHEN excluded.min_value < r.min_value THEN excluded.min_wall ELSE r.min_wall END,
    min_value = CASE WHEN excluded.min_value < r.min_value THEN excluded.min_value ELSE r.min_value END,
    max_step = CASE WHEN excluded.max_value > r.max_value THEN excluded.max_step ELSE r.max_step END,
    max_epoch = CASE WHEN excluded.max_value > r.max_value THEN excluded.max_epoch ELSE r.max_epoch END,
    max_wall = CASE WHEN excluded.max_value > r.max_value THEN excluded.max_wall ELSE r.max_wall END,
    max_value = CASE WHEN excluded.max_value > r.max_value THEN excluded.max_value ELSE r.max_value END
"""


def rollup_rows(rows: list[tuple], widths: Iterable[int] = ROLLUP_WIDTHS) -> list[tuple]:
    """Aggregate raw points into per-bucket (min, max) rows ready for the rollup upsert."""
    if not rows:
        return []
    out = []
    if len(rows) < 64:
        for width in widths:
            for run_id, key, step, epoch, value, wall in rows:
                out.append(
                    (run_id, key, width, step // width, 1, step, epoch, value, wall, step, epoch, value, wall)
                )
        return out
    frame = pd.DataFrame(rows, columns=["run_id", "key", *SERIES_COLUMNS])
    for width in widths:
        frame["bucket"] = frame["step"] // width
        grouped = frame.groupby(["run_id", "key", "bucket"], sort=False)
        lo = frame.loc[grouped["value"].idxmin().to_numpy()].reset_index(drop=True)
        hi = frame.loc[grouped["value"].idxmax().to_numpy()].reset_index(drop=True)
        counts = grouped.size().to_numpy()
        lo_epoch = lo["epoch"].astype(object).where(lo["epoch"].notna(), None)
        hi_epoch = hi["epoch"].astype(object).where(hi["epoch"].notna(), None)
        out.extend(
            zip(
                lo["run_id"],
                lo["key"],
                [width] * len(lo),
                lo["bucket"].astype(int).tolist(),
                counts.tolist(),
                lo["step"].astype(int).tolist(),
                lo_epoch.tolist(),
                lo["value"].astype(float).tolist(),
                lo["wall_time"].astype(float).tolist(),
                hi["step"].astype(int).tolist(),
                hi_epoch.tolist(),
                hi["value"].astype(float).tolist(),
                hi["wall_time"].astype(float).tolist(),
                strict=True,
            )
        )
    return out


def _opt(x: Any) -> float | None:
    return None if x is None or x != x else float(x)


def regroup(arr: np.ndarray, lo: int, hi: int, buckets: int) -> pd.DataFrame:
    """Merge fine rollup rows (min step/epoch/value/wall, max ...) into ``buckets`` groups over [lo, hi]."""
    # Regroup the fine rollup buckets into the requested number, keeping each group's extremes.
    # Vectorised: sort by (group, value) and take each group's first row (its min) and, sorting by
    # the negated max, each group's first row there (its max).
    group = ((arr[:, 0] - lo) * buckets // (hi - lo + 1)).astype(np.int64)
    by_min = np.lexsort((arr[:, 2], group))
    by_max = np.lexsort((-arr[:, 6], group))
    first = np.r_[True, group[by_min][1:] != group[by_min][:-1]]
    mins = arr[by_min[first], 0:4]
    maxs = arr[by_max[np.r_[True, group[by_max][1:] != group[by_max][:-1]]], 4:8]
    both = np.empty((2 * len(mins), 4))
    both[0::2], both[1::2] = mins, maxs
    # A bucket whose min and max are the same point keeps it once.
    same = np.all(mins == maxs, axis=1) | (
        np.isnan(mins[:, 1]) & np.all(mins[:, [0, 2, 3]] == maxs[:, [0, 2, 3]], axis=1)
    )
    keep = np.ones(len(both), dtype=bool)
    keep[1::2] = ~same
    both = both[keep]
    both = both[np.lexsort((both[:, 3], both[:, 0]))]
    frame = pd.DataFrame(both, columns=SERIES_COLUMNS)
    frame["step"] = frame["step"].astype(np.int64)
    return frame
