"""In a trial's worker: each evaluation reported to the trial, and the run pruned when Optuna says so.

The worker adds :class:`TrialPruningCallback` to a run that is a sweep's trial (``runs.sweep_id``).
Rank 0 loads the study from the store's database and reports the objective of each evaluation to the
trial; when the pruner answers should_prune, every rank agrees (one all-reduce, as a stop request is
agreed) and training leaves the loop after that evaluation, through the same exit as a stop. The worker
then records the run as pruned.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainer_core.runs.distributed import any_rank, is_main_process
from trainer_core.sweeps.spec import spec_from_dict
from trainer_core.sweeps.study import load_study
from trainer_core.tracking.store import MetricsStore

logger = logging.getLogger(__name__)


class TrialPruningCallback(TrainerCallback):
    """Reports each evaluation's objective to an Optuna trial and stops the run when it is pruned.

    Args:
        trial: the ``optuna.trial.Trial`` on the main process, None on the other ranks.
        objective: the eval metric reported (``eval_f1``...).
        per_epoch: report at the epoch number (1, 2 ...) rather than the global step. Trials with other
            batch sizes take other numbers of steps per epoch; the pruner compares trials at equal
            report steps, so per-epoch evaluations are compared epoch by epoch.
    """

    def __init__(self, trial: Any | None, objective: str, per_epoch: bool):
        self.trial = trial
        self.objective = objective
        self.per_epoch = per_epoch
        self.pruned: dict[str, Any] | None = None

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics=None, **kwargs
    ):
        prune = False
        if self.trial is not None and metrics and self.objective in metrics:
            prune = self._report(state, float(metrics[self.objective]))
        if any_rank(prune):  # every rank calls it, at every evaluation
            self.pruned = self.pruned or {"step": int(state.global_step)}
            control.should_training_stop = True

    def _report(self, state: TrainerState, value: float) -> bool:
        step = round(state.epoch or 0) if self.per_epoch else int(state.global_step)
        try:
            self.trial.report(value, step)
        except optuna_errors() as exc:
            # The study already closed this trial (its run was stopped, told, then resumed by hand): the
            # run trains on as a plain run.
            logger.warning("the trial no longer takes reports (%s); this run is not pruned", exc)
            self.trial = None
            return False
        # At the last evaluation there is nothing left to save: the trial completes with its score.
        if state.global_step < state.max_steps and self.trial.should_prune():
            self.pruned = {"step": int(state.global_step), "report_step": step, self.objective: value}
            return True
        return False


def optuna_errors() -> tuple[type[BaseException], ...]:
    from optuna.exceptions import UpdateFinishedTrialError

    return (UpdateFinishedTrialError, RuntimeError)


def trial_pruning_callback(store: MetricsStore, run_id: str, config) -> TrialPruningCallback | None:
    """The callback of a run that is a sweep's trial, or None for any other run (every rank calls this)."""
    run = store.get_run(run_id)
    if not run.get("sweep_id"):
        return None
    sweep = store.get_sweep(run["sweep_id"])
    spec = spec_from_dict(sweep["spec"])
    trial = None
    if is_main_process():
        import optuna

        study = load_study(store.url, sweep["study_name"], spec)
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(
            study._study_id, run["trial_number"]
        )
        trial = optuna.trial.Trial(study, trial_id)
    per_epoch = str(getattr(config.training.eval_strategy, "value", config.training.eval_strategy)) == "epoch"
    return TrialPruningCallback(trial, spec.objective, per_epoch)
