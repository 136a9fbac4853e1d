"""Run: one run, live while it trains (a fragment refreshes every ~1.5 s), and its outcome once done.

A queued or stopping run refreshes every few seconds, a finished one not at all. The outcome of a
completed run is drawn by ``run_outcome``.

The URL names the run (``?run=<id>``), so a run's page can be bookmarked and shared.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, state
from dashboard.figures import eval_figure, loss_figure, lr_figure
from dashboard.state import ACTION_ERRORS, act
from dashboard.tables import (
    ACCURACY,
    EVAL_KEYS,
    F1,
    RESUMABLE,
    dataset_label,
    f1_legend,
    format_duration,
    format_eta,
    format_timestamp,
    run_label_names,
    run_labels,
    short_checkpoint,
    status_label,
)
from dashboard.views.run_outcome import CHART_CONFIG, render_outcome
from trainer_core import ACTIVE_STATUSES, RunStatus

REFRESH_S = 1.5  # while it trains
WAITING_REFRESH_S = 3.0  # queued (waiting for its worker) or stopping (saving a checkpoint): little moves
CHART_KEYS = ("loss", "eval_loss", *EVAL_KEYS, "learning_rate")
PICKED = "run.picked"
FIGURES = "run._figures"  # chart key -> (signature of its data, the figure drawn from it)


def pick_run(runs: list[dict]) -> str | None:
    """The run to show: the URL's ``?run=<id>`` if it names one, else the last one picked here.

    The picker is not bound to the URL with ``bind=``: a bound selectbox writes its displayed label
    into the URL, and links should carry the bare id. The URL and the picker are kept in step by hand.
    """
    labels = run_labels(runs)
    ids = [r["id"] for r in runs]
    wanted = st.query_params.get(state.RUN_PARAM)
    if wanted in ids and wanted != st.session_state.get(PICKED):
        st.session_state[PICKED] = wanted
    elif wanted and wanted not in ids:
        st.warning(f"There is no run `{wanted}` (it may have been deleted).")
    if st.session_state.get(PICKED) not in ids:
        st.session_state[PICKED] = None
    run_id = st.selectbox(
        "Run",
        ids,
        key=PICKED,
        index=None,
        placeholder="Choose a run",
        persist_state="session",
        # No status in the label: a selected option's text is not redrawn when only its label changes.
        format_func=lambda i: f"{labels[i]} · {i}",
    )
    if run_id is not None and st.query_params.get(state.RUN_PARAM) != run_id:
        st.query_params[state.RUN_PARAM] = run_id  # the address bar names the run shown (bookmarkable)
    return run_id


def render_header(run: dict) -> None:
    """What does not change while the run trains (the status is in the live panel below)."""
    cfg = run.get("config") or {}
    st.title(run["name"])
    st.caption(
        f"Checkpoint `{short_checkpoint(cfg.get('model_name_or_path'))}` · "
        f"dataset `{dataset_label(cfg)}` · created {format_timestamp(run.get('created_at'))} · id `{run['id']}`"
        + (f" · attempt {run['attempt'] + 1}" if run.get("attempt") else "")
    )
    if run.get("tags"):
        row = st.container(horizontal=True, gap="small")
        for tag in run["tags"]:
            row.badge(tag, color="blue")
    if run.get("note"):
        st.markdown(run["note"])
    render_annotations(run)


def render_annotations(run: dict) -> None:
    """Edit the run's note and tags (searchable on the Runs page). Keys carry the run id, so another run's
    text is never shown in this one's fields."""
    run_id = run["id"]
    with st.expander("Note & tags", icon=":material/sell:"):
        note = st.text_area(
            "Note", value=run.get("note") or "", key=f"run.note.{run_id}", placeholder="What this run tried"
        )
        tags = st.text_input(
            "Tags",
            value=", ".join(run.get("tags") or []),
            key=f"run.tags.{run_id}",
            placeholder="baseline, lr-sweep",
            help="Separated by commas.",
        )
        if st.button("Save", key="run.annotate", icon=":material/save:"):
            act(data.annotate, run_id, "Note and tags saved", note, tags.split(","))


# --------------------------------------------------------------------------------------------------
# the live part: status, progress, charts, log
# --------------------------------------------------------------------------------------------------


def refresh_every(status: str) -> float:
    return REFRESH_S if status == RunStatus.RUNNING else WAITING_REFRESH_S


@st.fragment(run_every=REFRESH_S)
def render_training(run_id: str) -> None:
    render_panel(run_id, refresh=REFRESH_S)


@st.fragment(run_every=WAITING_REFRESH_S)
def render_waiting(run_id: str) -> None:
    render_panel(run_id, refresh=WAITING_REFRESH_S)


