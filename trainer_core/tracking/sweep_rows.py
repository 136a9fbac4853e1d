"""The store's side of sweeps: a sweep's row, its trial runs, and the lease that lets one process at a
time tell its study and ask it for trials. What a sweep does is decided in ``sweeps/``; this module only
reads and writes rows (a mixin of ``MetricsStore``: uses its ``_write``, ``_rows`` and ``_read``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from trainer_core.errors import SweepNotFoundError

# Set once at creation; the rest of a sweep's row may be updated.
_SWEEP_COLUMNS = ("name", "status", "spec", "parallel", "n_trials", "finished_at")


# The change checks read two numbers from Optuna's own tables (``studies``, ``trials``, in the same
# database since the study is made before its sweep's row): how many trials the study holds and how many
# are finished (``datetime_complete`` is set when a trial is told). A trial's run ends before its worker
# tells the study, so a page redrawn at the run's end has not got the trial's value yet; the tell moves
# these and the page draws the value. Both are index lookups (``ix_studies_study_name``,
# ``ix_trials_study_id``).
_STUDY_TRIALS = (
    "SELECT {what} FROM trials t JOIN studies o ON o.study_id = t.study_id WHERE o.study_name = s.study_name"
)
_SWEEP_VERSION = (
    "SELECT s.status, s.n_trials, s.parallel, s.name, "
    f"({_STUDY_TRIALS.format(what='COUNT(*)')}), "
    f"({_STUDY_TRIALS.format(what='COUNT(t.datetime_complete)')}) "
    "FROM sweeps s WHERE s.id = ?"
)
# The columns of a trial's run that its row on the sweep page is drawn from (the heartbeat: a running
# trial's duration); no config or summary to parse, unlike ``sweep_runs``.
_TRIAL_RUNS_VERSION = (
    "SELECT id, trial_number, status, attempt, started_at, finished_at, heartbeat_at FROM runs "
    "WHERE sweep_id = ? ORDER BY trial_number, created_at"
)
_SWEEPS_VERSION = (
    "SELECT s.id, s.name, s.status, s.n_trials, "
    f"({_STUDY_TRIALS.format(what='COUNT(t.datetime_complete)')}) "
    "FROM sweeps s ORDER BY s.created_at DESC"
)
_SWEEP_RUN_COUNTS = (
    "SELECT sweep_id, status, COUNT(*) FROM runs WHERE sweep_id IS NOT NULL GROUP BY sweep_id, status"
)


class SweepQueries:
    """Sweep rows and their runs, mixed into ``MetricsStore``."""

    def create_sweep(
        self,
        sweep_id: str,
        name: str,
        study_name: str,
        spec: Mapping[str, Any],
        status: str,
        parallel: int,
        n_trials: int,
        host: str | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sweeps (id, name, study_name, spec, status, parallel, n_trials, created_at, host) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sweep_id,
                    name,
                    study_name,
                    json.dumps(dict(spec)),
                    status,
                    parallel,
                    n_trials,
                    time.time(),
                    host,
                ),
            )

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        """One sweep as a dict (spec parsed). Raises SweepNotFoundError."""
        rows = self._rows("SELECT * FROM sweeps WHERE id = ?", (sweep_id,))
        if not rows:
            raise SweepNotFoundError(sweep_id)
        return _sweep_dict(rows[0])

    def list_sweeps(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """All sweeps, newest first, optionally only those in ``statuses``."""
        statuses = list(statuses or [])
        where = f" WHERE status IN ({', '.join('?' * len(statuses))})" if statuses else ""
        rows = self._rows(f"SELECT * FROM sweeps{where} ORDER BY created_at DESC", statuses)
        return [_sweep_dict(r) for r in rows]

    def update_sweep(self, sweep_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_SWEEP_COLUMNS)
        if unknown:
            raise ValueError(f"unknown sweep columns: {sorted(unknown)}")
        values = [json.dumps(v) if k == "spec" else v for k, v in fields.items()]
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE sweeps SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?", (*values, sweep_id)
            )
            if cur.rowcount == 0:
                raise SweepNotFoundError(sweep_id)

    def delete_sweep(self, sweep_id: str, keep_runs: bool) -> None:
        """Remove a sweep's row; its runs' link to it is cleared (``keep_runs``; else delete them first)."""
        with self._write() as conn:
            if keep_runs:
                conn.execute("UPDATE runs SET sweep_id = NULL WHERE sweep_id = ?", (sweep_id,))
            conn.execute("DELETE FROM sweeps WHERE id = ?", (sweep_id,))

    def sweep_runs(self, sweep_id: str) -> list[dict[str, Any]]:
        """The runs of a sweep's trials, in trial order."""
        rows = self._rows(
            "SELECT * FROM runs WHERE sweep_id = ? ORDER BY trial_number, created_at", (sweep_id,)
        )
        return [self._run_dict(r) for r in rows]

    def sweep_run_counts(self, sweep_id: str) -> dict[str, int]:
        """How many of a sweep's trial runs are in each status."""
        rows = self._read("SELECT status, COUNT(*) FROM runs WHERE sweep_id = ? GROUP BY status", (sweep_id,))
        return {status: int(n) for status, n in rows}

    # -- change checks (a live sweep page asks these every couple of seconds) -------------------------

    def sweep_version(self, sweep_id: str) -> dict[str, Any]:
        """What changes whenever anything a sweep's page shows changes, in two indexed reads.

        Returns:
            ``status``, ``n_trials``, ``parallel``, ``name`` (the sweep's row), ``study``: (trials asked,
            trials finished) of its Optuna study, and ``runs``: one tuple per trial run in trial order
            (id, trial number, status, attempt, started_at, finished_at, heartbeat_at).
        Raises:
            SweepNotFoundError: no such sweep.
        """
        rows = self._read(_SWEEP_VERSION, (sweep_id,))
        if not rows:
            raise SweepNotFoundError(sweep_id)
        status, n_trials, parallel, name, asked, finished = rows[0]
        runs = self._read(_TRIAL_RUNS_VERSION, (sweep_id,))
        return {
            "status": status,
            "n_trials": n_trials,
            "parallel": parallel,
            "name": name,
            "study": (int(asked), int(finished)),
            "runs": tuple(tuple(r) for r in runs),
        }

    def sweeps_version(self) -> list[tuple]:
        """One tuple per sweep, newest first, that differs whenever its row in a list of sweeps would:
        id, name, status, n_trials, trials finished in its study, and its runs per status
        (``((status, count), ...)``, sorted)."""
        if not self._read("SELECT 1 FROM sweeps LIMIT 1"):
            return []  # and Optuna's tables may not exist yet: no sweep has made a study
        counts: dict[str, list] = {}
        for sweep_id, status, n in self._read(_SWEEP_RUN_COUNTS):
            counts.setdefault(sweep_id, []).append((status, int(n)))
        return [
            (sweep_id, name, status, n_trials, int(finished), tuple(sorted(counts.get(sweep_id, ()))))
            for sweep_id, name, status, n_trials, finished in self._read(_SWEEPS_VERSION)
        ]

    # -- the lease -----------------------------------------------------------------------------------

    def try_lock_sweep(self, sweep_id: str, lease_s: float) -> str | None:
        """Take the sweep's lease for ``lease_s`` seconds if nobody holds it (or theirs ran out).

        Returns the token to release it with, or None when another process holds it. A lease, not a
        transaction: the holder writes Optuna's tables meanwhile, and on SQLite a write transaction held
        here would lock Optuna's connection out of the same file. A holder that dies loses it in
        ``lease_s``.
        """
        token, now = uuid.uuid4().hex, time.time()
        with self._write() as conn:
            taken = conn.execute(
                "UPDATE sweeps SET lock_token = ?, lock_until = ? "
                "WHERE id = ? AND (lock_token IS NULL OR lock_until < ?)",
                (token, now + lease_s, sweep_id, now),
            ).rowcount
        return token if taken else None

    def unlock_sweep(self, sweep_id: str, token: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE sweeps SET lock_token = NULL, lock_until = NULL WHERE id = ? AND lock_token = ?",
                (sweep_id, token),
            )


def _sweep_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["spec"] = json.loads(out["spec"])
    return out
