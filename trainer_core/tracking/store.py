"""The metrics store: runs, metric points and events in one database shared by workers and readers.

SQLite by default (WAL mode, so one writer and any number of readers never block each other; a busy
timeout plus retries so concurrent writers queue instead of failing). SQL is kept to the portable subset
with ``?`` placeholders; the one SQLite-specific query (min/max downsampling) is marked, so a PostgreSQL
backend can follow by adding a connection factory and that query's dialect variant.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainer_core.errors import RunNotFoundError
from trainer_core.tracking.rollups import ROLLUP_UPSERT, ROLLUP_WIDTHS, SERIES_COLUMNS, regroup, rollup_rows
from trainer_core.tracking.status import ACTIVE_STATUSES, QUEUED, RUNNING, STOPPING, lower_is_better

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    pid INTEGER,
    host TEXT,
    heartbeat_at REAL,
    step INTEGER,
    epoch REAL,
    total_steps INTEGER,
    error TEXT,
    traceback TEXT,
    summary TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    run_dir TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    start_step INTEGER NOT NULL DEFAULT 0,
    train_began_at REAL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    epoch REAL,
    value REAL NOT NULL,
    wall_time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_series ON metrics (run_id, key, step);
CREATE TABLE IF NOT EXISTS metric_rollups (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    width INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    min_step INTEGER NOT NULL,
    min_epoch REAL,
    min_value REAL NOT NULL,
    min_wall REAL NOT NULL,
    max_step INTEGER NOT NULL,
    max_epoch REAL,
    max_value REAL NOT NULL,
    max_wall REAL NOT NULL,
    PRIMARY KEY (run_id, key, width, bucket)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id);
"""

_RUN_COLUMNS = (
    "name",
    "status",
    "config",
    "started_at",
    "finished_at",
    "pid",
    "host",
    "heartbeat_at",
    "step",
    "epoch",
    "total_steps",
    "error",
    "traceback",
    "summary",
    "stop_requested",
    "run_dir",
    "attempt",
    "start_step",
    "train_began_at",
)
_JSON_COLUMNS = ("config", "summary")