def render_panel(run_id: str, refresh: float | None = None) -> None:
    """Status, actions, charts and events; ``refresh`` is the period of the fragment it runs in, if any."""
    run = data.get_run(run_id)
    if run is None:
        st.warning("This run no longer exists (it was deleted).")
        return
    status = run["status"]
    if refresh is not None and (status not in ACTIVE_STATUSES or refresh_every(status) != refresh):
        # It finished (redraw the whole page in its final layout, outcome included), or it started or
        # began stopping (switch to the refresh that suits it).
        st.rerun()
    live = status in ACTIVE_STATUSES
    last = data.last_metrics(run) if live else None
    # The charts are drawn from the metric points, the row's step from a rate-limited heartbeat: the
    # progress shown is never behind the last plotted step.
    plotted = max(
        (int(p["step"]) for k, p in (last or {}).items() if k in CHART_KEYS and p.get("step") is not None),
        default=None,
    )
    render_status(run, plotted)
    render_actions(run)
    render_charts(run, last)
    render_events(run)


def render_status(run: dict, plotted_step: int | None = None) -> None:
    prog = data.progress(run, plotted_step)
    cfg = run.get("config") or {}
    epochs = cfg.get("num_train_epochs")
    step_text = f"step {prog['step']:,} / {prog['total_steps']:,}" if prog["total_steps"] else "preparing"
    epoch_text = (
        f" · epoch {prog['epoch']:.2f}" + (f" / {epochs:g}" if epochs else "") if prog.get("epoch") else ""
    )
    if run["status"] in ACTIVE_STATUSES:
        eta = format_eta(prog["eta_s"], run["status"], prog.get("estimating", False))
        text = f"{status_label(run['status'])} · {step_text}{epoch_text} · ETA {eta}"
    else:
        text = f"{status_label(run['status'])} · {step_text}{epoch_text}"
    st.progress(float(prog["fraction"] or 0.0), text=text)
    best = data.best_metrics(run)
    c = st.columns(5)
    if run["status"] in ACTIVE_STATUSES:
        c[0].metric("Elapsed", format_duration(prog["elapsed_s"]))
        c[1].metric("ETA", format_eta(prog["eta_s"], run["status"], prog.get("estimating", False)))
    else:
        c[0].metric("Duration", format_duration(prog["elapsed_s"]))
        c[1].metric("Steps", f"{prog['step']:,}")
    # The latest logged loss, where the loss chart ends; Trainer's summary ``train_loss`` is the average
    # over the whole run, a different number, so it is only ever shown as "Avg train loss".
    latest = data.last_metrics(run).get("loss")
    if latest is not None:
        c[2].metric("Train loss", f"{latest['value']:.4f}", help=f"Latest logged, at step {latest['step']}")
    elif (avg := (run.get("summary") or {}).get("train_loss")) is not None:
        c[2].metric("Avg train loss", f"{avg:.4f}", help="Average over the run (no loss points recorded)")
    else:
        c[2].metric("Train loss", "—")
    for col, key, label in ((c[3], ACCURACY, "Best eval accuracy"), (c[4], F1, "Best eval F1")):
        point = best.get(key)
        if point:
            where = (
                f"epoch {point['epoch']:.2f}" if point.get("epoch") is not None else f"step {point['step']}"
            )
            col.metric(label, f"{point['value']:.4f}", help=f"At {where}")
        else:
            col.metric(label, "—")
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


def render_resume(bar, run_id: str) -> None:
    """Resume, saying where from; incomplete checkpoints skipped, and a confirmation if all were lost."""
    try:
        plan = data.resume_plan(run_id)
    except ACTION_ERRORS as exc:
        st.error(getattr(exc, "message", None) or str(exc))
        return
    sentence = plan["message"][0].upper() + plan["message"][1:] + "."
    if plan["skipped"] or plan["checkpoints_lost"]:
        st.warning(sentence, icon=":material/warning:")
    from_scratch = plan["checkpoints_lost"] and st.checkbox(
        "Restart from step 0 and clear this run's curves", key="run.resume_from_scratch"
    )
    if bar.button(
        "Resume",
        key="run.resume",
        icon=":material/play_arrow:",
        type="primary",
        disabled=plan["checkpoints_lost"] and not from_scratch,
        help=sentence,
    ):
        act(data.resume, run_id, sentence, bool(from_scratch))


def render_actions(run: dict) -> None:
    """The actions that make sense in the run's state (the keys stay the same for scripted tests)."""
    run_id, status = run["id"], run["status"]
    bar = st.container(horizontal=True)
    if status in (RunStatus.QUEUED, RunStatus.RUNNING) and bar.button(
        "Stop", key="run.stop", icon=":material/stop:", help="Checkpoint at the next step, then stop."
    ):
        act(data.stop, run_id, "Stop requested: the run checkpoints at its next step.")
    if status in RESUMABLE:
        render_resume(bar, run_id)
    state.clone_link(bar, run_id)
    if data.model_dir(run) is not None:
        state.clone_link(bar, run_id, finetune=True)


