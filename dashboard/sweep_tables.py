"""Pure table and text helpers of the sweep pages (``tables.py`` is at its size limit).

Nothing here imports Streamlit or reads the store: the pages pass the engine's dicts in
(``Sweeps.list()``, ``Sweeps.get()``, a ``TrialEstimate``) and get DataFrames or sentences back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from dashboard.tables import format_duration, status_label
from trainer_core import ACTIVE_STATUSES, COUNTED_TRIAL_STATUSES, TrialEstimate


def trials_done(run_counts: Mapping[str, int]) -> int:
    """How many trials of a sweep have ended (completed, pruned or failed)."""
    return sum(run_counts.get(s, 0) for s in COUNTED_TRIAL_STATUSES)


def sweeps_table(sweeps: Iterable[Mapping[str, Any]], best: Mapping[str, float | None]) -> pd.DataFrame:
    """The list of sweeps: one row per sweep, indexed by its id.

    Args:
        sweeps: ``Sweeps.list()``'s rows (each with ``run_counts``).
        best: sweep id -> its best objective so far (None while no trial completed).
    """
    rows = []
    for s in sweeps:
        counts = s.get("run_counts") or {}
        active = sum(counts.get(st, 0) for st in ACTIVE_STATUSES)
        spec = s.get("spec") or {}
        rows.append(
            {
                "id": s["id"],
                "Name": s["name"],
                "Status": s["status"],
                "Trials": f"{trials_done(counts)} / {s['n_trials']}"
                + (f" · {active} active" if active else ""),
                "Objective": spec.get("objective"),
                "Best": best.get(s["id"]),
                "Sampler": spec.get("sampler"),
                "Pruner": spec.get("pruner"),
                "Created": pd.Timestamp(datetime.fromtimestamp(s["created_at"]))
                if s.get("created_at")
                else pd.NaT,
            }
        )
    columns = ["id", "Name", "Status", "Trials", "Objective", "Best", "Sampler", "Pruner", "Created"]
    table = pd.DataFrame(rows, columns=columns).set_index("id")
    table["Best"] = pd.to_numeric(table["Best"], errors="coerce")
    return table


def trials_table(detail: Mapping[str, Any]) -> pd.DataFrame:
    """A sweep's trials: number, status, each searched field's value, the objective, duration, run link.

    The run column holds a relative address (``run?run=<id>``) for a ``LinkColumn``.
    """
    spec = detail.get("spec") or {}
    objective = spec.get("objective", "objective")
    fields = [d["field"] for d in spec.get("space") or ()]
    best = (detail.get("best") or {}).get("number")
    rows = []
    for t in detail.get("trials") or ():
        rows.append(
            {
                "Trial": f"#{t['number']}" + (" ★" if t["number"] == best else ""),
                "Status": status_label(t["status"]),
                **{f: t["params"].get(f) for f in fields},
                objective: t["value"],
                "Duration": format_duration(t["duration_s"]),
                "Run": f"run?run={t['run_id']}" if t.get("run_id") else None,
                "run_id": t.get("run_id"),
            }
        )
    return pd.DataFrame(rows, columns=["Trial", "Status", *fields, objective, "Duration", "Run", "run_id"])


def budget_text(estimate: TrialEstimate, n_trials: int, parallel: int) -> str:
    """The budget preview: trials x steps per trial, and the time they take when runs were measured."""
    lo, hi = estimate.steps
    steps = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
    text = f"{n_trials} trials × {steps} steps each ({estimate.rows:,} training rows)"
    trial = estimate.trial_s
    if trial is None:
        return (
            text + ". No time estimate yet: no run of this checkpoint has completed in this runs folder "
            "(the first trial will tell)."
        )
    total = estimate.total_s(n_trials)
    waves = -(-n_trials // parallel)  # trials in turns of `parallel`, when that many slots are free
    per = _span(trial)
    return (
        f"{text} ≈ {per} per trial, {_span(total)} of training in all"
        + (
            f", ≈ {_span((trial[0] * waves, trial[1] * waves))} with {parallel} at a time"
            if parallel > 1
            else ""
        )
        + f". From {estimate.runs_measured} completed run{'s' if estimate.runs_measured != 1 else ''} of this "
        f"checkpoint: {estimate.sec_per_step:.3g} s a step (median) after {format_duration(estimate.startup_s)} "
        "of start-up."
    )


def _span(seconds: tuple[float, float]) -> str:
    lo, hi = (format_duration(s) for s in seconds)
    return lo if lo == hi else f"{lo}-{hi}"
