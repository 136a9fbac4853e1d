"""Runs: every run in one live table, with filters and the actions that apply to one run.

The live parts (the table, the queue panel above it) are fragments with no timer, rerun by one small
watcher when what they are drawn from moved (``live_data.runs_state``: the runs' rows and the queue).
Where ``dashboard/serve.py`` serves the version route, the browser asks it every REFRESH_S (``?runs``,
one token for both parts, so one poller per page: a poller per part would double the questions for
nothing, both are a couple of indexed queries) and reruns the watcher only when the token moved: a quiet
page runs no script and sends nothing. Elsewhere the watcher reruns on a REFRESH_S timer. The sidebar's
engine line keeps its own poller (``?engine``, every 5 s): it is on every page, and it is what settles
runs whose worker died unseen. The empty page asks the same question, and redraws as the table once a
run appears. The Ray cluster panel keeps its timer (see ``views/cluster.py``).
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, live_data, live_poll, state, sweep_data
from dashboard.live import drawn_marks, record_drawn, rerun_parts, stale_parts
from dashboard.state import act
from dashboard.tables import RESUMABLE, filter_runs, run_labels, runs_table, status_label
from dashboard.views.cluster import clusters_changed, render_cluster
from dashboard.views.runs_queue import QUEUE, render_queue
from trainer_core import ACTIVE_STATUSES, ALL_STATUSES, where_it_runs

REFRESH_S = 2.0
SELECTED = "runs.selected"
TABLE = "runs.part.table"  # the table's fragment, rerun by the watcher when a run's row changed
DRAWN = "runs._drawn"
POLL = "runs.poll"  # the version poller's component (dashboard.live_poll), in the watcher
# Left out of the table so it fits the page; Compare's config diff shows them side by side.
HIDDEN_COLUMNS = ("id", "Epochs", "Batch")
COMPARED = 8  # runs the "Compare shown runs" link takes, so their curves stay readable


def timer() -> float | None:
    """The watcher's ``run_every``: none while the page polls the version route."""
    return None if live_poll.polling() else REFRESH_S


def poll(now: live_data.RunsState) -> None:
    """Mount the page's poller (``?runs``) in the current fragment, when the page polls."""
    if live_poll.polling() and live_poll.watch(POLL, {"runs": ""}, live_poll.runs_token(now), REFRESH_S):
        st.rerun(scope="app")  # the route is unreachable from this browser: declare the timers instead


def render_empty() -> None:
    st.fragment(run_every=timer())(render_empty_body)()


def render_empty_body() -> None:
    now = live_data.runs_state()
    if now.rows:
        data.forget_runs()  # the page's list of runs is cached for a second: read it again
        st.rerun()  # a run started elsewhere (another tab, the CLI): show the table
    poll(now)
    st.info(
        "No runs yet. Start one from **New run**: the built-in MiniLM checkpoint and Rotten Tomatoes "
        "reviews are preselected, so a first run is two clicks away.",
        icon=":material/rocket_launch:",
    )
    st.page_link(state.NEW_RUN_PAGE, label="Start a new run", icon=":material/add_circle:")
    st.caption(
        "Or from a terminal: `python -m trainer_core launch config.yaml` — runs started there show up here too."
    )


def shown_runs(runs: list[dict]) -> list[dict]:
    """The runs the filters above the table let through."""
    return filter_runs(
        runs,
        st.session_state.get("runs.status"),
        st.session_state.get("runs.search", ""),
        st.session_state.get("runs.sweep"),
    )


def render_filters() -> None:
    c1, c2, c3 = st.columns([2, 3, 2])
    # A sweep's trials are runs: this shows only theirs (the Sweep page links here with nothing else).
    names = {s["id"]: s["name"] for s in sweep_data.list_sweeps()}
    c3.multiselect(
        "Sweep",
        list(names),
        key="runs.sweep",
        placeholder="Any run",
        persist_state="session",
        format_func=lambda i: names.get(i, i),
    )
    c1.multiselect(
        "Status",
        ALL_STATUSES,
        key="runs.status",
        placeholder="All statuses",
        persist_state="session",
        format_func=status_label,
    )
    c2.text_input(
        "Search",
        key="runs.search",
        placeholder="name, id, note, tag, checkpoint or dataset",
        persist_state="session",
    )


def render_watcher() -> None:
    st.fragment(run_every=timer())(watch)()


def watch() -> None:
    """One query of the runs' rows (no config parsed) and two of the queue; the table and the queue are
    redrawn only when theirs changed (a live run's step, a status, a rename, a move ...)."""
    now = live_data.runs_state()
    stale = stale_parts(drawn_marks(DRAWN), {TABLE: now.rows, QUEUE: now.queue})
    if stale:
        data.forget_runs()  # the parts read the rows through a cache that may be a second old
        if TABLE in stale and clusters_changed(data.list_runs()):
            st.rerun(scope="app")  # a run went to a Ray cluster: its panel (and timer) is declared anew
        rerun_parts(stale)
    poll(now)


