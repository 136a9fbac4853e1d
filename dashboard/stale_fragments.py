"""A page change that a late timer cannot undo: fragment runs asked for a page the session has left are dropped.

Issue 9 §4. A live part (``st.fragment(run_every=...)``: the sidebar every 5 s, the runs table every 2 s,
the Run page's watcher) is rerun by the browser, which tags each request with the page it shows. When the
server changes page (``st.switch_page``, e.g. after Start run), the browser hears of it only once the new
page's run reaches it, and its timers go on asking for the old page's fragments until then. Streamlit 1.67
runs such a request as it comes: under the old page, so it tells the browser of a run on another page than
the one it has just drawn, and the browser clears that page (``handleNewSession`` → ``clearAppState``)
while the fragment redraws only itself. The new page stayed blank until the next click. A page link is
spared only because the browser itself leaves the page first; every server-side switch (Start run, any
later one) and every slow connection was exposed.

Streamlit has no public hook on incoming requests, so the script thread's entry to a run is wrapped: a
run of fragments whose page is not the page of the session's latest run is skipped. Nothing is lost by
it: a fragment belongs to the page that registered it, and the session's latest run drew the current
page's fragments afresh, their timers included. The browser waits for no answer to a timer's request
(it sets no "running" state for it), so a skipped one leaves nothing pending.

If this Streamlit lacks the internals used, the guard is not installed and a warning is logged; a test
(tests/test_dashboard_navigation.py) fails on such an upgrade rather than letting the blank page return.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

_MARK = "_dashboard_drops_stale_fragment_runs"


def is_stale_fragment_run(fragment_ids: Sequence[str], requested_page: str, current_page: str) -> bool:
    """Whether a run of ``fragment_ids`` asked for ``requested_page`` belongs to a page the session has left.

    A full run (no fragment ids) is never stale: it is how a page is changed. An empty page hash (a first
    run, before any page is known) is not judged.
    """
    return bool(fragment_ids) and bool(requested_page and current_page) and requested_page != current_page


def install() -> bool:
    """Make every Streamlit session of this process skip stale fragment runs; True once installed.

    Idempotent: the entry script calls it on every run, the wrapper is installed once per process.
    """
    try:
        from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    except ImportError:
        logger.warning("stale fragment guard not installed: Streamlit's ScriptRunner moved", exc_info=True)
        return False
    run_script = getattr(ScriptRunner, "_run_script", None)
    if run_script is None:
        logger.warning("stale fragment guard not installed: ScriptRunner._run_script is gone")
        return False
    if getattr(run_script, _MARK, False):
        return True

    @functools.wraps(run_script)
    def run_unless_stale(self, rerun_data, *args, **kwargs):
        pages = getattr(self, "_pages_manager", None)
        current = getattr(pages, "current_page_script_hash", "")
        fragment_ids = getattr(rerun_data, "fragment_id_queue", None) or []
        requested = getattr(rerun_data, "page_script_hash", "")
        if is_stale_fragment_run(fragment_ids, requested, current):
            logger.info("dropped a fragment run for page %s: the session is on page %s", requested, current)
            return None
        return run_script(self, rerun_data, *args, **kwargs)

    setattr(run_unless_stale, _MARK, True)
    ScriptRunner._run_script = run_unless_stale
    return True


def installed() -> bool:
    """Whether this process's Streamlit runs go through the guard."""
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    return bool(getattr(getattr(ScriptRunner, "_run_script", None), _MARK, False))
