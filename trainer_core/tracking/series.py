"""Reading metric series back: keys, counts, whole or downsampled series, last and best points.

A mixin of ``MetricsStore`` (which provides ``_read``), kept apart from the write path so each reads in
one sitting.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from trainer_core.tracking.rollups import ROLLUP_WIDTHS, SERIES_COLUMNS, regroup
from trainer_core.tracking.status import is_system_series, lower_is_better


class SeriesQueries:
    """The read side of the metrics store. Rows come back as plain tuples: building DataFrames and
    arrays from tuples is the fast path, and these are the hot reads of every chart refresh."""

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:  # pragma: no cover - provided
        raise NotImplementedError

    def _extremes_sql(self, where: str, lo: int, width: float) -> str:  # pragma: no cover - provided
        raise NotImplementedError

    def metric_keys(self, run_id: str, system: bool = False) -> list[str]:
        """The names of a run's metric series, or with ``system=True`` of its resource-use series.

        Every read below that lists a run's series goes through here, so the resource samples
        (``is_system_series``) never reach a metric picker, a ranking or a best value.
        """
        # A loose index scan: one probe per distinct key instead of reading every point.
        keys, last = [], ""
        while True:
            row = self._read(
                "SELECT key FROM metrics WHERE run_id = ? AND key > ? ORDER BY key LIMIT 1", (run_id, last)
            )
            if not row:
                return keys
            last = row[0][0]
            if is_system_series(last) == system:
                keys.append(last)

    def count_points(self, run_id: str, key: str | None = None) -> int:
        if key is None:
            return self._read("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run_id,))[0][0]
        return self._read("SELECT COUNT(*) FROM metrics WHERE run_id = ? AND key = ?", (run_id, key))[0][0]

    def get_series(
        self, run_id: str, key: str, max_points: int | None = None, after_step: int | None = None
    ) -> pd.DataFrame:
        """One metric's points ordered by step, as columns step, epoch, value, wall_time.

        Args:
            max_points: downsample to at most about this many points: the step range is cut into
                ``max_points // 2`` buckets and each keeps its minimum and its maximum, so spikes survive
                (unlike averaging or taking every n-th point).
            after_step: only points with a larger step (for incremental refreshes).
        """
        where, params = "run_id = ? AND key = ?", [run_id, key]
        if after_step is not None:
            where += " AND step > ?"
            params.append(after_step)
        if max_points is not None and after_step is None:
            # One round trip for the size and the step range: the count from the coarsest rollup (a
            # handful of rows, not every point) and the first and last steps through the index. As three
            # queries this cost Compare 20 x 100k about 40 extra round trips to a PostgreSQL server.
            n, lo, hi = self._read(
                "SELECT (SELECT COALESCE(SUM(n), 0) FROM metric_rollups"
                " WHERE run_id = ? AND key = ? AND width = ?),"
                f" (SELECT step FROM metrics WHERE {where} ORDER BY step LIMIT 1),"
                f" (SELECT step FROM metrics WHERE {where} ORDER BY step DESC LIMIT 1)",
                (run_id, key, ROLLUP_WIDTHS[-1], *params, *params),
            )[0]
            if n > max_points:
                return self._downsampled(where, params, lo, hi, max(1, max_points // 2))
        rows = self._read(
            f"SELECT step, epoch, value, wall_time FROM metrics WHERE {where} ORDER BY step", params
        )
        return pd.DataFrame(rows, columns=SERIES_COLUMNS)

    def _downsampled(self, where: str, params: list, lo: int, hi: int, buckets: int) -> pd.DataFrame:
        run_id, key = params[0], params[1]
        span = hi - lo + 1
        usable = [w for w in ROLLUP_WIDTHS if span / w >= buckets]
        if usable and len(params) == 2:
            return self._from_rollups(run_id, key, lo, hi, usable[-1], buckets)
        return self._downsampled_scan(where, params, lo, hi, buckets)

    def _from_rollups(
        self, run_id: str, key: str, lo: int, hi: int, width: int, buckets: int
    ) -> pd.DataFrame:
        rows = self._read(
            "SELECT min_step, min_epoch, min_value, min_wall, max_step, max_epoch, max_value, max_wall "
            "FROM metric_rollups WHERE run_id = ? AND key = ? AND width = ? ORDER BY bucket",
            (run_id, key, width),
        )
        return regroup(np.array(rows, dtype=float).reshape(-1, 8), lo, hi, buckets)

    def _downsampled_scan(self, where: str, params: list, lo: int, hi: int, buckets: int) -> pd.DataFrame:
        rows = self._read(self._extremes_sql(where, lo, (hi - lo + 1) / buckets), params + params)
        frame = pd.DataFrame(rows, columns=SERIES_COLUMNS)
        return (
            frame.drop_duplicates().sort_values(["step", "wall_time"], kind="stable").reset_index(drop=True)
        )

    def get_metrics(
        self, run_ids: Iterable[str], keys: Iterable[str] | None = None, max_points: int | None = None
    ) -> pd.DataFrame:
        """Several runs' series in long form: run_id, key, step, epoch, value, wall_time."""
        frames = []
        for run_id in run_ids:
            for key in keys if keys is not None else self.metric_keys(run_id):
                frame = self.get_series(run_id, key, max_points=max_points)
                if len(frame):
                    frames.append(frame.assign(run_id=run_id, key=key))
        if not frames:
            return pd.DataFrame(columns=["run_id", "key", *SERIES_COLUMNS])
        return pd.concat(frames, ignore_index=True)[["run_id", "key", *SERIES_COLUMNS]]

    def last_metrics(self, run_id: str, system: bool = False) -> dict[str, dict[str, Any]]:
        """Each metric series' latest point (``system=True``: each resource series'): key -> {value, step, epoch}."""
        out = {}
        for key in self.metric_keys(run_id, system=system):
            row = self._read(
                "SELECT value, step, epoch FROM metrics WHERE run_id = ? AND key = ? ORDER BY step DESC, wall_time DESC LIMIT 1",
                (run_id, key),
            )
            if row:
                out[key] = {"value": row[0][0], "step": row[0][1], "epoch": row[0][2]}
        return out

    def best_metrics(self, run_id: str, keys: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each eval series' best point (lowest loss, highest anything else): key -> {value, step, epoch}."""
        out = {}
        for key in keys if keys is not None else self.metric_keys(run_id):
            order = "ASC" if lower_is_better(key) else "DESC"
            row = self._read(
                f"SELECT value, step, epoch FROM metrics WHERE run_id = ? AND key = ? ORDER BY value {order}, step LIMIT 1",
                (run_id, key),
            )
            if row:
                out[key] = {"value": row[0][0], "step": row[0][1], "epoch": row[0][2]}
        return out
