"""Run page: the status line of a run (progress, Elapsed / ETA, latest loss, best scores, what the status
means), redrawn by the live panel's watcher (``dashboard.views.run``) on every refresh.

Between two refreshes the browser ticks Elapsed and ETA (``dashboard.live_poll``): ``render_status``
returns the clock it needs, two points of the engine's ``run_progress``.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard import data, live_data
from dashboard.live import series_mark
from dashboard.tables import (
    ACCURACY,
    EVAL_KEYS,
    F1,
    f1_legend,
    format_duration,
    format_eta,
    run_label_names,
    status_label,
    with_plotted_step,
)
from dashboard.views.cluster import render_wait_reason
from trainer_core import ACTIVE_STATUSES, RunStatus, run_progress

CHART_KEYS = ("loss", "eval_loss", *EVAL_KEYS, "learning_rate")
ELAPSED, ETA = "Elapsed", "ETA"  # labels of the status line's clock, ticked in the browser between reruns


def render_status(run: dict, version: dict) -> list[dict]:
    """Progress, elapsed / ETA, latest loss, best scores, and what the status means (no store read unless
    an evaluation or a loss point arrived since the last refresh); returns the clock to tick until the
    next refresh (``dashboard.live_poll.watch``)."""
    # The charts are drawn from the metric points, the row's step from a rate-limited heartbeat: the
    # progress shown is never behind the last plotted step.
    plotted = max((s for k, (_, s) in version["series"].items() if k in CHART_KEYS and s), default=None)
    best = live_data.best(run["id"], EVAL_KEYS, series_mark(version, EVAL_KEYS))
    latest = live_data.last(run["id"], "loss", series_mark(version, ("loss",)))
    return render_status_line(run, plotted, best, latest)


def status_clock(run: dict, plotted_step: int | None, prog: dict, before_eta: str) -> list[dict]:
    """Elapsed and ETA now and a minute on, both from the engine's ``run_progress``: while the step stands
    still they move linearly with time, so the browser can tick them between two reruns."""
    later = run_progress(with_plotted_step(run, plotted_step), now=time.time() + 60)
    clock = []
    if prog["elapsed_s"] is not None and later["elapsed_s"] is not None:
        clock.append(
            {"metric": ELAPSED, "format": "duration", "seconds": [prog["elapsed_s"], later["elapsed_s"]]}
        )
    if prog["eta_s"] is not None and later["eta_s"] is not None:  # None too while estimating
        eta = [prog["eta_s"], later["eta_s"]]
        clock += [
            {"metric": ETA, "format": "eta", "seconds": eta},
            {"before": before_eta, "format": "eta", "seconds": eta},
        ]
    return clock


def render_status_line(run: dict, plotted_step: int | None, best: dict, latest: dict | None) -> list[dict]:
    prog = data.progress(run, plotted_step)
    cfg = run.get("config") or {}
    epochs = cfg.get("num_train_epochs")
    step_text = f"step {prog['step']:,} / {prog['total_steps']:,}" if prog["total_steps"] else "preparing"
    epoch_text = (
        f" · epoch {prog['epoch']:.2f}" + (f" / {epochs:g}" if epochs else "") if prog.get("epoch") else ""
    )
    clock = []
    if run["status"] in ACTIVE_STATUSES:
        eta = format_eta(prog["eta_s"], run["status"], prog.get("estimating", False))
        before_eta = f"{status_label(run['status'])} · {step_text}{epoch_text} · {ETA} "
        text = before_eta + eta
        clock = status_clock(run, plotted_step, prog, before_eta)
    else:
        text = f"{status_label(run['status'])} · {step_text}{epoch_text}"
    st.progress(float(prog["fraction"] or 0.0), text=text)
    c = st.columns(5)
    if run["status"] in ACTIVE_STATUSES:
        c[0].metric(ELAPSED, format_duration(prog["elapsed_s"]))
        c[1].metric(ETA, eta)
    else:
        c[0].metric("Duration", format_duration(prog["elapsed_s"]))
        c[1].metric("Steps", f"{prog['step']:,}")
    # The latest logged loss, where the loss chart ends; Trainer's summary ``train_loss`` is the average
    # over the whole run, a different number, so it is only ever shown as "Avg train loss".
    if latest is not None:
        c[2].metric("Train loss", f"{latest['value']:.4f}", help=f"Latest logged, at step {latest['step']}")
    elif (avg := (run.get("summary") or {}).get("train_loss")) is not None:
        c[2].metric("Avg train loss", f"{avg:.4f}", help="Average over the run (no loss points recorded)")
    else:
        c[2].metric("Train loss", "—")
    f1_label = f1_legend(run_label_names(run, data.events(run)), cfg, "Best eval F1")  # says what F1 is
    for col, key, label in ((c[3], ACCURACY, "Best eval accuracy"), (c[4], F1, f1_label)):
        point = best.get(key)
        if point:
            where = (
                f"epoch {point['epoch']:.2f}" if point.get("epoch") is not None else f"step {point['step']}"
            )
            col.metric(label, f"{point['value']:.4f}", help=f"At {where}")
        else:
            col.metric(label, "—")
    render_wait_reason(run)  # a queued Ray run: why Ray has not started it
    if run["status"] == RunStatus.FAILED:
        st.error(f"**Failed:** {run.get('error') or 'unknown error'}", icon=":material/error:")
        if run.get("traceback"):
            with st.expander("Traceback", expanded=True):
                st.code(run["traceback"], language="python")
    elif run["status"] == RunStatus.STOPPED:
        st.info(
            "Stopped. **Resume** continues from the latest checkpoint with the same step count.",
            icon=":material/stop_circle:",
        )
    elif run["status"] == RunStatus.STOPPING:
        st.info(
            "Stopping: the worker saves a checkpoint at the next step, then exits.", icon=":material/pending:"
        )
    return clock
