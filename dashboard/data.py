"""Every read the dashboard makes, and the few actions it takes, behind Streamlit's caches.

One ``st.cache_resource`` factory owns the shared :class:`trainer_core.Launcher` (and with it the store
connection); everything else is a ``st.cache_data`` reader whose key starts with the runs folder and
store, so a test (or a second dashboard) pointed at another ``TRAINER_CORE_HOME`` never sees this one's
cache.

Freshness: the run rows (``list_runs``, ``get_run``) live about a second. Every reader of what a run
recorded (series, best and last points, keys, log, checkpoints, predictions, events) is one cached
function keyed by the run's *version*, read from that row: (id, status, attempt, finished_at,
heartbeat_at). A finished run's version never changes, so its data is read once. A live run's version
changes at each heartbeat (the worker's callback writes step and heartbeat_at every couple of seconds
while it trains, a thread every few seconds while it evaluates), so a live page re-reads at that pace and
not on every refresh; and all readers of one refresh agree, since they share one version. (A TTL per
call is what the two pairs of readers used to emulate; ``st.cache_data`` takes one per function.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.tables import EVAL_KEYS, eta_estimating, with_plotted_step
from trainer_core import (
    ACTIVE_STATUSES,
    Launcher,
    RunNotFoundError,
    RunStatus,
    default_home,
    default_store_url,
    rebuild_store,
)

LIVE_TTL_S = 1.0
MAX_POINTS = 1000  # per plotted line; the store keeps each bucket's min and max, so spikes survive

# --------------------------------------------------------------------------------------------------
# the shared handle
# --------------------------------------------------------------------------------------------------


def location() -> tuple[str, str]:
    """(runs folder, store URL) as the engine resolves them from the environment right now."""
    home = default_home()
    return str(home), default_store_url(home)


@st.cache_resource(show_spinner=False)
def _launcher_for(home: str, store_url: str) -> Launcher:
    launcher = Launcher(home=home, store_url=store_url)
    # Runs whose worker died while no dashboard was watching still say "running": settle them now, so
    # the first page shows the truth. Live workers are left alone and simply shown again.
    launcher.reconcile()
    return launcher


def get_launcher() -> Launcher:
    """The one Launcher of this runs folder (created, and reconciled, on first use).

    Raises:
        StoreDamagedError: the metrics store is damaged or lost its runs (see :func:`rebuild`).
        ConfigError: the runs folder or store URL is unusable.
    """
    return _launcher_for(*location())


def rebuild() -> dict[str, Any]:
    """Move a damaged store aside and rebuild it from the run folders; returns what was recovered."""
    report = rebuild_store(*location())
    st.cache_resource.clear()
    st.cache_data.clear()
    return {"moved_aside": report.moved_aside, "recovered": len(report.recovered), "skipped": report.skipped}


# --------------------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------------------


@st.cache_data(ttl=10, show_spinner=False)
def _reconcile(loc: tuple[str, str]) -> list[str]:
    # A worker can also die while the dashboard is up (OOM killer, a CLI-started run killed elsewhere);
    # checking every ten seconds costs one process lookup per active run.
    return _launcher_for(*loc).reconcile()


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def _list_runs(loc: tuple[str, str]) -> list[dict[str, Any]]:
    return _launcher_for(*loc).store.list_runs()


def list_runs() -> list[dict[str, Any]]:
    """All runs, newest first (at most a second old)."""
    loc = location()
    _reconcile(loc)
    return _list_runs(loc)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def _get_run(loc: tuple[str, str], run_id: str) -> dict[str, Any] | None:
    try:
        return _launcher_for(*loc).store.get_run(run_id)
    except RunNotFoundError:
        return None


def get_run(run_id: str) -> dict[str, Any] | None:
    """One run, or None if it does not exist (deleted, or a stale link)."""
    return _get_run(location(), run_id)


def is_live(run: dict[str, Any]) -> bool:
    return run["status"] in ACTIVE_STATUSES


def version(run: dict[str, Any]) -> tuple:
    """What identifies the data a run has recorded so far (see the module docstring)."""
    return run["id"], run["status"], run.get("attempt"), run.get("finished_at"), run.get("heartbeat_at")


def progress(run: dict[str, Any], plotted_step: int | None = None) -> dict[str, Any]:
    """Step, fraction, epoch, elapsed and ETA (computed from the run row, no I/O).

    Args:
        plotted_step: the last step the page's charts show; the step shown is never behind it.
    Returns:
        ``Launcher.progress``'s dict plus ``estimating`` (True while the current attempt has done too
        few steps for an ETA, whose ``eta_s`` is then None).
    """
    run = with_plotted_step(run, plotted_step)
    prog = dict(get_launcher().progress(run))
    prog["estimating"] = eta_estimating(run, prog["step"])
    if prog["estimating"]:
        prog["eta_s"] = None
    return prog


def engine_status() -> dict[str, Any]:
    """Counts for the sidebar's one-line status: runs by status and where they are kept."""
    _reconcile(location())
    rows = get_launcher().store.runs_version()  # statuses, without parsing every run's config
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    launcher = get_launcher()
    return {"counts": counts, "total": len(rows), "home": str(launcher.home), "store": launcher.store_url}


