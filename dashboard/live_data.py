"""The reads of live pages: the cheap change checks asked on every refresh, and readers keyed by *marks*.

A mark (``dashboard.live.series_mark``) is what a chart is drawn from: the run's attempt and each of its
series' (points, last step). The readers of ``dashboard.data`` are keyed by the run row's version, which
the heartbeat moves every couple of seconds; these move only when points of their series arrive, so a
live chart reads the store only when it has something new to draw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.data import MAX_POINTS, get_launcher, location, newest_only
from trainer_core import RunNotFoundError

# Columns of a run's row that run_version reads fresh on every refresh.
VERSION_COLUMNS = ("status", "attempt", "step", "epoch", "heartbeat_at", "finished_at")

# --------------------------------------------------------------------------------------------------
# change checks (never cached: they are the cheap question itself)
# --------------------------------------------------------------------------------------------------


def run_version(run_id: str) -> dict[str, Any] | None:
    """``MetricsStore.run_version`` (status, step, newest event, each series' size), or None if the run
    no longer exists.

    Asked once per script run: the parts one rerun redraws (a Run page's charts, its log, its actions)
    and its watcher draw from that one answer, so they agree with each other and the store is asked once,
    not once per part. On SQLite every such question after the training wrote re-reads the pages it needs
    (a write empties a reader's page cache), and SQLite made most of a watching server's allocations
    (BENCHMARKS 6f). Outside a script run (the version route's threads) it is asked every time.
    """
    answers = _this_script_run()
    if answers is not None and run_id in answers:
        return answers[run_id]
    try:
        version = get_launcher().store.run_version(run_id)
    except RunNotFoundError:
        version = None
    if answers is not None:
        answers[run_id] = version
    return version


# The attribute of Streamlit's script-run context that holds ``run_version``'s answers for one run.
_ANSWERS = "_trainer_core_run_versions"


def _this_script_run() -> dict[str, Any] | None:
    """A dict that lives as long as the current script run, or None outside one.

    The context object lives as long as the session; its ``cursors`` dict is made anew at the start of
    every run (fragment reruns included), so an answer is kept beside the dict it was asked under and is
    dropped once that dict is no longer the context's.
    """
    ctx = get_script_run_ctx(suppress_warning=True)
    marker = getattr(ctx, "cursors", None)
    if marker is None:
        return None
    kept = getattr(ctx, _ANSWERS, None)
    if kept is None or kept[0] is not marker:
        kept = (marker, {})
        setattr(ctx, _ANSWERS, kept)
    return kept[1]


def runs_version() -> list[tuple]:
    """``MetricsStore.runs_version``: one tuple per run that changes whenever its table row would."""
    return get_launcher().store.runs_version()


def queue_version() -> tuple[list[dict[str, Any]], list[list[str]]]:
    """What the queue panel is drawn from: the runs waiting on this machine in their order, and the
    devices its active runs hold (``MetricsStore.queue_state``, two indexed queries, no config parsed)."""
    queue = get_launcher().run_queue
    return queue.store.queue_state(queue.host)


class RunsState(NamedTuple):
    """What the Runs page draws from: the table's rows and the queue panel's state."""

    rows: list[tuple]
    queue: tuple


def runs_state() -> RunsState:
    """The Runs page's cheap question (``runs_version`` and ``queue_version``)."""
    return RunsState(runs_version(), queue_version())


def compare_version(run_ids: Iterable[str]) -> tuple:
    """What Compare's overlaid curves are drawn from: each run's status, attempt and series sizes (one
    indexed query per run, ~0.2 ms; None for a run deleted meanwhile)."""
    versions = ((i, run_version(i)) for i in run_ids)
    return tuple(
        (i, v and (v["status"], v["attempt"], tuple(sorted(v["series"].items())))) for i, v in versions
    )


@st.cache_data(show_spinner=False, max_entries=256)
def _run(loc, run_id: str, key: tuple) -> dict[str, Any] | None:
    try:
        return get_launcher().store.get_run(run_id)
    except RunNotFoundError:
        return None


def run(run_id: str, version: dict[str, Any]) -> dict[str, Any] | None:
    """The run's row, read again only when its status, attempt, events, name, note or tags changed (None
    if deleted).

    The rest of the row moves with those (the worker records its start, training's first step and a
    stop request with an event); the columns that move on every heartbeat are taken from ``version``.
    """
    key = tuple(version[k] for k in ("status", "attempt", "last_event", "name", "note", "tags"))
    row = _run(location(), run_id, key)
    return None if row is None else {**row, **{k: version[k] for k in VERSION_COLUMNS}}


# --------------------------------------------------------------------------------------------------
# readers keyed by marks (``loc`` first, as in dashboard.data: another runs folder, another cache entry)
# --------------------------------------------------------------------------------------------------


# Only the newest mark of a series is ever read again, and each entry holds up to MAX_POINTS rows
# (32.7 KB pickled at 1,000): each reader keeps the newest entry per run and series (``newest_only``), and
# ``max_entries`` only bounds how many runs and series are kept. Left to fill, 2048 entries let a live
# page's server grow by ~40 MB in 10 min (soak, a run logging every 5 steps) as every new point added one
# more copy of the curve; at 64 they still filled within the soak's first minutes (64 x 32.7 KB, ~2 MB of
# blocks held between the refreshes' short-lived ones). Streamlit also keeps one lock per cache key ever
# computed, never dropped on eviction (``Cache._value_locks``, 1.67; dashboard/memory.py prunes them).
@st.cache_data(show_spinner=False, max_entries=64)
def _series(loc, run_id: str, key: str, mark: tuple, max_points: int) -> pd.DataFrame:
    return get_launcher().store.get_series(run_id, key, max_points=max_points)


def series(run_id: str, key: str, mark: tuple, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """One metric of a run as of ``mark`` (downsampled to about ``max_points``)."""
    loc = location()
    return newest_only(_series, (loc, run_id, key, max_points), (loc, run_id, key, mark, max_points))


@st.cache_data(show_spinner=False, max_entries=64)  # as _series: only the newest mark is read again
def _best(loc, run_id: str, keys: tuple[str, ...], mark: tuple) -> dict[str, Any]:
    return get_launcher().store.best_metrics(run_id, keys=list(keys))


def best(run_id: str, keys: tuple[str, ...], mark: tuple) -> dict[str, Any]:
    """Best point of each of ``keys`` as of ``mark``: key -> {value, step, epoch}."""
    loc, keys = location(), tuple(keys)
    return newest_only(_best, (loc, run_id, keys), (loc, run_id, keys, mark))


@st.cache_data(show_spinner=False, max_entries=64)
def _last(loc, run_id: str, key: str, mark: tuple) -> dict[str, Any] | None:
    return get_launcher().store.last_metrics(run_id).get(key)


def last(run_id: str, key: str, mark: tuple) -> dict[str, Any] | None:
    """The latest point of one series as of ``mark`` ({value, step, epoch}), or None."""
    loc = location()
    return newest_only(_last, (loc, run_id, key), (loc, run_id, key, mark))
