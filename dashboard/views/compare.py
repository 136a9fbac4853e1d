"""Compare: overlay any metric of several runs, rank them, and see how their configs differ.

While one of the compared runs trains, the chart is a fragment with no timer, rerun by a small watcher
when one of the runs logged (``live_data.compare_version``). Where ``dashboard/serve.py`` serves the
version route, the browser asks it every REFRESH_S (``?compare=<id>,<id>``) and reruns the watcher only
when the answer moved, so a quiet comparison runs no script; elsewhere the watcher reruns on a timer.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, live_data, live_poll, state
from dashboard.figures import X_AXES, compare_figure
from dashboard.live import drawn_marks, record_drawn, rerun_parts
from dashboard.tables import (
    ACCURACY,
    F1,
    comparable_config,
    config_diff_caption,
    config_diff_table,
    f1_text,
    format_duration,
    rank_runs,
    run_label_names,
    run_labels,
    status_label,
)
from trainer_core import ACTIVE_STATUSES, RunStatus, config_diff

REFRESH_S = 2.0
MAX_RUNS = live_poll.COMPARE_MAX_RUNS
CHART = "compare.part.chart"  # the chart's fragment, rerun by the watcher when a compared run logged
DRAWN = "compare._drawn"
POLL = "compare.poll"  # the version poller's component (dashboard.live_poll), in the watcher
ADDRESS = "compare._address"  # the ?runs= this session last wrote: a different one came from a link
# Shown first in the metric pickers: what people compare most.
PREFERRED = (ACCURACY, F1, "eval_loss", "loss", "learning_rate", "grad_norm")


def default_selection(runs: list[dict]) -> list[str]:
    """The latest completed runs, or simply the latest runs when fewer than two completed."""
    completed = [r["id"] for r in runs if r["status"] == RunStatus.COMPLETED]
    return (completed if len(completed) >= 2 else [r["id"] for r in runs])[:3]


def choose_runs(runs: list[dict], ids: list[str]) -> list[str]:
    """The runs to compare: those a link or a bookmark names (``?runs=a,b``), else this session's choice,
    else the latest runs. Runs the address names that no longer exist are said and left out."""
    text = st.query_params.get(state.COMPARE_PARAM)
    if text is None or text == st.session_state.get(ADDRESS):
        # The address is the one this page wrote: the multiselect holds the choice (and any change to it).
        return [i for i in st.session_state.get(state.COMPARE_KEY) or default_selection(runs) if i in ids]
    asked = state.parse_run_ids(text) or []
    missing = [i for i in asked if i not in ids]
    if missing:
        st.warning(
            f"No run {', '.join(f'`{i}`' for i in missing)} (deleted, or in another runs folder): "
            "left out of the comparison.",
            icon=":material/warning:",
        )
    return [i for i in asked if i in ids][:MAX_RUNS]


def write_address(run_ids: list[str]) -> None:
    """Make the address name the runs on screen, so the comparison can be bookmarked or sent."""
    text = ",".join(run_ids)
    st.session_state[ADDRESS] = text
    if st.query_params.get(state.COMPARE_PARAM) != text:
        st.query_params[state.COMPARE_PARAM] = text


def ordered_keys(keys: set[str]) -> list[str]:
    return [k for k in PREFERRED if k in keys] + sorted(keys - set(PREFERRED))


def render_chart(run_ids: list[str], labels: dict) -> None:
    """The overlaid curves; redrawn by the watcher only while one of the runs is still training."""
    runs = [r for r in (data.get_run(i) for i in run_ids) if r is not None]
    keys: set[str] = set()
    for run in runs:
        keys.update(data.metric_keys(run))
    if not keys:
        st.info("None of these runs has logged a metric yet.")
        return
    options = ordered_keys(keys)
    if st.session_state.get("compare.metric") not in options:
        st.session_state["compare.metric"] = options[0]
    c1, c2, c3 = st.columns([2, 2, 2])
    metric = c1.selectbox("Metric", options, key="compare.metric")
    x = c2.radio("X axis", list(X_AXES), key="compare.x", horizontal=True, format_func=X_AXES.get)
    smoothing = c3.slider(
        "Smoothing",
        0.0,
        0.99,
        key="compare.smoothing",
        step=0.01,
        help="Exponential moving average (TensorBoard's); raw curves stay visible, faint.",
    )
    long = data.metrics_long(runs, metric)
    origins = {r["id"]: r.get("started_at") for r in runs}
    st.plotly_chart(
        compare_figure(long, metric, x=x, smoothing=smoothing, labels=labels, origins=origins),
        key="compare.chart",
        config={"displaylogo": False},
    )


def render_watcher(run_ids: list[str]) -> None:
    """The watcher: a timer fragment only where the page does not poll the version route."""
    st.fragment(run_every=None if live_poll.polling() else REFRESH_S)(watch)(run_ids)


def watch(run_ids: list[str]) -> None:
    """The runs' versions; the chart is redrawn only when one of them logged."""
    now = live_data.compare_version(run_ids)
    if drawn_marks(DRAWN).get(CHART) != now:
        data.forget_runs()  # the chart reads the rows through a cache that may be a second old
        rerun_parts([CHART])
    if live_poll.polling() and live_poll.watch(
        POLL, {"compare": ",".join(run_ids)}, live_poll.compare_token(now), REFRESH_S
    ):
        st.rerun(scope="app")  # the route is unreachable from this browser: declare the timer instead


