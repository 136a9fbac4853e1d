"""Run: one run, live while it trains, and its outcome once done.

While the run is active a small watcher (``dashboard.live``) redraws the status line and reruns only the
parts whose data changed (actions, loss, evaluation, learning-rate chart, log and events). The browser
asks the server's version route every 1-2 s and reruns the watcher only when the answer moved
(``dashboard.live_poll``), so a refresh with nothing new runs no script and sends nothing; where that
route is not served, the watcher reruns on a timer instead, and a refresh with nothing new sends no chart.
A finished run's page does not refresh; the outcome of a completed run is drawn by ``run_outcome``.

The URL names the run (``?run=<id>``), so a run's page can be bookmarked and shared.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard import data, live_data, live_poll, state
from dashboard.figures import eval_figure, loss_figure, lr_figure
from dashboard.live import (
    FAST_S,
    drawn_marks,
    record_drawn,
    refresh_interval,
    rerun_parts,
    series_mark,
    stale_parts,
)
from dashboard.state import ACTION_ERRORS, act
from dashboard.tables import (
    ACCURACY,
    EVAL_KEYS,
    F1,
    RESUMABLE,
    dataset_label,
    f1_legend,
    format_timestamp,
    run_label_names,
    run_labels,
    short_checkpoint,
)
from dashboard.views.run_outcome import CHART_CONFIG, render_outcome
from dashboard.views.run_resources import render_resources
from dashboard.views.run_status import render_status
from trainer_core import ACTIVE_STATUSES, RunStatus, is_system_series, where_it_runs

PICKED = "run.picked"
SMOOTHING = "run.smoothing"
FIGURES = "run._figures"  # chart key -> (what it was drawn from, the figure)
DRAWN = "run._drawn"  # part -> what it was last drawn from
EVERY = "run._every"  # the watcher's refresh period now
WATCHING = "run._watching"  # False while the page's own run draws every part (nothing to rerun yet)
POLL = "run.poll"  # the version poller's component (dashboard.live_poll), in the watcher
# The fragments of the live panel, by their st.fragment key (the watcher reruns them by these names).
PARTS = {name: f"run.part.{name}" for name in ("pace", "actions", "loss", "eval", "lr", "log", "resources")}


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
        + f" · runs on {where_it_runs(run)}"
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
# the live part: a watcher on a timer (status line), and parts redrawn only when their data changed
# --------------------------------------------------------------------------------------------------


def part_marks(version: dict) -> dict[str, tuple]:
    """What each part of the panel is drawn from; a part whose mark changed is redrawn."""
    row = (version["status"], version.get("attempt"))
    return {
        PARTS["actions"]: row,
        PARTS["loss"]: (*series_mark(version, ("loss", "eval_loss")), st.session_state.get(SMOOTHING, 0.0)),
        PARTS["eval"]: (*series_mark(version, EVAL_KEYS), version.get("last_event")),
        PARTS["lr"]: series_mark(version, ("learning_rate",)),
        # The log changes on every step (progress bars); it is redrawn with the rest of what the run records.
        PARTS["log"]: (*row, version.get("last_event"), sum(n for n, _ in version["series"].values())),
        PARTS["resources"]: (
            *row,
            *series_mark(version, sorted(filter(is_system_series, version["series"]))),
        ),
    }


@st.fragment(key=PARTS["pace"])
def render_live(run_id: str) -> None:
    """Holds the watcher, declared with the refresh period the run needs now (rerun to change it).

    While the page polls the version route (``dashboard.live_poll``) the watcher has no timer: only a
    change the poller saw reruns it. Else its ``run_every`` timer reruns it every FAST_S or SLOW_S.
    """
    run, version = current(run_id)
    every = refresh_interval(run, version, time.time()) if run is not None else FAST_S
    st.session_state[EVERY] = every
    st.fragment(run_every=None if live_poll.polling() else every)(render_watcher)(run_id)


def render_watcher(run_id: str) -> None:
    """Every refresh: one indexed question to the store, the status line, and reruns of changed parts."""
    run, version = current(run_id)
    if run is None or run["status"] not in ACTIVE_STATUSES:
        # Deleted, or finished: redraw the whole page in its final layout, outcome included.
        data.forget_runs()
        st.rerun()
    clock = render_status(run, version)
    every = refresh_interval(run, version, time.time())
    polled = live_poll.polling()
    if polled and live_poll.watch(POLL, {"run": run_id}, live_poll.run_token(version), every, clock):
        polled = False  # the browser cannot reach the route: the watcher goes back to its timer
        every = None
    if not st.session_state.get(WATCHING):
        return  # the page's own run draws every part after this one
    stale = stale_parts(drawn_marks(DRAWN), part_marks(version))
    if not polled and every != st.session_state.get(EVERY):
        stale.append(PARTS["pace"])  # declare the watcher again, with its timer at the new period
    rerun_parts(stale)


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


def current(run_id: str) -> tuple[dict, dict] | tuple[None, None]:
    """The run's row with its live columns as of now, and its ``run_version`` (None, None if deleted)."""
    version = live_data.run_version(run_id)
    run = live_data.run(run_id, version) if version is not None else None
    return (None, None) if run is None else (run, version)


