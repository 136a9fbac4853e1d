"""The store's side of the run queue: the waiting runs of a host, and every change to them as one
transaction (claim devices, leave the queue, reorder it). The order and the fitting are decided in
``runs/queue.py``; this module only reads and writes rows.

A run waits while it is queued with a place in the queue and no devices; it holds its devices while it
is active, so a slot frees itself when the run reaches a final status, however it got there (its worker
recorded it, a supervisor did, reconcile failed a dead worker's run). Queues and slots are per host:
each machine schedules its own devices.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from trainer_core.tracking.status import ACTIVE_STATUSES, QUEUED

# A run that waits in the queue (one ``?``: the queued status).
WAITING = "status = ? AND devices IS NULL AND queue_seq IS NOT NULL"
# The back of the queue: queue_seq only grows (reorder_queue renumbers a host's waiting runs from 1).
NEXT_QUEUE_SEQ = "(SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM runs)"


def is_waiting(run: Mapping[str, Any]) -> bool:
    """True for a run row waiting in the queue (the Python side of ``WAITING``)."""
    return run["status"] == QUEUED and run.get("devices") is None and run.get("queue_seq") is not None


class QueueQueries:
    """The queue's reads and writes, mixed into ``MetricsStore`` (uses its ``_write``, ``_rows``, ``_read``)."""

    def queue_state(self, host: str) -> tuple[list[dict[str, Any]], list[list[str]]]:
        """The runs waiting on ``host`` in the order they start, and the devices its active runs hold."""
        waiting = self._rows(
            "SELECT id, name, priority, queue_seq, num_gpus, attempt, created_at FROM runs "
            f"WHERE host = ? AND {WAITING} ORDER BY priority DESC, queue_seq, created_at, id",
            (host, QUEUED),
        )
        held = self._read(
            "SELECT devices FROM runs WHERE host = ? AND devices IS NOT NULL "
            f"AND status IN ({', '.join('?' * len(ACTIVE_STATUSES))})",
            (host, *ACTIVE_STATUSES),
        )
        return [dict(r) for r in waiting], [json.loads(d) for (d,) in held]

    def claim_slot(
        self,
        host: str,
        choose: Callable[[list[dict[str, Any]], list[list[str]]], tuple[str, list[str]] | None],
    ) -> dict[str, Any] | None:
        """Give devices to one waiting run of ``host``, in one transaction; returns its row, or None.

        ``choose(waiting, held)`` (see :meth:`queue_state`) names the run and its devices. The write
        lock is taken first (BEGIN IMMEDIATE on SQLite; on PostgreSQL a transaction-level advisory lock
        named for the host, so claims on one host queue on it and other hosts' do not), so two processes
        never both see a device free or both start one run.
        """
        with self._write(serialize=f"queue:{host}") as conn:
            choice = choose(*self.queue_state(host))
            if choice is None:
                return None
            run_id, devices = choice
            claimed = conn.execute(
                f"UPDATE runs SET devices = ?, heartbeat_at = ? WHERE id = ? AND {WAITING}",
                (json.dumps(list(devices)), time.time(), run_id, QUEUED),
            ).rowcount
            if not claimed:
                return None
            conn.execute(
                "INSERT INTO events (run_id, time, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (
                    run_id,
                    time.time(),
                    "slot",
                    f"starting on {', '.join(devices) or 'no device'}",
                    json.dumps({"devices": list(devices), "host": host}),
                ),
            )
        return self.get_run(run_id)

    def leave_queue(self, run_id: str, status: str, message: str) -> bool:
        """Move a waiting run to ``status`` (stopped: cancelled) with its event; False if it had started."""
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE runs SET status = ?, finished_at = ? WHERE id = ? AND {WAITING}",
                (status, time.time(), run_id, QUEUED),
            )
            if cur.rowcount == 0:
                return False
            conn.execute(
                "INSERT INTO events (run_id, time, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, time.time(), status, message, None),
            )
            return True

    def reorder_queue(self, host: str, plan: Callable[[list[dict[str, Any]]], list[tuple[str, int]]]) -> None:
        """Rewrite the order of ``host``'s queue in one transaction: ``plan(waiting)`` returns every
        waiting run's id and priority in their new order."""
        with self._write(serialize=f"queue:{host}") as conn:
            waiting, _ = self.queue_state(host)
            for seq, (run_id, priority) in enumerate(plan(waiting), start=1):
                conn.execute(
                    f"UPDATE runs SET queue_seq = ?, priority = ? WHERE id = ? AND {WAITING}",
                    (seq, priority, run_id, QUEUED),
                )