@st.fragment(key=CHART)
def render_live_chart(run_ids: list[str], labels: dict) -> None:
    record_drawn(DRAWN, CHART, live_data.compare_version(run_ids))
    render_chart(run_ids, labels)


def render_ranking(runs: list[dict], labels: dict) -> None:
    st.subheader("Ranking")
    keys: set[str] = set()
    for run in runs:
        keys.update(k for k in data.metric_keys(run) if k.startswith("eval_"))
    options = ordered_keys(keys) or [ACCURACY]
    if st.session_state.get("compare.rank_metric") not in options:
        st.session_state["compare.rank_metric"] = options[0]
    metric = st.selectbox("Rank by (best value of each run)", options, key="compare.rank_metric")
    best = {r["id"]: data.best_metrics(r, (metric,)).get(metric) for r in runs}
    extra = {}
    for r in runs:
        prog = data.progress(r)
        extra[r["id"]] = {
            "Status": status_label(r["status"]),
            "Duration": format_duration(prog.get("elapsed_s")),
        }
        if metric == F1:  # each run's own F1: a class's F1 or an average, as its config chose
            extra[r["id"]]["F1 is"] = f1_text(run_label_names(r, data.events(r)), r.get("config")) or "—"
    table = rank_runs(best, metric, labels, extra)
    meanings = {e["F1 is"] for e in extra.values() if e.get("F1 is", "—") != "—"}
    if len(meanings) > 1:
        st.warning(
            f"These runs' F1 are different scores ({'; '.join(sorted(meanings))}): the ranking puts unlike "
            "numbers side by side. Compare runs with the same F1 choice, or rank by accuracy.",
            icon=":material/compare_arrows:",
        )
    st.dataframe(
        table,
        hide_index=True,
        placeholder="—",
        key="compare.ranking",
        column_config={
            metric: st.column_config.NumberColumn(metric, format="%.4f"),
            "Epoch": st.column_config.NumberColumn("Epoch", format="%.2f"),
        },
    )


def render_config_diff(runs: list[dict], labels: dict) -> None:
    st.subheader("Config differences")
    if len(runs) < 2:
        st.info("Choose a second run to see how the configs differ.")
        return
    diff = config_diff({r["id"]: comparable_config(r.get("config") or {}) for r in runs})
    if not diff:
        st.info("These runs have the same config.")
        return
    st.caption(config_diff_caption(len(diff)))
    st.dataframe(config_diff_table(diff, labels), key="compare.diff")


def main() -> None:
    st.title("Compare runs")
    runs = data.list_runs()
    if not runs:
        st.info(
            "Nothing to compare yet: start two runs with different settings, then come back.",
            icon=":material/rocket_launch:",
        )
        st.page_link(state.NEW_RUN_PAGE, label="Start a new run", icon=":material/add_circle:")
        return
    labels = run_labels(runs)
    ids = [r["id"] for r in runs]
    st.session_state[state.COMPARE_KEY] = choose_runs(runs, ids)
    run_ids = st.multiselect(
        "Runs",
        ids,
        key=state.COMPARE_KEY,
        max_selections=MAX_RUNS,
        persist_state="session",
        format_func=lambda i: f"{labels[i]} · {i}",
        placeholder="Choose runs to compare",
    )
    write_address(run_ids)
    if not run_ids:
        st.info("Choose two or more runs above.")
        return
    selected = [r for r in runs if r["id"] in run_ids]
    if any(r["status"] in ACTIVE_STATUSES for r in selected):
        render_live_chart(run_ids, labels)
        render_watcher(run_ids)  # after the chart: a watcher reruns parts drawn before it
    else:
        render_chart(run_ids, labels)
    render_ranking(selected, labels)
    render_config_diff(selected, labels)


main()
