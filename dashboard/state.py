"""Page addresses and the hand-offs between pages (open a run, clone a run into the form).

Session-state keys are namespaced by page (``new.*``, ``runs.*``, ``run.*``, ``compare.*``). A run's
page is addressed by the ``?run=<id>`` query parameter, so it can be bookmarked and shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from trainer_core import ConfigError, RunNotFoundError, RunStateError

# Paths relative to dashboard/app.py, as st.navigation and st.switch_page expect them. The folder must
# not be called pages/: Streamlit takes a pages/ folder beside the entry file for the old multipage
# layout, and the first script run of each server process routes by its file names (new_run, not new),
# so the first visit to /new showed "Page not found" before st.navigation took over.
RUNS_PAGE = "views/runs.py"
NEW_RUN_PAGE = "views/new_run.py"
RUN_PAGE = "views/run.py"
COMPARE_PAGE = "views/compare.py"

RUN_PARAM = "run"  # ?run=<id>
PREFILL_KEY = "new.prefill"
FLASH_KEY = "app.flash"
COMPARE_KEY = "compare.runs"


def open_run(run_id: str) -> None:
    """Go to the Run page showing ``run_id`` (the URL says ``?run=<id>``)."""
    st.switch_page(RUN_PAGE, query_params={RUN_PARAM: run_id})


def clone_run(config: dict[str, Any], name: str) -> None:
    """Open the New run form pre-filled with ``config`` (a saved run's flat config)."""
    st.session_state[PREFILL_KEY] = {"config": dict(config), "name": name}
    st.switch_page(NEW_RUN_PAGE)


def compare_runs(run_ids: list[str]) -> None:
    st.session_state[COMPARE_KEY] = list(run_ids)
    st.switch_page(COMPARE_PAGE)


def flash(message: str, icon: str = ":material/check_circle:") -> None:
    """A toast shown once on the next page run (a message that survives st.switch_page / st.rerun)."""
    st.session_state[FLASH_KEY] = (message, icon)


def show_flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.toast(message[0], icon=message[1])


# What a refused action raises (wrong state, a vanished run, an empty name): shown, not a traceback.
ACTION_ERRORS = (ConfigError, RunNotFoundError, RunStateError)


def act(action: Callable[..., Any], run_id: str, message: str, *args: Any) -> None:
    """Run an action on a run and rerun the whole app with ``message`` as a toast; a refusal is shown
    as an error where the button was.

    The rerun is app-wide: a button inside a live fragment changes what the whole page shows.
    """
    try:
        action(run_id, *args)
    except ACTION_ERRORS as exc:
        st.error(getattr(exc, "message", None) or str(exc))
        return
    flash(message)
    st.rerun(scope="app")
