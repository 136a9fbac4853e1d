"""Entry point: `streamlit run dashboard/app.py`. Routes to the pages; holds no page logic."""

from __future__ import annotations

# `streamlit run` puts dashboard/ on sys.path, not the repository root: the packages are found because
# `make setup` installs the project (editable) into the venv.
import streamlit as st

from dashboard import data, state
from dashboard.tables import format_count

st.set_page_config(page_title="Fine-tuning runs", page_icon=":material/model_training:", layout="wide")

pages = [
    st.Page(state.RUNS_PAGE, title="Runs", icon=":material/table_rows:", url_path="runs", default=True),
    st.Page(state.NEW_RUN_PAGE, title="New run", icon=":material/add_circle:", url_path="new"),
    st.Page(state.RUN_PAGE, title="Run", icon=":material/monitoring:", url_path="run"),
    st.Page(state.COMPARE_PAGE, title="Compare", icon=":material/compare_arrows:", url_path="compare"),
]
page = st.navigation(pages)


@st.fragment(run_every=5)
def render_engine_status() -> None:
    """One line: what the engine is doing, and where it keeps its runs."""
    try:
        status = data.engine_status()
    except Exception as exc:  # noqa: BLE001 - the sidebar must never take the page down with it
        st.caption(f":red[Engine unavailable: {exc}]")
        return
    counts = status["counts"]
    active = counts.get("running", 0) + counts.get("stopping", 0)
    parts = [f"**{active}** training" if active else "idle"]
    if counts.get("queued"):
        parts.append(f"{counts['queued']} queued")
    parts.append(f"{format_count(status['total'])} run{'' if status['total'] == 1 else 's'}")
    dot = ":green[●]" if active else ":gray[●]"
    st.caption(
        f"{dot} Engine: " + " · ".join(parts),
        help=f"Runs folder: {status['home']}\n\nStore: {status['store']}",
    )


with st.sidebar:
    render_engine_status()

state.show_flash()
page.run()
