"""What a run's row means: its status, its progress, and which metrics are better when lower.

Every page, command and process asks this module; no status string or metric rule is written anywhere
else.
"""

from __future__ import annotations

import enum
import time
from typing import Any


class RunStatus(enum.StrEnum):
    """The life of a run: queued -> running -> (stopping ->) stopped | completed | failed | pruned.

    Pruned: a sweep's trial that its pruner ended early for scoring worse than the other trials at the
    same epoch (see ``sweeps/``); it left through the stop path, but no person stopped it and nothing
    went wrong, and it is not resumed: the sweep spends its time on other trials instead.
    """

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"
    PRUNED = "pruned"

    @property
    def active(self) -> bool:
        """True while a worker owns the run (or is about to)."""
        return self in ACTIVE_STATUSES


QUEUED, RUNNING, STOPPING, STOPPED, COMPLETED, FAILED, PRUNED = RunStatus
ACTIVE_STATUSES = (QUEUED, RUNNING, STOPPING)
FINAL_STATUSES = (STOPPED, COMPLETED, FAILED, PRUNED)
# What Launcher.resume continues: a completed run is cloned to train further, a pruned trial is not
# worth more time.
RESUMABLE_STATUSES = (STOPPED, FAILED)
ALL_STATUSES = tuple(RunStatus)

# Metric keys where lower is better; everything else recorded at eval time is "higher is better".
_LOWER_IS_BETTER = ("loss",)
# Series the worker samples about its processes (CPU, memory, GPU memory), not about the model: kept in
# the same points table as the metrics (so rollups, downsampling and deletes apply unchanged), but never
# offered as a metric (pickers, rankings, best and last values).
SYSTEM_PREFIX = "system/"


def is_system_series(key: str) -> bool:
    """True for a resource-use series (``system/cpu_percent``, ...), which is no training or eval metric."""
    return key.startswith(SYSTEM_PREFIX)


def lower_is_better(key: str) -> bool:
    """True for loss-like metrics (used to pick the best value of a series)."""
    return any(key.endswith(suffix) for suffix in _LOWER_IS_BETTER)


def run_progress(run: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Step, fraction done, elapsed time and ETA of a run row (pure; the dashboard and CLI share it)."""
    now = time.time() if now is None else now
    step = int(run.get("step") or 0)
    total = int(run.get("total_steps") or 0)
    fraction = min(1.0, step / total) if total else (1.0 if run.get("status") == COMPLETED else 0.0)
    started = run.get("started_at")
    ended = run.get("finished_at") if run.get("status") not in ACTIVE_STATUSES else None
    elapsed = ((ended or now) - started) if started else None
    eta = None
    began, start_step = run.get("train_began_at"), int(run.get("start_step") or 0)
    if run.get("status") in (RUNNING, STOPPING) and began and total and step > start_step:
        rate = (step - start_step) / max(1e-9, now - began)
        eta = (total - step) / rate if rate > 0 else None
    return {
        "step": step,
        "total_steps": total,
        "fraction": fraction,
        "epoch": run.get("epoch"),
        "elapsed_s": elapsed,
        "eta_s": eta,
    }