@st.fragment(key=TABLE)
def render_table() -> None:
    """The table, redrawn by the watcher when a run's row changed; the rest of the page does not rerun."""
    record_drawn(DRAWN, TABLE, live_data.runs_version())
    runs = data.list_runs()
    shown = shown_runs(runs)
    if not shown:
        st.info("No run matches these filters.")
        return
    progress = {r["id"]: data.progress(r) for r in shown}
    best = {r["id"]: data.best_metrics(r) for r in shown}
    table = runs_table(shown, progress, best)
    table["Where"] = [where_it_runs(r) for r in shown]  # this machine, another host, or a Ray cluster
    event = st.dataframe(
        table,
        placeholder="—",
        key="runs.table",
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        column_order=[c for c in table.columns if c not in HIDDEN_COLUMNS],
        # Widths that fit the page at 1400 px wide (auto-sized, the last columns ran off its edge).
        column_config={
            "Name": st.column_config.TextColumn("Name", width=120, pinned=True),
            "Status": st.column_config.TextColumn("Status", width=90),
            "Tags": st.column_config.TextColumn("Tags", width=90),
            "Trial": st.column_config.TextColumn("Trial", width=45, help="The sweep trial this run is"),
            "Progress": st.column_config.ProgressColumn(
                "Progress", min_value=0.0, max_value=1.0, format="percent", width=85
            ),
            "ETA": st.column_config.TextColumn("ETA", width=70),
            "Best acc": st.column_config.NumberColumn(
                "Best acc", format="%.3f", help="Best eval accuracy so far", width=62
            ),
            "Best F1": st.column_config.NumberColumn(
                "Best F1", format="%.3f", help="Best eval F1 so far", width=58
            ),
            "Checkpoint": st.column_config.TextColumn("Checkpoint", width=85),
            "Dataset": st.column_config.TextColumn("Dataset", width=105),
            "LR": st.column_config.NumberColumn("LR", format="%.0e", width=50),
            "Started": st.column_config.DatetimeColumn("Started", format="MM-DD HH:mm", width=88),
            "Duration": st.column_config.TextColumn("Duration", width=65),
            "Where": st.column_config.TextColumn("Where", width=110),
        },
    )
    st.caption(
        f"{len(shown)} of {len(runs)} runs · live: checked every {REFRESH_S:g} s, redrawn when a run changes"
        " · click a row to act on it"
    )
    rows = event.selection.rows if event is not None else []
    if rows:
        picked = table.index[rows[0]]
        if picked != st.session_state.get("runs._last_pick"):
            # Only a new click moves the action bar, so choosing there afterwards is not overridden.
            st.session_state["runs._last_pick"] = picked
            st.session_state[SELECTED] = picked
            st.rerun()  # the action bar lives outside this fragment


def render_actions(runs: list[dict]) -> None:
    labels = run_labels(runs)
    ids = [r["id"] for r in runs]
    if st.session_state.get(SELECTED) not in ids:
        st.session_state[SELECTED] = ids[0]
    with st.container(border=True):
        run_id = st.selectbox("Selected run", ids, key=SELECTED, format_func=lambda i: f"{labels[i]} · {i}")
        run = next(r for r in runs if r["id"] == run_id)
        active = run["status"] in ACTIVE_STATUSES
        bar = st.container(horizontal=True)
        state.run_link(bar, run_id)
        if bar.button("Stop", key="runs.stop", disabled=not active, icon=":material/stop:"):
            act(data.stop, run_id, f"Stop requested for {labels[run_id]}: it checkpoints at the next step.")
        if bar.button(
            "Resume",
            key="runs.resume",
            disabled=run["status"] not in RESUMABLE,
            icon=":material/play_arrow:",
        ):
            act(data.resume, run_id, f"{labels[run_id]} resumes from its latest checkpoint.")
        state.clone_link(bar, run_id)
        if run.get("sweep_id"):
            state.sweep_link(bar, run["sweep_id"], label=f"Sweep trial #{run['trial_number']}")
        with bar.popover("Rename", icon=":material/edit:"):
            new_name = st.text_input("New name", value=run["name"], key=f"runs.rename_to.{run_id}")
            if st.button("Save name", key="runs.rename_save"):
                act(data.rename, run_id, f"Renamed to {new_name.strip()}", new_name)
        if bar.button("Delete", key="runs.delete", icon=":material/delete:"):
            st.session_state["runs.confirm_delete"] = run_id
        # The filters are drawn above: the runs they show now are the ones the link compares.
        shown = shown_runs(runs)
        state.compare_link(
            bar,
            [r["id"] for r in shown[:COMPARED]],
            "Compare shown runs",
            help_=f"Compare the runs the table shows (the first {COMPARED}).",
        )
        render_delete_confirmation(run, labels)


def render_delete_confirmation(run: dict, labels: dict) -> None:
    if st.session_state.get("runs.confirm_delete") != run["id"]:
        return
    extra = " It is still training: its worker is killed." if run["status"] in ACTIVE_STATUSES else ""
    st.warning(
        f"Delete **{labels[run['id']]}** with its checkpoints, model and metrics? This cannot be undone.{extra}"
    )
    c1, c2, _ = st.columns([1, 1, 6])
    if c1.button("Yes, delete", key="runs.delete_confirm", type="primary"):
        st.session_state.pop("runs.confirm_delete", None)
        act(data.delete, run["id"], f"Deleted {labels[run['id']]}")
    if c2.button("Cancel", key="runs.delete_cancel"):
        st.session_state.pop("runs.confirm_delete", None)
        st.rerun()


def main() -> None:
    st.title("Runs")
    runs = data.list_runs()
    if not runs:
        render_empty()
        render_cluster()  # a configured cluster shows before its first run
        return
    render_queue(DRAWN)
    render_cluster()
    render_filters()
    render_table()
    render_watcher()  # after the table: a watcher reruns parts drawn before it
    render_actions(runs)


main()
