"""Running a sweep: ask the study for a trial, launch it as a run, tell the study how it ended.

There is no daemon, as for the queue. A sweep asks for its first ``parallel`` trials when it is created;
after that, whoever sees a trial's run end tells the study and asks for the next trials while trials
remain and fewer than ``parallel`` are active: the trial's own worker as it ends, the launcher's
supervisor when its worker dies, and ``Launcher.reconcile`` (every CLI command, the dashboard's
refreshes), which also fails the runs of workers that died unseen. So a machine that restarts mid-sweep
resumes it at the next CLI command or dashboard visit, from the study in the database.

One process at a time advances a sweep: it holds the sweep row's lease (see ``tracking/sweep_rows.py``)
while it tells and asks, so two trials ending at once never both launch the last trial of the budget.

Trials count against ``n_trials`` when they complete, are pruned or fail; a trial whose run a person
stopped (or the sweep's stop) is told to Optuna as failed but does not count, so resuming the sweep
replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import socket
import time
from collections.abc import Mapping
from typing import Any

from trainer_core.config import config_from_dict
from trainer_core.errors import ConfigError, RunStateError
from trainer_core.sweeps import study as studies
from trainer_core.sweeps.spec import SweepSpec, parse_sweep_spec, spec_from_dict
from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED, FAILED, PRUNED, STOPPED
from trainer_core.tracking.store import new_run_id

# How long one advance may hold a sweep's lease: it launches at most ``parallel`` runs without
# preflight (a config check, a folder, a row, a process: well under a second each), so a lease this
# old belongs to a process that died holding it.
LEASE_S = 60.0
# Run statuses that use up a trial of the budget.
COUNTED = (COMPLETED, PRUNED, FAILED)


class SweepStatus(enum.StrEnum):
    """running (asks for trials as they end) -> completed (budget spent) | stopped (by a person)."""

    RUNNING = "running"
    STOPPED = "stopped"
    COMPLETED = "completed"


class Sweeps:
    """Creates, advances, stops, resumes and deletes sweeps whose trials run through a launcher.

    Args:
        launcher: the ``Launcher`` trials are launched through (its store holds the sweeps and studies).
    """

    def __init__(self, launcher):
        self.launcher = launcher
        self.store = launcher.store

    # -- creating ------------------------------------------------------------------------------------

    def create(
        self, spec: SweepSpec | Mapping[str, Any], name: str | None = None, preflight: bool = True
    ) -> str:
        """Check a spec, create its study and sweep, and launch its first trials; returns the sweep id.

        Raises:
            ConfigError: the spec, its base config, checkpoint or data is unusable; nothing started.
        """
        if not isinstance(spec, SweepSpec):
            spec = parse_sweep_spec(spec)
        config = config_from_dict(dict(spec.base))
        if preflight:
            # Once for all trials: they share the checkpoint and the data, and the space cannot change them.
            config = self.launcher.preflighted(config)
        spec = dataclasses.replace(spec, base=config.to_dict())
        sweep_id = "sweep-" + new_run_id()
        name = (name or spec.name or "").strip() or f"sweep {sweep_id[-6:]} of {_model_name(spec)}"
        spec = dataclasses.replace(spec, name=name)
        study_name = f"trainer_core-{sweep_id}"
        studies.create_study(self.store.url, study_name, spec)
        self.store.create_sweep(
            sweep_id,
            name,
            study_name,
            spec.to_dict(),
            SweepStatus.RUNNING,
            spec.parallel,
            spec.n_trials,
            host=socket.gethostname(),
        )
        self.advance(sweep_id)
        return sweep_id

    # -- advancing -----------------------------------------------------------------------------------

    def advance(self, sweep_id: str, wait_s: float = LEASE_S) -> list[str]:
        """Tell the study how ended trials went, ask for and launch the next ones, and mark the sweep
        completed once its budget is spent; returns the run ids launched.

        Waits up to ``wait_s`` for another process's advance to finish (0: give up at once and return []).
        """
        deadline = time.monotonic() + wait_s
        while (token := self.store.try_lock_sweep(sweep_id, LEASE_S)) is None:
            if time.monotonic() >= deadline:
                return []
            time.sleep(0.1)
        try:
            return self._advance_locked(self.store.get_sweep(sweep_id))
        finally:
            self.store.unlock_sweep(sweep_id, token)

    def _advance_locked(self, sweep: dict[str, Any]) -> list[str]:
        spec = spec_from_dict(sweep["spec"])
        study = studies.load_study(self.store.url, sweep["study_name"], spec)
        runs = {r["trial_number"]: r for r in self.store.sweep_runs(sweep["id"])}
        trials = study.get_trials(deepcopy=False)
        for trial in trials:
            if not trial.state.is_finished() and trial.state.name == "RUNNING":
                self._tell(study, trial.number, runs.get(trial.number), spec)
        if sweep["status"] != SweepStatus.RUNNING:
            return []
        launched: list[str] = []
        while True:
            trials = study.get_trials(deepcopy=False)
            active = sum(1 for t in trials if t.state.name == "RUNNING")
            counted = sum(1 for t in trials if t.state.is_finished() and not t.user_attrs.get("stopped"))
            if active >= spec.parallel or counted + active >= sweep["n_trials"]:
                break
            # Reseeded past the trials so far: each advance loads the study afresh (see make_sampler).
            study = studies.load_study(self.store.url, sweep["study_name"], spec, sampler_offset=len(trials))
            run_id = self._launch_trial(study, spec, sweep)
            if run_id:
                launched.append(run_id)
        if active == 0 and counted >= sweep["n_trials"]:
            self.store.update_sweep(sweep["id"], status=SweepStatus.COMPLETED, finished_at=time.time())
        return launched

    def _launch_trial(self, study, spec: SweepSpec, sweep: dict[str, Any]) -> str | None:
        import optuna

        trial = study.ask(studies.distributions(spec))
        try:
            run_id = self.launcher.launch(
                spec.trial_config(trial.params),
                name=f"{sweep['name']} #{trial.number}",
                preflight=False,
                trial=(sweep["id"], trial.number),
            )
        except ConfigError as exc:
            # A combination the bounds alone did not show (the space's rows were each checked alone).
            trial.set_user_attr("error", str(exc))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return None
        trial.set_user_attr("run_id", run_id)
        return run_id

    def _tell(self, study, number: int, run: dict[str, Any] | None, spec: SweepSpec) -> None:
        import optuna

        state = optuna.trial.TrialState
        if run is not None and run["status"] in ACTIVE_STATUSES:
            return  # still training
        if run is None:
            # Asked, but its run never came to be (deleted, or the asking process died before launching).
            study.tell(number, state=state.FAIL, skip_if_finished=True)
            return
        if run["status"] == PRUNED:
            study.tell(number, state=state.PRUNED, skip_if_finished=True)
        elif run["status"] == COMPLETED and (value := objective_value(run, spec.objective)) is not None:
            study.tell(number, value, skip_if_finished=True)
        else:
            if run["status"] == STOPPED:
                study._storage.set_trial_user_attr(_trial_id(study, number), "stopped", True)
            study.tell(number, state=state.FAIL, skip_if_finished=True)

    # -- controlling ---------------------------------------------------------------------------------

    def stop(self, sweep_id: str) -> None:
        """Stop a sweep: no new trials; running trials stop gracefully (checkpoint at the next step)
        and queued ones leave the queue. :meth:`resume` goes on with the budget that is left."""
        self.store.update_sweep(sweep_id, status=SweepStatus.STOPPED, finished_at=time.time())
        for run in self.store.sweep_runs(sweep_id):
            if run["status"] not in ACTIVE_STATUSES:
                continue
            with contextlib.suppress(RunStateError):  # it ended meanwhile
                self.launcher.stop(run["id"])
        self.advance(sweep_id)  # tells the cancelled ones at once

    def resume(self, sweep_id: str) -> list[str]:
        """Go on asking for trials until the budget is spent; returns the runs launched now."""
        sweep = self.store.get_sweep(sweep_id)
        if sweep["status"] == SweepStatus.RUNNING:
            raise RunStateError(f"sweep {sweep_id} is running already")
        if sweep["status"] == SweepStatus.COMPLETED:
            raise RunStateError(f"sweep {sweep_id} spent its budget; add trials to it to go on")
        self.store.update_sweep(sweep_id, status=SweepStatus.RUNNING, finished_at=None)
        return self.advance(sweep_id)

    def add_trials(self, sweep_id: str, n: int) -> list[str]:
        """Raise the budget by ``n`` trials and run them; returns the runs launched now."""
        if int(n) < 1:
            raise ConfigError("n_trials", f"add at least 1 trial, got {n}")
        sweep = self.store.get_sweep(sweep_id)
        spec = spec_from_dict(sweep["spec"])
        if spec.sampler == "grid":
            raise ConfigError(
                "n_trials", "a grid sweep tries each point once; start a new sweep with more values"
            )
        n_trials = sweep["n_trials"] + int(n)
        spec = dataclasses.replace(spec, n_trials=n_trials)
        self.store.update_sweep(
            sweep_id, n_trials=n_trials, spec=spec.to_dict(), status=SweepStatus.RUNNING, finished_at=None
        )
        return self.advance(sweep_id)

    def delete(self, sweep_id: str, delete_runs: bool = True) -> None:
        """Remove a sweep and its study; its trial runs too (killed if running), or kept as plain runs."""
        sweep = self.store.get_sweep(sweep_id)
        self.store.update_sweep(sweep_id, status=SweepStatus.STOPPED)  # no trial asks for more now
        for run in self.store.sweep_runs(sweep_id):
            if delete_runs:
                self.launcher.delete(run["id"])
            elif run["status"] in ACTIVE_STATUSES:
                self.launcher.stop(run["id"])
        self.store.delete_sweep(sweep_id, keep_runs=not delete_runs)
        studies.delete_study(self.store.url, sweep["study_name"])

    # -- reading -------------------------------------------------------------------------------------

    def get(self, sweep_id: str) -> dict[str, Any]:
        """A sweep's row, its trials and its best trial (see :func:`sweep_detail`)."""
        return sweep_detail(self.store, self.store.get_sweep(sweep_id))

    def list(self) -> list[dict[str, Any]]:
        """Every sweep, newest first, with how many of its trial runs are in each status."""
        return [{**s, "run_counts": self.store.sweep_run_counts(s["id"])} for s in self.store.list_sweeps()]

    def study(self, sweep_id: str):
        """The sweep's ``optuna.Study`` (for its figures)."""
        sweep = self.store.get_sweep(sweep_id)
        return studies.load_study(self.store.url, sweep["study_name"], spec_from_dict(sweep["spec"]))

    def wait(self, sweep_id: str, timeout: float | None = None, poll_s: float = 0.5) -> dict[str, Any]:
        """Block until the sweep is no longer running and none of its trials is active (or ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sweep = self.store.get_sweep(sweep_id)
            active = any(r["status"] in ACTIVE_STATUSES for r in self.store.sweep_runs(sweep_id))
            if sweep["status"] != SweepStatus.RUNNING and not active:
                return sweep
            if deadline is not None and time.monotonic() > deadline:
                return sweep
            self.launcher.reconcile()
            time.sleep(poll_s)


def advance_sweeps(launcher, sweep_id: str | None = None, wait_s: float = 0.0) -> None:
    """Advance ``sweep_id``, or every running sweep that has a trial to tell or to ask for.

    Decided from the store's rows alone (no Optuna import) so that a reconcile of a store without sweeps
    costs one query.
    """
    sweeps = Sweeps(launcher)
    if sweep_id is not None:
        sweeps.advance(sweep_id, wait_s=wait_s)
        return
    for sweep in launcher.store.list_sweeps(statuses=[SweepStatus.RUNNING]):
        counts = launcher.store.sweep_run_counts(sweep["id"])
        active = sum(counts.get(s, 0) for s in ACTIVE_STATUSES)
        counted = sum(counts.get(s, 0) for s in COUNTED)
        if active == 0 or (active < sweep["parallel"] and counted + active < sweep["n_trials"]):
            sweeps.advance(sweep["id"], wait_s=wait_s)


def objective_value(run: Mapping[str, Any], objective: str) -> float | None:
    """A completed trial's score: its final model's ``objective`` on the validation split, as recorded
    in the run's summary (the model the run saved, so the best trial's model is the one scored)."""
    final = ((run.get("summary") or {}).get("final_metrics")) or {}
    value = final.get(objective)
    return None if value is None else float(value)


def sweep_detail(store, sweep: dict[str, Any]) -> dict[str, Any]:
    """A sweep with its trials (one dict each: number, state, params, value, run id and status,
    duration) and its best trial (or None), from its study and its runs."""
    spec = spec_from_dict(sweep["spec"])
    study = studies.load_study(store.url, sweep["study_name"], spec)
    runs = {r["trial_number"]: r for r in store.sweep_runs(sweep["id"])}
    trials = []
    for t in study.get_trials(deepcopy=False):
        run = runs.get(t.number)
        started, finished = (run or {}).get("started_at"), (run or {}).get("finished_at")
        trials.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                # A run says more than Optuna's state: pruned, stopped by a person, or still queued.
                "status": run["status"] if run else t.state.name.lower(),
                "params": dict(t.params),
                "value": t.value if t.state.name == "COMPLETE" else None,
                "intermediate": dict(t.intermediate_values),
                "run_id": run["id"] if run else None,
                "duration_s": (finished or time.time()) - started if started else None,
                "error": (run or {}).get("error") or t.user_attrs.get("error"),
            }
        )
    complete = [t for t in trials if t["value"] is not None]
    best = None
    if complete:
        pick = max if spec.direction == "maximize" else min
        best = pick(complete, key=lambda t: t["value"])
    return {**sweep, "spec": spec.to_dict(), "trials": trials, "best": best}


def _trial_id(study, number: int) -> int:
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def _model_name(spec: SweepSpec) -> str:
    return str(spec.base.get("model_name_or_path", "")).replace("builtin:", "").rsplit("/", 1)[-1]
