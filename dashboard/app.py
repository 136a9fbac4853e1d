"""Entry point: `streamlit run dashboard/app.py`. Routes to the pages; holds no page logic."""

from __future__ import annotations

# `streamlit run` puts dashboard/ on sys.path, not the repository root: the packages are found because
# `make setup` installs the project (editable) into the venv.
import streamlit as st

from dashboard import memory, stale_fragments, state
from dashboard.sidebar import render_engine_status
from dashboard.store_problem import render_store_problem

# Before any page runs: a late fragment request of a page this session has left must not blank the new one.
stale_fragments.install()
st.set_page_config(page_title="Fine-tuning runs", page_icon=":material/model_training:", layout="wide")

pages = [
    st.Page(state.RUNS_PAGE, title="Runs", icon=":material/table_rows:", url_path="runs", default=True),
    st.Page(state.NEW_RUN_PAGE, title="New run", icon=":material/add_circle:", url_path="new"),
    st.Page(state.RUN_PAGE, title="Run", icon=":material/monitoring:", url_path="run"),
    st.Page(state.COMPARE_PAGE, title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page(state.SWEEP_PAGE, title="Sweeps", icon=":material/tune:", url_path="sweep"),
    st.Page(state.NEW_SWEEP_PAGE, title="New sweep", icon=":material/add_chart:", url_path="new-sweep"),
]
page = st.navigation(pages)


with st.sidebar:
    render_engine_status()

state.show_flash()
# A damaged store or an unusable runs folder: say what to do instead of failing on every page.
if not render_store_problem():
    page.run()
# The imports a page made are long-lived: keep them out of the collection Streamlit runs after each run.
memory.freeze_new_imports()
# Streamlit never forgets a cache key's lock, glibc keeps what is freed: a thread drops the locks of
# evicted entries and hands free pages back every minute (and glibc's arenas are limited first).
memory.start_housekeeping()