def plot(key: str, signature: tuple, build) -> None:
    """Draw a chart, re-using the figure built for the same data (a full page run redraws every part)."""
    cache = st.session_state.setdefault(FIGURES, {})
    kept = cache.get(key)
    if kept is not None and kept[0] == signature:
        figure = kept[1]
    else:
        figure = build()
        cache[key] = (signature, figure)
    st.plotly_chart(figure, key=key, config=CHART_CONFIG)


@st.fragment(key=PARTS["actions"])
def render_actions_part(run_id: str) -> None:
    run, version = current(run_id)
    if run is not None:
        render_actions(run)
        record_drawn(DRAWN, PARTS["actions"], part_marks(version)[PARTS["actions"]])


@st.fragment(key=PARTS["loss"])
def render_loss_part(run_id: str) -> None:
    """The training and evaluation loss, and the smoothing of the training loss (rerun this part only)."""
    run, version = current(run_id)
    if run is None:
        return
    mark = part_marks(version)[PARTS["loss"]]
    smoothing = st.session_state.get(SMOOTHING, 0.0)
    plot(
        "run.loss_chart",
        (run_id, mark),
        lambda: loss_figure(
            live_data.series(run_id, "loss", mark), live_data.series(run_id, "eval_loss", mark), smoothing,
            uirevision=run_id,
        ),
    )  # fmt: skip
    st.slider(
        "Train-loss smoothing",
        0.0,
        0.99,
        key=SMOOTHING,
        step=0.01,
        help="Exponential moving average, as in TensorBoard; the raw curve stays visible, faint.",
    )
    record_drawn(DRAWN, PARTS["loss"], mark)


@st.fragment(key=PARTS["eval"])
def render_eval_part(run_id: str) -> None:
    """Accuracy and F1 per evaluation, the one that picks the best model marked."""
    run, version = current(run_id)
    if run is None:
        return
    mark = part_marks(version)[PARTS["eval"]]
    cfg = run.get("config") or {}
    best_key = cfg.get("metric_for_best_model") if cfg.get("load_best_model_at_end") else None
    if best_key and not best_key.startswith("eval_"):
        best_key = "eval_" + best_key
    plot(
        "run.eval_chart",
        (run_id, mark, best_key),
        lambda: eval_figure(
            {k: live_data.series(run_id, k, mark) for k in EVAL_KEYS},
            best_key or ACCURACY,
            uirevision=run_id,
            names={F1: f1_legend(run_label_names(run, data.events(run)), cfg)},
        ),
    )
    record_drawn(DRAWN, PARTS["eval"], mark)


@st.fragment(key=PARTS["lr"])
def render_lr_part(run_id: str) -> None:
    run, version = current(run_id)
    if run is None:
        return
    mark = part_marks(version)[PARTS["lr"]]
    plot(
        "run.lr_chart",
        (run_id, mark),
        lambda: lr_figure(live_data.series(run_id, "learning_rate", mark), uirevision=run_id),
    )
    record_drawn(DRAWN, PARTS["lr"], mark)


@st.fragment(key=PARTS["log"])
def render_log_part(run_id: str) -> None:
    """The worker's log and the run's lifecycle events (launched, resumed, stop requested ...)."""
    run, version = current(run_id)
    if run is None:
        return
    tail = data.log_tail(run, lines=200)
    with st.expander(
        "Worker log (last 200 lines)",
        expanded=run["status"] == RunStatus.FAILED and not run.get("traceback"),
    ):
        st.code(tail or "(nothing logged yet)", language="text", height=300)
    events = data.events(run)
    if events:
        with st.expander(f"Events ({len(events)})"):
            for e in events[-30:]:
                st.markdown(f"`{format_timestamp(e['time'])}` **{e['kind']}** — {e['message']}")
    record_drawn(DRAWN, PARTS["log"], part_marks(version)[PARTS["log"]])


@st.fragment(key=PARTS["resources"])
def render_resources_part(run_id: str) -> None:
    """CPU, memory and GPU memory of the run's processes (redrawn when a heartbeat adds a sample)."""
    run, version = current(run_id)
    if run is not None:
        render_resources(run)
        record_drawn(DRAWN, PARTS["resources"], part_marks(version)[PARTS["resources"]])


def render_parts(run_id: str) -> None:
    """Actions, charts, log and events: each redrawn on its own, only when what it shows changed."""
    render_actions_part(run_id)
    left, right = st.columns(2)
    with left:
        render_loss_part(run_id)
    with right:
        render_eval_part(run_id)
    left, right = st.columns(2)
    with left:
        render_lr_part(run_id)
    with right:
        render_log_part(run_id)
    render_resources_part(run_id)


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
    run, version = current(run_id)
    if run is None:
        st.warning(f"Run {run_id} does not exist.")
        return
    render_header(run)
    st.session_state[WATCHING] = False
    try:
        if run["status"] in ACTIVE_STATUSES:
            render_live(run_id)
        else:
            render_status(run, version)
        render_parts(run_id)
    finally:
        st.session_state[WATCHING] = True
    if run["status"] == RunStatus.COMPLETED:
        render_outcome(run)


main()