_newest: dict[tuple, tuple] = {}  # (reader, runs folder, run id, other args) -> the args of its newest entry
_newest_lock = threading.Lock()


def newest_only(reader, slot: tuple, args: tuple) -> Any:
    """``reader(*args)``, first dropping the entry ``reader`` last computed for ``slot`` with other args.

    For the readers whose key moves while a run is live (its version, a series' mark) and whose older
    keys nobody reads again: each keeps one entry per slot (run, series, line count ...), not one per
    refresh until its ``max_entries``.
    """
    key = (id(reader), *slot)
    with _newest_lock:
        old = _newest.get(key)
        _newest[key] = args
    if old is not None and old != args:
        reader.clear(*old)
    return reader(*args)


def _newest_only(reader, loc, version: tuple, *rest: Any) -> Any:
    """``reader(loc, version, *rest)``, dropping the entry the same run had under its previous version.

    A live run's version moves with every heartbeat, and nothing reads an older one again: without this,
    each reader's cache filled to its bound with copies of the same log tail, events or curve (+20 MB of
    a live page's server in 26 minutes of the soak before, most of it these entries).
    """
    return newest_only(reader, (loc, version[0], rest), (loc, version, *rest))


# --------------------------------------------------------------------------------------------------
# what a run recorded: one cached reader per query, keyed by the run's version
# --------------------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=64)  # see live_data._series: one curve per entry
def _series(loc, version: tuple, key: str, max_points: int) -> pd.DataFrame:
    return _launcher_for(*loc).store.get_series(version[0], key, max_points=max_points)


