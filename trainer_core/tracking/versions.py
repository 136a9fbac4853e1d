"""Cheap questions a live page asks on every refresh: has anything of this run (or of any run) changed?

A mixin of ``MetricsStore`` (which provides ``_read``), like ``series``. A page that watches a run asks
this first and reads or redraws only what changed, so watching costs the training machine almost nothing
while nothing new is logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from trainer_core.errors import RunNotFoundError
from trainer_core.tracking.rollups import ROLLUP_WIDTHS

# The row's columns, the newest event id, and per series (key, points, last step). The keys come from a
# loose index scan (one probe per key), the last step from the series index, the count from the coarsest
# rollup (a few rows however long the series): measured 0.1-0.3 ms, also on a 1M-point run, where a
# COUNT(*) over the points would scan them all.
_RUN_VERSION = """
SELECT status, attempt, step, epoch, heartbeat_at, finished_at, name, note, tags,
       (SELECT MAX(id) FROM events WHERE run_id = runs.id),
       (WITH RECURSIVE k(key) AS (
            SELECT (SELECT MIN(key) FROM metrics WHERE run_id = runs.id)
            UNION ALL
            SELECT (SELECT MIN(key) FROM metrics WHERE run_id = runs.id AND key > k.key)
            FROM k WHERE k.key IS NOT NULL)
        SELECT {json_agg}({json_array}(
                   key,
                   (SELECT COALESCE(SUM(n), 0) FROM metric_rollups
                    WHERE run_id = runs.id AND key = k.key AND width = ?),
                   (SELECT MAX(step) FROM metrics WHERE run_id = runs.id AND key = k.key)))
        FROM k WHERE k.key IS NOT NULL)
FROM runs WHERE id = ?
"""
# The series come back as one JSON array: the two dialects spell its aggregate differently.
_RUN_VERSION_SQL = {
    "sqlite": _RUN_VERSION.format(json_agg="json_group_array", json_array="json_array"),
    "postgresql": _RUN_VERSION.format(json_agg="json_agg", json_array="json_build_array"),
}
_ROW_COLUMNS = (
    "status",
    "attempt",
    "step",
    "epoch",
    "heartbeat_at",
    "finished_at",
    "name",
    "note",
    "tags",
    "last_event",
)
# Everything a runs table shows except the config (no JSON to parse on every refresh).
_RUNS_VERSION = (
    "SELECT id, status, attempt, step, epoch, heartbeat_at, started_at, finished_at, total_steps, "
    "name, note, tags FROM runs ORDER BY created_at DESC"
)


class VersionQueries:
    """The change checks of the metrics store (one indexed query each)."""

    dialect: str  # provided: "sqlite" or "postgresql"

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:  # pragma: no cover - provided
        raise NotImplementedError

    def run_version(self, run_id: str) -> dict[str, Any]:
        """What changes whenever a run records anything.

        Returns:
            ``status``, ``attempt``, ``step``, ``epoch``, ``heartbeat_at``, ``finished_at``, ``name``,
            ``note``, ``tags`` (from the run's row, tags as stored), ``last_event`` (the newest event id, or None) and ``series``: key -> (number of
            points, last step). Points are only appended (a resume that drops some starts a new attempt),
            so an unchanged count and last step mean an unchanged series.
        Raises:
            RunNotFoundError: no such run.
        """
        rows = self._read(_RUN_VERSION_SQL[self.dialect], (ROLLUP_WIDTHS[-1], run_id))
        if not rows:
            raise RunNotFoundError(run_id)
        out = dict(zip(_ROW_COLUMNS, rows[0][:-1], strict=True))
        series = rows[0][-1] or "[]"  # SQLite answers JSON text, psycopg the decoded list
        if isinstance(series, str):
            series = json.loads(series)
        out["series"] = {key: (int(n), int(step)) for key, n, step in series}
        return out

    def runs_version(self) -> list[tuple]:
        """One tuple per run, newest first, that differs whenever anything a runs table shows changed:
        id, status, attempt, step, epoch, heartbeat_at, started_at, finished_at, total_steps, name, note,
        tags (as stored)."""
        return [tuple(r) for r in self._read(_RUNS_VERSION)]