def new_run_id() -> str:
    """A short sortable id: creation time plus randomness (readable in folder names)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class MetricsStore:
    """Runs, metric points and events, in a database named by URL.

    Args:
        url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a plain file path.
        busy_timeout_s: how long a writer waits for another writer's lock before retrying.
    """

    def __init__(self, url: str | os.PathLike, busy_timeout_s: float = 30.0, auto_checkpoint: bool = True):
        self.url = str(url)
        # A training worker turns SQLite's automatic WAL checkpoints off and calls checkpoint() from its
        # heartbeat thread: an automatic one runs inside whichever commit crosses the threshold, which
        # would stall the training step that logged (10-50 ms, measured) instead of a background thread.
        self.auto_checkpoint = auto_checkpoint
        self.path = _sqlite_path(self.url)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._run_columns: list[str] | None = None
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # executescript commits on its own; CREATE ... IF NOT EXISTS makes concurrent first opens safe.
        self._conn().executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"MetricsStore({self.url!r})"

    # -- connections ---------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections must not cross threads, and one
        # inherited over fork() would share the parent's file locks.
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            # NORMAL is durable across process crashes in WAL mode; only an OS crash can drop the last
            # commits, and a metrics store can afford that for 2-3x faster commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            if not self.auto_checkpoint:
                conn.execute("PRAGMA wal_autocheckpoint=0")
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def checkpoint(self) -> None:
        """Copy the write-ahead log back into the database file without blocking readers or writers."""
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    class _Tx:
        def __init__(self, store: MetricsStore):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            conn = self.store._conn()
            deadline = time.monotonic() + self.store.busy_timeout_s * 2
            while True:
                try:
                    # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout
                    # instead of deadlocking on a read-to-write upgrade.
                    conn.execute("BEGIN IMMEDIATE")
                    return conn
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)

        def __exit__(self, exc_type, exc, tb) -> None:
            conn = self.store._conn()
            conn.execute("COMMIT" if exc_type is None else "ROLLBACK")

    def _write(self) -> MetricsStore._Tx:
        return MetricsStore._Tx(self)

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    # -- runs ----------------------------------------------------------------------------------------

    def create_run(
        self,
        name: str,
        config: Mapping[str, Any],
        run_dir: str | None = None,
        run_id: str | None = None,
        status: str = QUEUED,
    ) -> str:
        """Insert a new run and return its id."""
        run_id = run_id or new_run_id()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, name, status, config, created_at, run_dir, host) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, name, status, json.dumps(dict(config)), time.time(), run_dir, socket.gethostname()),
            )
        return run_id

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run as a dict (config and summary parsed). Raises RunNotFoundError."""
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise RunNotFoundError(run_id)
        return self._run_dict(rows[0])

    def has_run(self, run_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM runs WHERE id = ?", (run_id,)))

    def list_runs(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """All runs, newest first, optionally only those in ``statuses``."""
        sql, params = "SELECT * FROM runs", []
        statuses = list(statuses or [])
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            params = statuses
        sql += " ORDER BY created_at DESC"
        return [self._run_dict(r) for r in self._read(sql, params)]

    def _run_dict(self, row: tuple) -> dict[str, Any]:
        if self._run_columns is None:  # the schema is fixed once the store is open: ask once
            self._run_columns = [d[0] for d in self._conn().execute("SELECT * FROM runs LIMIT 0").description]
        out = dict(zip(self._run_columns, row, strict=True))
        for key in _JSON_COLUMNS:
            out[key] = json.loads(out[key]) if out[key] else ({} if key == "config" else None)
        out["stop_requested"] = bool(out["stop_requested"])
        return out

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (``status``, ``pid``, ``summary``, ...)."""
        unknown = set(fields) - set(_RUN_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run columns: {sorted(unknown)}")
        if not fields:
            return
        values = [json.dumps(v) if k in _JSON_COLUMNS and v is not None else v for k, v in fields.items()]
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?", (*values, run_id)
            )
            if cur.rowcount == 0:
                raise RunNotFoundError(run_id)

    def finish_run_if_active(
        self, run_id: str, status: str, expected_attempt: int | None = None, **fields: Any
    ) -> bool:
        """Move a run to a final status unless it already reached one (first writer wins).

        The worker and its supervisor may both try to record how a run ended; this keeps the first,
        which is the better informed.
        """
        fields = {"status": status, "finished_at": time.time(), **fields}
        values = [json.dumps(v) if k in _JSON_COLUMNS and v is not None else v for k, v in fields.items()]
        where = f"id = ? AND status IN ({', '.join('?' * len(ACTIVE_STATUSES))})"
        params = [run_id, *ACTIVE_STATUSES]
        if expected_attempt is not None:
            where += " AND attempt = ?"
            params.append(expected_attempt)
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE {where}", (*values, *params)
            )
            return cur.rowcount > 0

    def heartbeat(self, run_id: str, step: int | None = None, epoch: float | None = None) -> None:
        """Record that the worker is alive (and where it is)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET heartbeat_at = ?, step = COALESCE(?, step), epoch = COALESCE(?, epoch) WHERE id = ?",
                (time.time(), step, epoch, run_id),
            )

    def request_stop(self, run_id: str) -> None:
        """Ask the run's worker to checkpoint and stop at the next step."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET stop_requested = 1, status = CASE WHEN status = ? THEN ? ELSE status END WHERE id = ?",
                (RUNNING, STOPPING, run_id),
            )
            if cur.rowcount == 0:
                raise RunNotFoundError(run_id)

    def stop_requested(self, run_id: str) -> bool:
        rows = self._read("SELECT stop_requested FROM runs WHERE id = ?", (run_id,))
        return bool(rows and rows[0][0])

    def rename_run(self, run_id: str, name: str) -> None:
        self.update_run(run_id, name=name)

    def delete_run(self, run_id: str) -> None:
        """Remove a run with its metric points and events."""
        with self._write() as conn:
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM metric_rollups WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # -- metric points -------------------------------------------------------------------------------

    def log_metrics(
        self,
        run_id: str,
        values: Mapping[str, Any],
        step: int,
        epoch: float | None = None,
        wall_time: float | None = None,
        touch_run: bool = False,
    ) -> int:
        """Record every finite numeric value of ``values`` at ``step``; returns how many were written.

        Args:
            touch_run: also move the run's step, epoch and heartbeat to this point, in the same
                transaction (so a progress bar never lags the charts).
        """
        wall_time = time.time() if wall_time is None else wall_time
        rows = [
            (run_id, key, int(step), epoch, float(value), wall_time)
            for key, value in values.items()
            if _is_number(value)
        ]
        self.log_points(rows, touch=(run_id, int(step), epoch, wall_time) if touch_run else None)
        return len(rows)

    def log_points(
        self,
        rows: list[tuple[str, str, int, float | None, float, float]],
        touch: tuple[str, int, float | None, float] | None = None,
    ) -> None:
        """Insert raw ``(run_id, key, step, epoch, value, wall_time)`` rows in one transaction."""
        if not rows and touch is None:
            return
        rollups = rollup_rows(rows)
        with self._write() as conn:
            if touch is not None:
                run_id, step, epoch, now = touch
                conn.execute(
                    "UPDATE runs SET step = ?, epoch = COALESCE(?, epoch), heartbeat_at = ? WHERE id = ?",
                    (step, epoch, now, run_id),
                )
            conn.executemany(
                "INSERT INTO metrics (run_id, key, step, epoch, value, wall_time) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany(ROLLUP_UPSERT, rollups)

    def delete_points_after(self, run_id: str, step: int) -> int:
        """Drop points logged after ``step`` (a resume from an earlier checkpoint replays those steps)."""
        with self._write() as conn:
            deleted = conn.execute(
                "DELETE FROM metrics WHERE run_id = ? AND step > ?", (run_id, step)
            ).rowcount
            # Rebuild the rollup buckets that held any dropped point from the raw points that remain.
            for width in ROLLUP_WIDTHS:
                first = (step + 1) // width
                conn.execute(
                    "DELETE FROM metric_rollups WHERE run_id = ? AND width = ? AND bucket >= ?",
                    (run_id, width, first),
                )
                kept = conn.execute(
                    "SELECT run_id, key, step, epoch, value, wall_time FROM metrics "
                    "WHERE run_id = ? AND step >= ? AND step <= ?",
                    (run_id, first * width, step),
                ).fetchall()
                conn.executemany(ROLLUP_UPSERT, rollup_rows(kept, widths=(width,)))
            return deleted

    def metric_keys(self, run_id: str) -> list[str]:
        """The names of all series recorded for a run."""
        # A loose index scan: one probe per distinct key instead of reading every point.
        keys, last = [], ""
        while True:
            row = self._read(
                "SELECT key FROM metrics WHERE run_id = ? AND key > ? ORDER BY key LIMIT 1", (run_id, last)
            )
            if not row:
                return keys
            last = row[0][0]
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
            # Counting from the coarsest rollup reads a handful of rows instead of every point.
            n = self._read(
                "SELECT COALESCE(SUM(n), 0) FROM metric_rollups WHERE run_id = ? AND key = ? AND width = ?",
                (run_id, key, ROLLUP_WIDTHS[-1]),
            )[0][0]
            if n > max_points:
                lo = self._read(f"SELECT step FROM metrics WHERE {where} ORDER BY step LIMIT 1", params)[0][0]
                hi = self._read(f"SELECT step FROM metrics WHERE {where} ORDER BY step DESC LIMIT 1", params)[
                    0
                ][0]
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
        # SQLite-specific: a bare column next to MIN()/MAX() comes from the row holding that extreme.
        # (PostgreSQL: DISTINCT ON (bucket) ... ORDER BY bucket, value.)
        width = (hi - lo + 1) / buckets
        bucket = f"CAST((step - {int(lo)}) / {width!r} AS INTEGER)"
        rows = self._read(
            f"SELECT step, epoch, MIN(value), wall_time FROM metrics WHERE {where} GROUP BY {bucket} "
            f"UNION ALL "
            f"SELECT step, epoch, MAX(value), wall_time FROM metrics WHERE {where} GROUP BY {bucket}",
            params + params,
        )
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

    def last_metrics(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Each series' latest point: key -> {value, step, epoch}."""
        out = {}
        for key in self.metric_keys(run_id):
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

    # -- events --------------------------------------------------------------------------------------

    def add_event(self, run_id: str, kind: str, message: str, data: Mapping[str, Any] | None = None) -> None:
        """Record something that happened to a run (started, stop requested, resumed, failed ...)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO events (run_id, time, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), kind, message, json.dumps(dict(data)) if data else None),
            )

    def events(self, run_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """A run's events, oldest first (the last ``limit``)."""
        rows = self._read(
            "SELECT id, time, kind, message, data FROM events WHERE run_id = ? ORDER BY id DESC LIMIT ?",
            (run_id, limit),
        )
        return [
            {
                "id": r[0],
                "time": r[1],
                "kind": r[2],
                "message": r[3],
                "data": json.loads(r[4]) if r[4] else None,
            }
            for r in reversed(rows)
        ]

    # -- run ownership by attempt (added by wt-d for issue 8: launcher/worker races) ------------------
    # Every change of who owns a run is one conditional UPDATE, so two launchers (two dashboards, a
    # dashboard and the CLI) and the workers can never act on an attempt that is no longer current.

    def claim_attempt(self, run_id: str, from_statuses: Iterable[str], **fields: Any) -> int | None:
        """Start a new attempt: status queued, attempt + 1, pid cleared, heartbeat now, and ``fields``,
        in one transaction and only if the run is still in ``from_statuses``. Returns the new attempt
        number, or None when the run's status had changed meanwhile."""
        from_statuses = list(from_statuses)
        fields = {"status": QUEUED, "pid": None, "heartbeat_at": time.time(), **fields}
        values = [json.dumps(v) if k in _JSON_COLUMNS and v is not None else v for k, v in fields.items()]
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE runs SET {sets}, attempt = attempt + 1 "
                f"WHERE id = ? AND status IN ({', '.join('?' * len(from_statuses))})",
                (*values, run_id, *from_statuses),
            )
            if cur.rowcount == 0:
                return None
            return int(conn.execute("SELECT attempt FROM runs WHERE id = ?", (run_id,)).fetchone()[0])

    def record_worker(
        self, run_id: str, attempt: int, pid: int, host: str, status: str | None = None
    ) -> bool:
        """Record the pid of ``attempt``'s worker (and, with ``status``, move a queued run to it); False
        when that attempt is no longer current or, with ``status``, no longer queued."""
        sql = "UPDATE runs SET pid = ?, host = ?, heartbeat_at = ?"
        params: list[Any] = [pid, host, time.time()]
        where = "id = ? AND attempt = ?"
        if status is None:
            where += f" AND status IN ({', '.join('?' * len(ACTIVE_STATUSES))})"
            tail: list[Any] = [*ACTIVE_STATUSES]
        else:
            sql += ", status = ?, started_at = COALESCE(started_at, ?)"
            params += [status, time.time()]
            where += " AND status = ?"
            tail = [QUEUED]
        with self._write() as conn:
            return conn.execute(f"{sql} WHERE {where}", (*params, run_id, attempt, *tail)).rowcount > 0

    def finish_attempt(
        self, run_id: str, attempt: int, status: str, event_kind: str, message: str, **fields: Any
    ) -> bool:
        """Move ``attempt`` to a final status and record its event in one transaction, unless the run
        already left the active statuses or moved to another attempt (first writer wins)."""
        fields = {"status": status, "finished_at": time.time(), **fields}
        values = [json.dumps(v) if k in _JSON_COLUMNS and v is not None else v for k, v in fields.items()]
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} "
                f"WHERE id = ? AND attempt = ? AND status IN ({', '.join('?' * len(ACTIVE_STATUSES))})",
                (*values, run_id, attempt, *ACTIVE_STATUSES),
            )
            if cur.rowcount == 0:
                return False
            conn.execute(
                "INSERT INTO events (run_id, time, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), event_kind, message, None),
            )
            return True

    def has_event(self, run_id: str, kind: str) -> bool:
        """True when the run ever recorded an event of this kind."""
        return bool(self._read("SELECT 1 FROM events WHERE run_id = ? AND kind = ? LIMIT 1", (run_id, kind)))

    # -- end of the wt-d block ------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np

            if isinstance(value, np.generic) and np.isreal(value):
                value = value.item()
            else:
                return False
        except ImportError:  # pragma: no cover - numpy ships with pandas
            return False
    return value == value and value not in (float("inf"), float("-inf"))


def _sqlite_path(url: str) -> str:
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :] or ":memory:"
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValueError(f"unsupported metrics store URL scheme {scheme!r}; use sqlite:///path/to/file.db")
    return url
