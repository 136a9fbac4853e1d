"""Who owns a run, changed only by conditional writes: attempts claimed, workers recorded, outcomes kept.

A mixin of ``MetricsStore`` (which provides ``_write`` and ``_read``). Every change of who owns a run is
one conditional statement in one transaction, so two launchers (two dashboards, a dashboard and the CLI,
two machines on one PostgreSQL store) and the workers never act on an attempt that is no longer current,
and ``claim_runs`` never hands one run (or, with ``max_holding``, one slot) to two claimers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from trainer_core.tracking.backends import placeholders
from trainer_core.tracking.queue_rows import NEXT_QUEUE_SEQ
from trainer_core.tracking.status import ACTIVE_STATUSES, QUEUED

# Columns stored as JSON, and what a run reads where one is empty.
JSON_COLUMNS: dict[str, Callable[[], Any]] = {
    "config": dict,
    "summary": lambda: None,
    "tags": list,
    "devices": lambda: None,
}


class RunClaims:
    """The ownership side of the metrics store."""

    lock_rows: str

    def _write(self, serialize: str | None = None):  # pragma: no cover - provided by MetricsStore
        raise NotImplementedError

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:  # pragma: no cover - provided
        raise NotImplementedError

    # -- run ownership by attempt (added by wt-d for issue 8: launcher/worker races) -----------------
    # Every change of who owns a run is one conditional UPDATE, so two launchers (two dashboards, a
    # dashboard and the CLI) and the workers can never act on an attempt that is no longer current.

    def claim_attempt(self, run_id: str, from_statuses: Iterable[str], **fields: Any) -> int | None:
        """Start a new attempt: status queued, attempt + 1, pid cleared, heartbeat now, and ``fields``,
        in one transaction and only if the run is still in ``from_statuses``; the attempt waits at the
        back of the queue for its devices. Returns the new attempt number, or None when the run's
        status had changed meanwhile."""
        from_statuses = list(from_statuses)
        fields = {"status": QUEUED, "pid": None, "heartbeat_at": time.time(), "devices": None, **fields}
        values = [json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in fields.items()]
        sets = ", ".join(f"{k} = ?" for k in fields)
        # One statement on both backends: SQLite holds the write lock for the transaction; PostgreSQL
        # locks the row and, if another claim changed it meanwhile, re-checks the WHERE on the new row,
        # so of two concurrent claims exactly one matches.
        with self._write() as conn:
            row = conn.execute(
                f"UPDATE runs SET {sets}, attempt = attempt + 1, queue_seq = {NEXT_QUEUE_SEQ} "
                f"WHERE id = ? AND status IN ({placeholders(from_statuses)}) RETURNING attempt",
                (*values, run_id, *from_statuses),
            ).fetchone()
            return None if row is None else int(row[0])

    def claim_runs(
        self,
        from_statuses: Iterable[str],
        to_status: str,
        limit: int = 1,
        max_holding: int | None = None,
        **fields: Any,
    ) -> list[str]:
        """Move up to ``limit`` of the oldest runs in ``from_statuses`` to ``to_status`` (with ``fields``)
        in one transaction; returns their ids, oldest first. Concurrent claimers never get one run twice.

        Args:
            max_holding: slots: claim only while fewer than this many runs are in ``to_status``
                (counted inside the transaction, claimers serialised, so no slot is given twice).
        """
        from_statuses = list(from_statuses)
        fields = {"status": to_status, **fields}
        values = [json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in fields.items()]
        with self._write(serialize="claim_runs" if max_holding is not None else None) as conn:
            if max_holding is not None:
                holding = conn.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (to_status,)).fetchone()[
                    0
                ]
                limit = min(limit, max_holding - holding)
            if limit <= 0:
                return []
            ids = [
                row[0]
                for row in conn.execute(
                    f"SELECT id FROM runs WHERE status IN ({placeholders(from_statuses)}) "
                    f"ORDER BY created_at, id LIMIT ?{self.lock_rows}",
                    (*from_statuses, limit),
                ).fetchall()
            ]
            if ids:
                conn.execute(
                    f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id IN ({placeholders(ids)})",
                    (*values, *ids),
                )
            return ids

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
        values = [json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in fields.items()]
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
