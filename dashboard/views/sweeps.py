"""The list of sweeps: the Sweep page's entry when no sweep is chosen (``/sweep``).

Not a page (st.navigation runs ``sweep.py``). The table is a fragment with no timer, rerun by a small
watcher when what it is drawn from moved (``sweep_data.sweeps_state``: each sweep's row, its runs per
status and its study's finished trials). Where ``dashboard/serve.py`` serves the version route, the
browser asks it every REFRESH_S (``?sweeps``) and reruns the watcher only when the answer moved, so a quiet
list runs no script and sends nothing; elsewhere the watcher reruns on a REFRESH_S timer.
"""

from __future__ import annotations

import streamlit as st

from dashboard import live_poll, state, sweep_data
from dashboard.live import drawn_marks, record_drawn, rerun_parts
from dashboard.sweep_tables import sweeps_table

REFRESH_S = 2.0
TABLE = "sweeps.part.table"  # the table's fragment, rerun by the watcher when a sweep's row changed
DRAWN = "sweeps._drawn"
POLL = "sweeps.poll"  # the version poller's component (dashboard.live_poll), in the watcher


def best_values(now: list[tuple]) -> dict[str, float | None]:
    """Each sweep's best objective so far, read once per number of its finished trials."""
    out = {}
    for sweep_id, *_, finished, _counts in now:
        best = sweep_data.best(sweep_id, finished)
        out[sweep_id] = best["value"] if best else None
    return out


@st.fragment(key=TABLE)
def render_sweeps() -> None:
    now = sweep_data.sweeps_state()
    record_drawn(DRAWN, TABLE, now)
    sweeps = sweep_data.list_sweeps()
    if not sweeps:
        st.info(
            "No sweeps yet. A sweep searches hyperparameters with Optuna: every trial is a run, shown in "
            "Runs and Compare too.",
            icon=":material/tune:",
        )
        st.page_link(state.NEW_SWEEP_PAGE, label="Start a new sweep", icon=":material/add_chart:")
        st.caption("Or from a terminal: `python -m trainer_core sweep sweep.yaml`.")
        return
    table = sweeps_table(sweeps, best_values(now))
    st.dataframe(
        table,
        key="sweeps.table",
        hide_index=True,
        placeholder="—",
        column_config={
            "Best": st.column_config.NumberColumn("Best", format="%.4f", help="Best objective so far"),
            "Created": st.column_config.DatetimeColumn("Created", format="MM-DD HH:mm"),
        },
    )
    st.caption(
        f"{len(sweeps)} sweep{'s' if len(sweeps) != 1 else ''} · live: checked every {REFRESH_S:g} s, "
        "redrawn when a sweep changes"
    )
    bar = st.container(horizontal=True)
    for s in sweeps:
        state.sweep_link(bar, s["id"], label=s["name"])


def watch() -> None:
    """One small query of the sweeps and their runs per status; the table is redrawn only when it moved."""
    now = sweep_data.sweeps_state()
    if drawn_marks(DRAWN).get(TABLE) != now:
        sweep_data.forget_sweeps()  # the table reads the sweeps through a cache that may be a second old
        rerun_parts([TABLE])
    if live_poll.polling() and live_poll.watch(POLL, {"sweeps": ""}, live_poll.sweeps_token(now), REFRESH_S):
        st.rerun(scope="app")  # the route is unreachable from this browser: declare the timer instead


def main() -> None:
    st.title("Sweeps")
    st.page_link(state.NEW_SWEEP_PAGE, label="New sweep", icon=":material/add_chart:")
    render_sweeps()
    # After the table: a watcher reruns parts drawn before it. A timer only where the page does not poll.
    st.fragment(run_every=None if live_poll.polling() else REFRESH_S)(watch)()
