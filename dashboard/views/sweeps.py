"""The list of sweeps: the Sweep page's entry when no sweep is chosen (``/sweep``).

Not a page (st.navigation runs ``sweep.py``).
"""

from __future__ import annotations

import streamlit as st

from dashboard import state, sweep_data
from dashboard.sweep_tables import sweeps_table

REFRESH_S = 2.0


def best_values(sweeps: list[dict]) -> dict[str, float | None]:
    """Each sweep's best objective so far, from its detail (read once per version of the sweep)."""
    out = {}
    for s in sweeps:
        version = sweep_data.version(s["id"])
        best = sweep_data.detail(version)["best"] if version else None
        out[s["id"]] = best["value"] if best else None
    return out


@st.fragment(run_every=REFRESH_S)
def render_sweeps() -> None:
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
    table = sweeps_table(sweeps, best_values(sweeps))
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
    st.caption(f"{len(sweeps)} sweep{'s' if len(sweeps) != 1 else ''} · live: checked every {REFRESH_S:g} s")
    bar = st.container(horizontal=True)
    for s in sweeps:
        state.sweep_link(bar, s["id"], label=s["name"])


def main() -> None:
    st.title("Sweeps")
    st.page_link(state.NEW_SWEEP_PAGE, label="New sweep", icon=":material/add_chart:")
    render_sweeps()
