"""The metrics store: runs, metric points and events in one database shared by workers and readers.

SQLite by default (WAL mode, so one writer and any number of readers never block each other; a busy
timeout plus retries so concurrent writers queue instead of failing), or PostgreSQL for several machines
sharing one store. The SQL is written once, with ``?`` placeholders, in the subset both dialects accept;
``backends.py`` holds what differs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from trainer_core.errors import RunNotFoundError
from trainer_core.tracking.backends import backend_for
from trainer_core.tracking.claims import JSON_COLUMNS as _JSON_COLUMNS
from trainer_core.tracking.claims import RunClaims
from trainer_core.tracking.connections import ThreadConnections
from trainer_core.tracking.queue_rows import NEXT_QUEUE_SEQ, QueueQueries
from trainer_core.tracking.rollups import ROLLUP_UPSERT, ROLLUP_WIDTHS, rollup_rows
from trainer_core.tracking.schema import QUICK_CHECK_MAX_BYTES
from trainer_core.tracking.series import SeriesQueries
from trainer_core.tracking.status import ACTIVE_STATUSES, QUEUED, RUNNING, STOPPING
from trainer_core.tracking.sweep_rows import SweepQueries
from trainer_core.tracking.versions import VersionQueries

# Set once at creation; everything else in a run's row may be updated.
_FIXED_COLUMNS = ("id", "created_at")


def new_run_id() -> str:
    """A short sortable id: creation time plus randomness (readable in folder names)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class MetricsStore(SeriesQueries, RunClaims, QueueQueries, VersionQueries, SweepQueries):
    """Runs, metric points and events, in a database named by URL.

    Opening checks the database (for a SQLite file, see ``tracking/schema.py``) and migrates its schema
    to the current version.

    Args:
        url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, a plain file path, or
            ``postgresql://user[:password]@host:port/database``.
        busy_timeout_s: (SQLite) how long a writer waits for another writer's lock before retrying.
        auto_checkpoint: (SQLite) let SQLite checkpoint the write-ahead log inside commits (see below).
        quick_check_max_bytes: (SQLite) run ``PRAGMA quick_check`` at open on files up to this size.
    Raises:
        ConfigError: the URL's scheme is not supported, the file cannot be created or opened, or the
            server cannot be reached.
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
        self.busy_timeout_s = busy_timeout_s
        self._backend = backend_for(self.url, busy_timeout_s, auto_checkpoint, quick_check_max_bytes)
        self.dialect = self._backend.kind  # "sqlite" or "postgresql"
        self.path = self._backend.where  # the file, or the URL without its password
        # The driver's base error class(es), for callers that retry or report a refused write.
        self.errors = self._backend.errors
        conn = self._backend.open()
        self._connections = ThreadConnections(
            self._backend.connect, self._backend.usable, self._backend.reusable, first=conn
        )
        # Read from the migrated schema, so a migration that adds a column needs no second list here.
        self._run_columns = frozenset(self._backend.columns(conn, "runs")) - set(_FIXED_COLUMNS)

    def __repr__(self) -> str:
        return f"MetricsStore({self.path!r})"

    # -- connections ---------------------------------------------------------------------------------

    def _conn(self):
        # One connection per thread and process at a time (see tracking/connections.py): a connection
        # inherited over fork() would share the parent's file locks, and a PostgreSQL connection shared
        # by two threads or processes would interleave their messages on one socket.
        return self._connections.get()

    def checkpoint(self) -> None:
        """(SQLite) Copy the write-ahead log back into the database file without blocking anyone."""
        with self._backend.reported():
            self._backend.checkpoint(self._conn())

    def close(self) -> None:
        """Close this thread's connection and the idle ones (never one a parent process still uses)."""
        self._connections.close()

    @contextlib.contextmanager
    def _write(self, serialize: str | None = None, pipelined: bool = False) -> Iterator[Any]:
        conn = self._conn()
        batch = self._backend.pipeline(conn) if pipelined else contextlib.nullcontext()
        with self._backend.reported(), batch, self._backend.transaction(conn, serialize):
            yield conn

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._backend.reported():
            return self._conn().execute(sql, tuple(params)).fetchall()

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Mapping[str, Any]]:
        # Rows by column name for runs and events; the series reads keep plain tuples (their fast path).
        with self._backend.reported():
            return self._backend.rows(self._conn(), sql, tuple(params))

    def _extremes_sql(self, where: str, lo: int, width: float) -> str:
        return self._backend.extremes_sql(where, lo, width)

    @contextlib.contextmanager
    def transaction(self, serialize: str | None = None) -> Iterator[Any]:
        """One write transaction, committed at the end of the block (rolled back on an exception).

        Yields a connection whose ``execute(sql, params)`` takes ``?`` placeholders on both backends.
        A claim selects its rows with ``store.lock_rows`` appended (``FOR UPDATE SKIP LOCKED`` on
        PostgreSQL; nothing on SQLite, where the transaction holds the only write lock) and updates them
        in the same block.

        Args:
            serialize: a name; blocks given the same name run one at a time on PostgreSQL too (a
                transaction-level advisory lock), for a check-then-act such as "fewer than N running,
                so start one". SQLite runs every write transaction one at a time anyway.
        """
        with self._write(serialize) as conn:
            yield conn

    @property
    def lock_rows(self) -> str:
        """The clause that locks the rows a claim's SELECT returns (see ``transaction``)."""
        return self._backend.lock_rows

    # -- runs ----------------------------------------------------------------------------------------

    def create_run(
        self,
        name: str,
        config: Mapping[str, Any],
        run_dir: str | None = None,
        run_id: str | None = None,
        status: str = QUEUED,
        created_at: float | None = None,
        queue: Mapping[str, int] | None = None,
        trial: tuple[str, int] | None = None,
    ) -> str:
        """Insert a new run and return its id (``created_at``: now, unless restoring an older run).

        ``queue`` (``{"priority": p, "num_gpus": n}``) puts the run at the back of this host's queue
        in the same transaction, so no scheduler ever sees it half-made. ``trial`` (sweep id, trial
        number) makes it a sweep's trial from its first moment, before its worker reads its row.
        """
        run_id = run_id or new_run_id()
        created_at = time.time() if created_at is None else created_at
        columns = "id, name, status, config, created_at, run_dir, host"
        values = "?, ?, ?, ?, ?, ?, ?"
        params: list[Any] = [run_id, name, status, json.dumps(dict(config)), created_at, run_dir]
        params.append(socket.gethostname())
        if queue is not None:
            columns += ", priority, num_gpus, queue_seq"
            values += f", ?, ?, {NEXT_QUEUE_SEQ}"
            params += [int(queue.get("priority") or 0), queue.get("num_gpus")]
        if trial is not None:
            columns += ", sweep_id, trial_number"
            values += ", ?, ?"
            params += [trial[0], int(trial[1])]
        with self._write() as conn:
            conn.execute(f"INSERT INTO runs ({columns}) VALUES ({values})", params)
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

    def _run_dict(self, row: Mapping[str, Any]) -> dict[str, Any]:
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
        # Pipelined: one round trip to a PostgreSQL server for the whole transaction, not one per
        # statement (nothing is read back in it); SQLite has no round trips to save.
        with self._write(pipelined=True) as conn:
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


def is_metric_value(value: Any) -> bool:
    """True for a finite int, float or numpy real scalar (not a bool)."""
    if isinstance(value, np.generic) and np.isreal(value):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value == value and value not in (math.inf, -math.inf)  # not NaN, not infinite
