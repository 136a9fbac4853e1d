"""Serve the dashboard: `streamlit run dashboard/serve.py` (what `make run` does).

`streamlit run` finds the ``st.App`` below and serves the pages of ``app.py`` with one route of our own
beside Streamlit's: the version check that live pages poll instead of rerunning (``dashboard/live_poll.py``).
``streamlit run dashboard/app.py`` still serves the same pages without that route: their live parts then
refresh on their Streamlit timers, as ``AppTest`` runs them.

Only ``live_poll`` and ``memory`` are imported here: this module is imported before Streamlit's runtime
starts, and a module that declares ``st.cache_data`` functions would be bound to a throwaway cache store at
import.
"""

import logging

import streamlit as st

from dashboard import live_poll, memory

# Before Streamlit's server starts its threads: glibc fixes its arena limit the first time it needs one
# past its eighth, so the same call in app.py's first run came after the page's first requests had made
# sixteen and changed nothing (gdb on a soak's server: 16 arenas, arena_max 2).
memory.limit_malloc_arenas()

# Streamlit polls its config files for changes every 0.2 s, each one that does not exist hashed again at
# every poll: 2.1-2.2 CPU-s per minute of an idle server with no page open (py-spy: half of its busy
# samples in PollingPathWatcher), more than a quiet live page costs. Every 5 s a config edit still
# reloads; the constant is Streamlit's (1.67), so a rename only brings the cost back, with a warning.
CONFIG_POLL_S = 5.0
try:
    from streamlit.watcher import polling_path_watcher

    if not hasattr(polling_path_watcher, "_POLLING_PERIOD_SECS"):
        raise AttributeError("_POLLING_PERIOD_SECS")
    polling_path_watcher._POLLING_PERIOD_SECS = CONFIG_POLL_S
except (ImportError, AttributeError):
    logging.getLogger(__name__).warning("Streamlit's config polling period not found; left as it is")

app = st.App("app.py", routes=live_poll.routes())
