"""The sweep pages' reads and actions, behind Streamlit's caches (beside ``data.py``).

A sweep's *version* (``MetricsStore.sweep_version``) is its row, its trial runs' statuses and times, and
how many trials its Optuna study holds and has finished: while none of them changes, its trials, its
study and its figures are what they were, so each is read from the database (Optuna's tables load in
~0.1-0.5 s) once per version, not on every refresh. The figures show only finished trials, so they are
keyed by the study's counts alone and are not rebuilt when a running trial's heartbeat moves.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from dashboard.sweep_figures import history_figure, importances_figure, parallel_figure
from trainer_core import (
    SweepNotFoundError,
    SweepReview,
    Sweeps,
    SweepSpec,
    TrialEstimate,
    estimate_trial_time,
    review_sweep_spec,
)

LIVE_TTL_S = 1.0


def sweeps() -> Sweeps:
    return Sweeps(data.get_launcher())


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def _list(loc: tuple[str, str]) -> list[dict[str, Any]]:
    return sweeps().list()


def list_sweeps() -> list[dict[str, Any]]:
    """Every sweep, newest first, with ``run_counts`` (trial runs per status); a second old at most."""
    data.list_runs()  # reconciles now and then: a trial whose worker died unseen advances its sweep
    return _list(data.location())


class SweepVersion(NamedTuple):
    """What a sweep's page is drawn from (``MetricsStore.sweep_version``), hashable for the caches."""

    sweep_id: str
    row: tuple  # status, n_trials, parallel, name
    study: tuple  # trials asked, trials finished
    runs: tuple  # per trial run: id, trial number, status, attempt, started_at, finished_at, heartbeat_at

    @property
    def status(self) -> str:
        return self.row[0]


def version(sweep_id: str) -> SweepVersion | None:
    """What identifies the state of a sweep and its trials now (None: no such sweep).

    Two indexed reads, no config parsed: ~0.03 ms for a sweep of 8 trials in SQLite, against ~0.4 ms when
    this read the sweep's row and every trial run's full row (measured, 2-core machine).
    """
    try:
        v = data.get_launcher().store.sweep_version(sweep_id)
    except SweepNotFoundError:
        return None
    return SweepVersion(
        sweep_id, (v["status"], v["n_trials"], v["parallel"], v["name"]), v["study"], v["runs"]
    )


def sweeps_state() -> list[tuple]:
    """What the list of sweeps is drawn from (``MetricsStore.sweeps_version``): per sweep its row, its
    runs per status and its study's finished trials."""
    return data.get_launcher().store.sweeps_version()


def figures_mark(version: SweepVersion) -> tuple:
    """What a sweep's figures are drawn from: its study's trials (asked, finished)."""
    return version.sweep_id, version.study


@st.cache_data(show_spinner=False, max_entries=32)
def _detail(loc: tuple[str, str], version: tuple) -> dict[str, Any]:
    return sweeps().get(version[0])


def detail(version: tuple) -> dict[str, Any]:
    """The sweep with its trials and best trial (``Sweeps.get``), read once per version."""
    return _detail(data.location(), version)


@st.cache_data(show_spinner=False, max_entries=32)
def _figures(loc: tuple[str, str], mark: tuple, objective: str) -> dict[str, go.Figure | str]:
    study = sweeps().study(mark[0])
    return {
        "history": history_figure(study, objective),
        "parallel": parallel_figure(study, objective),
        "importances": importances_figure(study, objective),
    }


def figures(mark: tuple, objective: str) -> dict[str, go.Figure | str]:
    """Optimisation history, parallel coordinates and parameter importances (a figure, or why there is
    none), read once per ``figures_mark``."""
    return _figures(data.location(), mark, objective)


@st.cache_data(show_spinner=False, max_entries=64)
def _best(loc: tuple[str, str], sweep_id: str, finished: int) -> dict[str, Any] | None:
    try:
        return sweeps().get(sweep_id)["best"]
    except SweepNotFoundError:
        return None


def best(sweep_id: str, finished: int) -> dict[str, Any] | None:
    """A sweep's best trial, read once per number of finished trials (a told trial's value never changes)."""
    return _best(data.location(), sweep_id, finished) if finished else None


def review(raw: dict[str, Any]) -> SweepReview:
    """Every problem of the New sweep form's spec (each bad space row, then the first other one)."""
    return review_sweep_spec(raw)


def estimate(spec: SweepSpec, rows: int) -> TrialEstimate:
    """Steps and time per trial, from the data size and this store's finished runs of the checkpoint."""
    return estimate_trial_time(spec, rows, data.list_runs())


# -- actions (each forgets the cached rows it changed) ----------------------------------------------


def forget_sweeps() -> None:
    """Read the sweeps and run rows again on next use (a live page saw a change before their cache expired)."""
    _list.clear()
    data.forget_runs()


def create(spec: SweepSpec, name: str | None) -> str:
    """Check the checkpoint and data once, create the study and launch the first trials; the sweep id.

    Raises:
        ConfigError: the base config, checkpoint or data is unusable; nothing started.
    """
    sweep_id = sweeps().create(spec, name=name)
    forget_sweeps()
    return sweep_id


def stop(sweep_id: str) -> None:
    sweeps().stop(sweep_id)
    forget_sweeps()


def resume(sweep_id: str) -> None:
    sweeps().resume(sweep_id)
    forget_sweeps()


def add_trials(sweep_id: str, n: int) -> None:
    sweeps().add_trials(sweep_id, n)
    forget_sweeps()


def delete(sweep_id: str, delete_runs: bool) -> None:
    sweeps().delete(sweep_id, delete_runs=delete_runs)
    forget_sweeps()
