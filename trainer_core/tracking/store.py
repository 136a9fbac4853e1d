"""The metrics store: runs, metric points and events in one database shared by workers and readers.

SQLite by default (WAL mode, so one writer and any number of readers never block each other; a busy
timeout plus retries so concurrent writers queue instead of failing). SQL is kept to the portable subset
with ``?`` placeholders; the one SQLite-specific query (min/max downsampling) is marked, so a PostgreSQL
backend can follow by adding a connection factory and that query's dialect variant.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from trainer_core.errors import RunNotFoundError
from trainer_core.tracking.rollups import ROLLUP_UPSERT, ROLLUP_WIDTHS, rollup_rows
from trainer_core.tracking.schema import (
    QUICK_CHECK_MAX_BYTES,
    connect,
    damage_error,
    open_database,
    sqlite_path,
    write_transaction,
)
from trainer_core.tracking.series import SeriesQueries
from trainer_core.tracking.status import ACTIVE_STATUSES, QUEUED, RUNNING, STOPPING
from trainer_core.tracking.versions import VersionQueries

# Columns stored as JSON, and what a run reads where one is empty.
_JSON_COLUMNS: dict[str, Callable[[], Any]] = {"config": dict, "summary": lambda: None, "tags": list}
# Set once at creation; everything else in a run's row may be updated.
_FIXED_COLUMNS = ("id", "created_at")


def new_run_id() -> str:
    """A short sortable id: creation time plus randomness (readable in folder names)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class MetricsStore(SeriesQueries, VersionQueries):
    """Runs, metric points and events, in a database named by URL.

    Opening checks the file (see ``tracking/schema.py``) and migrates its schema to the current version.

    Args:
        url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a plain file path.
        busy_timeout_s: how long a writer waits for another writer's lock before retrying.
        auto_checkpoint: let SQLite checkpoint the write-ahead log inside commits (see below).
        quick_check_max_bytes: run ``PRAGMA quick_check`` at open on files up to this size.
    Raises:
        ConfigError: the URL's scheme is not supported, or the file cannot be created or opened.
        StoreDamagedError: the file is not a sound SQLite database.
    """

    def __init__(
        self,
        url: str | os.PathLike,
        busy_timeout_s: float = 30.0,
        auto_checkpoint: bool = True,
        quick_check_max_bytes: int = QUICK_CHECK_MAX_BYTES,
    ):
        self.url = str(url)
        # A training worker turns SQLite's automatic WAL checkpoints off and calls checkpoint() from its
        # heartbeat thread: an automatic one runs inside whichever commit crosses the threshold, which
        # would stall the training step that logged (10-50 ms, measured) instead of a background thread.
        self.auto_checkpoint = auto_checkpoint
        self.path = sqlite_path(self.url)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        conn = open_database(self.path, busy_timeout_s, auto_checkpoint, quick_check_max_bytes)
        self._local.conn, self._local.pid = conn, os.getpid()
        # Read from the migrated schema, so a migration that adds a column needs no second list here.
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
        self._run_columns = frozenset(columns) - set(_FIXED_COLUMNS)

    def __repr__(self) -> str:
        return f"MetricsStore({self.url!r})"

    # -- connections ---------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread and process: sqlite3 connections must not cross threads, and one
        # inherited over fork() would share the parent's file locks.
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            with self._damage_reported():
                conn = connect(self.path, self.busy_timeout_s, self.auto_checkpoint)
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def checkpoint(self) -> None:
        """Copy the write-ahead log back into the database file without blocking readers or writers."""
        with self._damage_reported():
            self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextlib.contextmanager
    def _damage_reported(self) -> Iterator[None]:
        # Damage that the checks at open could not see (a big file is not quick_checked, a file damaged
        # while open) surfaces in whichever query meets it: report it as the project error there too.
        try:
            yield
        except sqlite3.DatabaseError as exc:
            error = damage_error(self.path, exc)
            if error is None:
                raise
            raise error from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._damage_reported(), write_transaction(self._conn(), self.busy_timeout_s) as conn:
            yield conn

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._damage_reported():
            return self._conn().execute(sql, tuple(params)).fetchall()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        # Rows by column name for runs and events; the series reads keep plain tuples (their fast path).
        with self._damage_reported():
            cursor = self._conn().execute(sql, tuple(params))
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    # -- runs ----------------------------------------------------------------------------------------

    def create_run(
        self,
        name: str,
        config: Mapping[str, Any],
        run_dir: str | None = None,
        run_id: str | None = None,
        status: str = QUEUED,
        created_at: float | None = None,
    ) -> str:
        """Insert a new run and return its id (``created_at``: now, unless restoring an older run)."""
        run_id = run_id or new_run_id()
        created_at = time.time() if created_at is None else created_at
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, name, status, config, created_at, run_dir, host) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, name, status, json.dumps(dict(config)), created_at, run_dir, socket.gethostname()),
            )
        return run_id

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run as a dict (config and summary parsed). Raises RunNotFoundError."""
        rows = self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise RunNotFoundError(run_id)
        return self._run_dict(rows[0])

    def has_run(self, run_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM runs WHERE id = ?", (run_id,)))

    def has_any_run(self) -> bool:
        return bool(self._read("SELECT 1 FROM runs LIMIT 1"))

    def list_runs(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """All runs, newest first, optionally only those in ``statuses``."""
        sql, params = "SELECT * FROM runs", []
        statuses = list(statuses or [])
        if statuses:
            sql += f" WHERE status IN ({', '.join('?' * len(statuses))})"
            params = statuses
        sql += " ORDER BY created_at DESC"
        return [self._run_dict(r) for r in self._rows(sql, params)]

    def _run_dict(self, row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        for key, empty in _JSON_COLUMNS.items():
            out[key] = json.loads(out[key]) if out[key] else empty()
        out["stop_requested"] = bool(out["stop_requested"])
        return out

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (``status``, ``pid``, ``summary``, ...)."""
        unknown = set(fields) - self._run_columns
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
            if is_metric_value(value)
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
        rows = self._rows(
            "SELECT id, time, kind, message, data FROM events WHERE run_id = ? ORDER BY id DESC LIMIT ?",
            (run_id, limit),
        )
        return [{**dict(r), "data": json.loads(r["data"]) if r["data"] else None} for r in reversed(rows)]

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


def is_metric_value(value: Any) -> bool:
    """True for a finite int, float or numpy real scalar (not a bool)."""
    if isinstance(value, np.generic) and np.isreal(value):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value == value and value not in (math.inf, -math.inf)  # not NaN, not infinite