def series(run: dict[str, Any], key: str, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """One metric of a run (step, epoch, value, wall_time), downsampled to about ``max_points``."""
    return _newest_only(_series, location(), version(run), key, max_points)


@st.cache_data(show_spinner=False, max_entries=1024)
def _metric_keys(loc, version: tuple) -> list[str]:
    return _launcher_for(*loc).store.metric_keys(version[0])


def metric_keys(run: dict[str, Any]) -> list[str]:
    """Names of the series a run recorded."""
    return _newest_only(_metric_keys, location(), version(run))


@st.cache_data(show_spinner=False, max_entries=1024)
def _system_keys(loc, version: tuple) -> list[str]:
    return _launcher_for(*loc).store.metric_keys(version[0], system=True)


def system_keys(run: dict[str, Any]) -> list[str]:
    """Names of the resource-use series (CPU, memory, GPU memory) a run's worker sampled."""
    return _newest_only(_system_keys, location(), version(run))


@st.cache_data(show_spinner=False, max_entries=2048)
def _best_metrics(loc, version: tuple, keys: tuple[str, ...]) -> dict[str, Any]:
    return _launcher_for(*loc).store.best_metrics(version[0], keys=list(keys))


def best_metrics(run: dict[str, Any], keys: tuple[str, ...] = EVAL_KEYS) -> dict[str, Any]:
    """Best point of each of ``keys``: key -> {value, step, epoch}."""
    return _newest_only(_best_metrics, location(), version(run), tuple(keys))


@st.cache_data(show_spinner=False, max_entries=64)  # Compare: one frame of every shown run per entry
def _metrics(loc, versions: tuple[tuple, ...], key: str, max_points: int) -> pd.DataFrame:
    return _launcher_for(*loc).store.get_metrics([v[0] for v in versions], [key], max_points=max_points)


def metrics_long(runs: list[dict[str, Any]], key: str, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """One metric of several runs in long form (run_id, key, step, epoch, value, wall_time)."""
    return _metrics(location(), tuple(version(r) for r in runs), key, max_points)


# Keyed by the version, which moves with every heartbeat of a live run: only the newest entry of each
# watched run is read again. Each entry holds up to 200 log lines (~20 KB pickled); at 256 entries the
# log tail alone let a live page's server grow by ~5 MB before the bound was reached.
@st.cache_data(show_spinner=False, max_entries=16)
def _log_tail(loc, version: tuple, lines: int) -> str:
    return _launcher_for(*loc).log_tail(version[0], lines=lines)


def log_tail(run: dict[str, Any], lines: int = 200) -> str:
    """The last lines of the worker's log."""
    return _newest_only(_log_tail, location(), version(run), lines)


@st.cache_data(show_spinner=False, max_entries=256)
def _checkpoints(loc, version: tuple) -> list[dict[str, Any]]:
    # Incomplete ones too (cut off mid-write): shown with what is wrong, so a skipped resume point is no surprise.
    return _launcher_for(*loc).checkpoints(version[0], include_incomplete=True)


def checkpoints(run: dict[str, Any]) -> list[dict[str, Any]]:
    return _newest_only(_checkpoints, location(), version(run))


@st.cache_data(show_spinner=False, max_entries=32)
def _predictions(loc, version: tuple) -> pd.DataFrame | None:
    return _launcher_for(*loc).predictions(version[0])


def predictions(run: dict[str, Any]) -> pd.DataFrame | None:
    """The final model's predictions on the validation split (completed runs only)."""
    if run["status"] != RunStatus.COMPLETED:
        return None
    return _predictions(location(), version(run))


@st.cache_data(show_spinner=False, max_entries=64)  # up to 100 events per entry; as _log_tail
def _events(loc, version: tuple) -> list[dict[str, Any]]:
    return _launcher_for(*loc).store.events(version[0], limit=100)


def events(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's lifecycle events (launched, resumed, stop requested, failed ...), oldest first."""
    return _newest_only(_events, location(), version(run))


def model_dir(run: dict[str, Any]) -> Path | None:
    """The fine-tuned model folder of a completed run, or None."""
    return get_launcher().model_dir(run["id"]) if run["status"] == RunStatus.COMPLETED else None


def model_archive(run_id: str) -> Callable[[], bytes]:
    """A no-argument function returning the fine-tuned model as zip bytes, for st.download_button.

    The launcher is captured here, in the script thread: the download button calls the function on
    its own thread, where Streamlit's caches are not available.
    """
    launcher = get_launcher()

    def build() -> bytes:
        return launcher.export_model_archive(run_id).read_bytes()

    return build


def config_of(run_id: str) -> dict[str, Any]:
    """The run's saved flat config (what cloning pre-fills the form with)."""
    return get_launcher().config_of(run_id)


@st.cache_data(show_spinner=False, max_entries=64)
def _finished_models(loc, versions: tuple[tuple, ...], names: tuple[str, ...]) -> list[dict[str, Any]]:
    launcher = _launcher_for(*loc)
    out = []
    for v, name in zip(versions, names, strict=True):
        path = launcher.model_dir(v[0])
        if path is not None:
            out.append({"id": v[0], "name": name, "path": str(path)})
    return out


def finished_models() -> list[dict[str, Any]]:
    """Completed runs with a saved model, for "fine-tune further" (id, name, path)."""
    done = [r for r in list_runs() if r["status"] == RunStatus.COMPLETED]
    return _finished_models(location(), tuple(version(r) for r in done), tuple(r["name"] for r in done))


# --------------------------------------------------------------------------------------------------
# actions (each clears the caches it makes stale)
# --------------------------------------------------------------------------------------------------


def forget_runs() -> None:
    """Read the run rows again on next use (a live page saw one change before their cache expired)."""
    _list_runs.clear()
    _get_run.clear()


def _runs_changed() -> None:
    # A changed row (status, name, attempt) also gives the run a new version, hence fresh readers.
    forget_runs()


def launch(form: dict[str, Any], name: str | None) -> str:
    """Validate, preflight and start a run in a worker process; returns its id at once.

    Raises:
        ConfigError: the config, checkpoint or data is unusable (nothing was started).
    """
    run_id = get_launcher().launch(form, name=name or None)
    _runs_changed()
    return run_id


def stop(run_id: str) -> None:
    get_launcher().stop(run_id)
    _runs_changed()


def resume_plan(run_id: str) -> dict[str, Any]:
    """What a resume would do (checkpoint, skipped incomplete ones, whether checkpoints were lost)."""
    return get_launcher().resume_plan(run_id)


def resume(run_id: str, restart_from_scratch: bool = False) -> str:
    run_id = get_launcher().resume(run_id, restart_from_scratch=restart_from_scratch)
    _runs_changed()
    return run_id


def delete(run_id: str) -> None:
    get_launcher().delete(run_id)
    _runs_changed()


def rename(run_id: str, name: str) -> None:
    get_launcher().rename(run_id, name)
    _runs_changed()


def annotate(run_id: str, note: str, tags: list[str]) -> None:
    """Set a run's note and tags (the engine normalises the tags). Raises ConfigError for a bad tag."""
    get_launcher().annotate(run_id, note=note, tags=tags)
    _runs_changed()
