"""Page addresses and the hand-offs between pages (open a run, compare runs, clone a run into the form).

Session-state keys are namespaced by page (``new.*``, ``runs.*``, ``run.*``, ``compare.*``). A run's
page is addressed by ``/run?run=<id>`` and a comparison by ``/compare?runs=<id>,<id>``, so both can be
bookmarked and shared.

Where the target is known when the page is drawn, a hand-off is a link (``st.page_link``): the browser
changes page itself, following the address, and it opens in a new tab on a middle click. Start run must
launch before it knows where to go, so it switches page on the server; ``dashboard/stale_fragments.py``
keeps the late fragment requests of the page left behind from blanking the new one.
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
SWEEP_PAGE = "views/sweep.py"  # /sweep: every sweep; /sweep?sweep=<id>: one
NEW_SWEEP_PAGE = "views/new_sweep.py"

RUN_PARAM = "run"  # ?run=<id>
CLONE_PARAM = "clone"  # /new?clone=<run id>: the form pre-filled with that run's config
FINETUNE_PARAM = "finetune"  # /new?finetune=<run id>: ... and that run's fine-tuned model as the checkpoint
DRAFT_PARAM = "draft"  # /new?draft=<id>: the form's draft on disk (see dashboard/drafts.py)
FLASH_KEY = "app.flash"
COMPARE_PARAM = "runs"  # /compare?runs=<id>,<id>: the runs compared, in order
COMPARE_KEY = "compare.runs"
SWEEP_PARAM = "sweep"  # /sweep?sweep=<id>


def open_run(run_id: str) -> None:
    """Go to the Run page showing ``run_id`` from the server (after an action: Start run)."""
    st.switch_page(RUN_PAGE, query_params={RUN_PARAM: run_id})


def run_link(container: Any, run_id: str, label: str = "Open run") -> None:
    """A link to the Run page of ``run_id``."""
    container.page_link(
        RUN_PAGE, label=label, icon=":material/open_in_new:", query_params={RUN_PARAM: run_id}
    )


def clone_link(container: Any, run_id: str, finetune: bool = False) -> None:
    """A "Clone" link to the New run form pre-filled from ``run_id`` ("Fine-tune further": with the run's
    fine-tuned model as the checkpoint)."""
    # A link, not a button calling st.switch_page. A page switch made by the server reaches the browser
    # a moment later; a fragment timer (the sidebar's, the runs table's, the live panel's) that fires in
    # between asks for that fragment on the page being left, the server runs it under that page, and the
    # browser, told of a fragment run on another page, clears the page it has just drawn: New run came up
    # blank. With the browser's messages held 6 s it did in 3 tries of 3 (tests/test_dashboard_drafts.py).
    # A link changes page in the browser, which stops its timers before it asks for the new page.
    if finetune:
        label, icon, param = "Fine-tune further", ":material/model_training:", FINETUNE_PARAM
        help_ = "Open New run with this run's fine-tuned model as the checkpoint."
    else:
        label, icon, param = "Clone", ":material/content_copy:", CLONE_PARAM
        help_ = "Open New run pre-filled with this run's config."
    container.page_link(NEW_RUN_PAGE, label=label, icon=icon, help=help_, query_params={param: run_id})


def sweep_link(container: Any, sweep_id: str | None, label: str = "Open sweep") -> None:
    """A link to the Sweep page of ``sweep_id`` (to the list of sweeps when None)."""
    params = {SWEEP_PARAM: sweep_id} if sweep_id else None
    container.page_link(SWEEP_PAGE, label=label, icon=":material/tune:", query_params=params)


def open_sweep(sweep_id: str) -> None:
    """Go to the Sweep page of ``sweep_id`` from the server (after Start sweep)."""
    st.switch_page(SWEEP_PAGE, query_params={SWEEP_PARAM: sweep_id})


def compare_link(container: Any, run_ids: list[str], label: str, help_: str | None = None) -> None:
    """A link to Compare showing ``run_ids`` (``/compare?runs=a,b``)."""
    container.page_link(
        COMPARE_PAGE,
        label=label,
        icon=":material/compare_arrows:",
        help=help_,
        query_params={COMPARE_PARAM: ",".join(run_ids)},
        disabled=not run_ids,
    )


def parse_run_ids(text: str | None) -> list[str] | None:
    """The run ids of a ``runs=`` parameter ("a,b" -> ["a", "b"]), once each, in order; None without one."""
    if text is None:
        return None
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


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