def chart_signature(run: dict, keys: tuple[str, ...], last: dict | None, *extra) -> tuple | None:
    """What a chart of ``keys`` is drawn from: the latest point of each series, and ``extra`` settings.

    None when unknown (a finished run: its page does not refresh, so there is nothing to re-use).
    """
    if last is None:
        return None
    points = tuple((k, (last.get(k) or {}).get("step"), (last.get(k) or {}).get("value")) for k in keys)
    return (run["id"], run.get("attempt"), points, *extra)


def plot(key: str, signature: tuple | None, build) -> None:
    """Draw a chart, re-using the figure of the previous refresh when its data has not changed.

    A fragment must emit every element on each run (what it does not emit disappears), so an unchanged
    chart is sent again as the very same figure: no store reads and no figure building here, and an
    identical element, which the browser does not draw again.
    """
    cache = st.session_state.setdefault(FIGURES, {})
    kept = cache.get(key)
    if signature is not None and kept is not None and kept[0] == signature:
        figure = kept[1]
    else:
        figure = build()
        cache[key] = (signature, figure)
    st.plotly_chart(figure, key=key, config=CHART_CONFIG)


def render_charts(run: dict, last: dict | None = None) -> None:
    """Loss, evaluation and learning-rate charts; ``last``: each series' latest point (live runs only)."""
    cfg = run.get("config") or {}
    best_key = cfg.get("metric_for_best_model") if cfg.get("load_best_model_at_end") else None
    if best_key and not best_key.startswith("eval_"):
        best_key = "eval_" + best_key
    smoothing = st.session_state.get("run.smoothing", 0.0)
    got: dict | None = None

    def series(key: str):
        nonlocal got
        if got is None:  # read the store only when some chart has changed
            keys = set(data.metric_keys(run))
            got = {k: data.series(run, k) for k in CHART_KEYS if k in keys}
        return got.get(key)

    left, right = st.columns(2)
    with left:
        plot(
            "run.loss_chart",
            chart_signature(run, ("loss", "eval_loss"), last, smoothing),
            lambda: loss_figure(series("loss"), series("eval_loss"), smoothing, uirevision=run["id"]),
        )
    with right:
        plot(
            "run.eval_chart",
            chart_signature(run, EVAL_KEYS, last, best_key),
            lambda: eval_figure(
                {k: series(k) for k in EVAL_KEYS},
                best_key or ACCURACY,
                uirevision=run["id"],
                names={F1: f1_legend(run_label_names(run, data.events(run)))},
            ),
        )
    left, right = st.columns(2)
    with left:
        plot(
            "run.lr_chart",
            chart_signature(run, ("learning_rate",), last),
            lambda: lr_figure(series("learning_rate"), uirevision=run["id"]),
        )
    with right:
        st.slider(
            "Train-loss smoothing",
            0.0,
            0.99,
            key="run.smoothing",
            step=0.01,
            help="Exponential moving average, as in TensorBoard; the raw curve stays visible, faint.",
        )
        tail = data.log_tail(run, lines=200)
        with st.expander(
            "Worker log (last 200 lines)",
            expanded=run["status"] == RunStatus.FAILED and not run.get("traceback"),
        ):
            st.code(tail or "(nothing logged yet)", language="text", height=300)


def render_events(run: dict) -> None:
    """Lifecycle events (launched, resumed, stop requested ...) as a short list."""
    events = data.events(run)
    if not events:
        return
    with st.expander(f"Events ({len(events)})"):
        for e in events[-30:]:
            st.markdown(f"`{format_timestamp(e['time'])}` **{e['kind']}** — {e['message']}")


# --------------------------------------------------------------------------------------------------


def main() -> None:
    runs = data.list_runs()
    if not runs:
        st.title("Run")
        st.info(
            "No runs yet: start one from New run, then watch it train here.", icon=":material/rocket_launch:"
        )
        st.page_link(state.NEW_RUN_PAGE, label="Start a new run", icon=":material/add_circle:")
        return
    run_id = pick_run(runs)
    if run_id is None:
        st.info("Choose a run above, or open one from the Runs page.")
        return
    run = data.get_run(run_id)
    if run is None:
        st.warning(f"Run {run_id} does not exist.")
        return
    render_header(run)
    if run["status"] == RunStatus.RUNNING:
        render_training(run_id)
    elif run["status"] in ACTIVE_STATUSES:
        render_waiting(run_id)
    else:
        render_panel(run_id)
        if run["status"] == RunStatus.COMPLETED:
            render_outcome(run)


main()
