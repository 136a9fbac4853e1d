"""What a sweep will cost before it starts: steps per trial from the data size, seconds per step from
this store's finished runs of the same checkpoint.

The step count is the one ``Trainer`` arrives at (an epoch is ``ceil(rows / (batch x processes))``
batches, ``// gradient_accumulation_steps`` optimiser steps, at least one; ``max_steps`` > 0 overrides
the epochs). A space that searches the batch size, the epochs, ``max_steps`` or the accumulation gives a
range: its fewest and its most steps. The time per step is the median over completed runs of the same
checkpoint, from when each began training to when it finished (its evaluations and final save spread
over its steps), plus the median start-up (loading the model and data) before its first step. Without
such a run there is no estimate, and the caller says so rather than guess.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from trainer_core.sweeps.spec import SweepSpec
from trainer_core.tracking.status import COMPLETED

# The space's fields that change how many optimiser steps a trial takes.
STEP_FIELDS = ("per_device_train_batch_size", "num_train_epochs", "max_steps", "gradient_accumulation_steps")


@dataclasses.dataclass(frozen=True)
class TrialEstimate:
    """A sweep's budget: steps per trial (fewest, most), and times when runs of its checkpoint exist."""

    steps: tuple[int, int]
    rows: int
    runs_measured: int = 0
    sec_per_step: float | None = None
    startup_s: float | None = None

    @property
    def trial_s(self) -> tuple[float, float] | None:
        """Seconds one trial takes (fewest steps, most steps), or None without a measured run."""
        if self.sec_per_step is None:
            return None
        return tuple(self.startup_s + n * self.sec_per_step for n in self.steps)  # type: ignore[return-value]

    def total_s(self, n_trials: int) -> tuple[float, float] | None:
        """Seconds of training the whole budget takes, one trial after another."""
        trial = self.trial_s
        return None if trial is None else (trial[0] * n_trials, trial[1] * n_trials)


def trial_steps(config: Mapping[str, Any], rows: int) -> int:
    """Optimiser steps of one run of ``config`` on ``rows`` training rows (after ``max_train_samples``)."""
    if (config.get("max_steps") or 0) > 0:
        return int(config["max_steps"])
    cap = config.get("max_train_samples")
    rows = min(rows, int(cap)) if cap else rows
    # Each process (torchrun) or Ray worker takes a batch per step, so an epoch has 1/N of the steps.
    world = config.get("num_workers") if config.get("executor") == "ray" else config.get("num_processes")
    batch = int(config.get("per_device_train_batch_size") or 8) * int(world or 1)
    batches = math.ceil(rows / batch)
    per_epoch = max(batches // int(config.get("gradient_accumulation_steps") or 1), 1)
    return math.ceil(float(config.get("num_train_epochs") or 3.0) * per_epoch)


def estimate_trial_time(spec: SweepSpec, rows: int, runs: Iterable[Mapping[str, Any]]) -> TrialEstimate:
    """Steps per trial of ``spec`` on ``rows`` training rows, and the time a step took in ``runs``.

    Args:
        spec: the checked sweep spec.
        rows: the training rows the data has (the preview's count; ``max_train_samples`` is applied here).
        runs: run rows of the store (``MetricsStore.list_runs()``); its completed runs of the same
            checkpoint give the time per step and the start-up time.
    """
    extremes = []
    for d in spec.space:
        if d.field in STEP_FIELDS:
            values = d.values if d.distribution == "choice" else (d.low, d.high)
            extremes.append([(d.field, v) for v in values])
    counts = [trial_steps({**spec.base, **dict(combo)}, rows) for combo in itertools.product(*extremes)]
    cap = spec.base.get("max_train_samples")
    used = min(rows, int(cap)) if cap else rows
    steps = (min(counts), max(counts))
    model = spec.base.get("model_name_or_path")
    per_step, startup = [], []
    for run in runs:
        if run.get("status") != COMPLETED or (run.get("config") or {}).get("model_name_or_path") != model:
            continue
        began, done = run.get("train_began_at"), run.get("finished_at")
        trained = int(run.get("step") or 0) - int(run.get("start_step") or 0)
        if began and done and trained > 0:
            per_step.append((done - began) / trained)
            if run.get("started_at") is not None:
                startup.append(max(began - run["started_at"], 0.0))
    if not per_step:
        return TrialEstimate(steps=steps, rows=used)
    return TrialEstimate(
        steps=steps,
        rows=used,
        runs_measured=len(per_step),
        sec_per_step=statistics.median(per_step),
        startup_s=statistics.median(startup) if startup else 0.0,
    )
