"""Serve the dashboard: `streamlit run dashboard/serve.py` (what `make run` does).

`streamlit run` finds the ``st.App`` below and serves the pages of ``app.py`` with one route of our own
beside Streamlit's: the version check that live pages poll instead of rerunning (``dashboard/live_poll.py``).
``streamlit run dashboard/app.py`` still serves the same pages without that route: their live parts then
refresh on their Streamlit timers, as ``AppTest`` runs them.

Only ``live_poll`` is imported here: this module is imported before Streamlit's runtime starts, and a
module that declares ``st.cache_data`` functions would be bound to a throwaway cache store at import.
"""

import streamlit as st

from dashboard import live_poll

app = st.App("app.py", routes=live_poll.routes())
