"""The sweep pages' reads and actions, behind Streamlit's caches (beside ``data.py``).

A sweep's *version* is its row's status and budget with the version of each of its trial runs: while
none of them changes, its trials, its study and its figures are what they were, so each is read from the
database (Optuna's tables load in ~0.1-0.5 s) once per version, not on every refresh.
"""

from __future__ import annotations

from typing import Any

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


def version(sweep_id: str) -> tuple | None:
    """What identifies the state of a sweep and its trials now (None: no such sweep)."""
    store = data.get_launcher().store
    try:
        row = store.get_sweep(sweep_id)
    except SweepNotFoundError:
        return None
    runs = tuple(data.version(r) for r in store.sweep_runs(sweep_id))
    return sweep_id, row["status"], row["n_trials"], runs


@st.cache_data(show_spinner=False, max_entries=32)
def _detail(loc: tuple[str, str], version: tuple) -> dict[str, Any]:
    return sweeps().get(version[0])


def detail(version: tuple) -> dict[str, Any]:
    """The sweep with its trials and best trial (``Sweeps.get``), read once per version."""
    return _detail(data.location(), version)


@st.cache_data(show_spinner=False, max_entries=32)
def _figures(loc: tuple[str, str], version: tuple, objective: str) -> dict[str, go.Figure | str]:
    study = sweeps().study(version[0])
    return {
        "history": history_figure(study, objective),
        "parallel": parallel_figure(study, objective),
        "importances": importances_figure(study, objective),
    }


def figures(version: tuple, objective: str) -> dict[str, go.Figure | str]:
    """Optimisation history, parallel coordinates and parameter importances (a figure, or why there is none)."""
    return _figures(data.location(), version, objective)


def review(raw: dict[str, Any]) -> SweepReview:
    """Every problem of the New sweep form's spec (each bad space row, then the first other one)."""
    return review_sweep_spec(raw)


def estimate(spec: SweepSpec, rows: int) -> TrialEstimate:
    """Steps and time per trial, from the data size and this store's finished runs of the checkpoint."""
    return estimate_trial_time(spec, rows, data.list_runs())


# -- actions (each forgets the cached rows it changed) ----------------------------------------------


def _changed() -> None:
    _list.clear()
    data.forget_runs()


def create(spec: SweepSpec, name: str | None) -> str:
    """Check the checkpoint and data once, create the study and launch the first trials; the sweep id.

    Raises:
        ConfigError: the base config, checkpoint or data is unusable; nothing started.
    """
    sweep_id = sweeps().create(spec, name=name)
    _changed()
    return sweep_id


def stop(sweep_id: str) -> None:
    sweeps().stop(sweep_id)
    _changed()


def resume(sweep_id: str) -> None:
    sweeps().resume(sweep_id)
    _changed()


def add_trials(sweep_id: str, n: int) -> None:
    sweeps().add_trials(sweep_id, n)
    _changed()


def delete(sweep_id: str, delete_runs: bool) -> None:
    sweeps().delete(sweep_id, delete_runs=delete_runs)
    _changed()
