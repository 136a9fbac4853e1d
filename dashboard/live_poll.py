"""A live page's cheap question asked without a Streamlit rerun: a JSON route, and a poller in the page.

A quiet refresh used to be a fragment rerun on a ``run_every`` timer: the browser asked over the
websocket, the server ran its script-runner machinery (a thread, a ``new_session`` message, the status
line redrawn because Elapsed/ETA move every second) and sent deltas; ~25 ms of server CPU per refresh
and a re-layout in Chromium, of which the store's question (``MetricsStore.run_version``, ~0.2 ms) was a
small part. Here the question goes around Streamlit:

- ``routes()`` gives ``st.App`` one route, ``GET <base>/_tc/version?<kind>``, that answers with a short
  token of what a page shows: no script run, no session touched. One kind per live page, each computed
  by the same function for the route and for the page, so the two agree: ``?run=<id>`` (the Run page,
  ``run_token``), ``?runs`` (the Runs page's table and queue, and its empty state, ``runs_token``),
  ``?compare=<id>,<id>`` (Compare's chart, ``compare_token``), ``?sweeps`` (the list of sweeps,
  ``sweeps_token``), ``?sweep=<id>`` (one sweep's page, ``sweep_token``), ``?engine`` (the sidebar's line);
- ``watch()`` mounts an invisible ``st.components.v2`` component whose JavaScript fetches that route every
  1-2 s and, only when the token differs from the one the page was drawn with, sets a trigger value:
  that reruns the fragment it sits in (a page's watcher, the sidebar), which redraws what changed;
- between two reruns the same script ticks the status line's Elapsed and ETA in the browser, from two
  points of the engine's own ``run_progress`` (now, and a minute on) that the watcher hands it, so the
  page stays correct while the server sends nothing.

Fallback: where the route is not served (``AppTest``, an app served without ``dashboard/app.py``'s
``st.App``) or the browser cannot reach it (a proxy that forwards only Streamlit's paths), the watcher
keeps its ``run_every`` timer: slower, never wrong.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import streamlit as st

logger = logging.getLogger(__name__)

ROUTE = "_tc/version"
# Failed polls in a row after which the page says so and its watcher goes back to its timer.
FAILURES_BEFORE_FALLBACK = 3
# Columns of ``run_version`` left out of the token: the heartbeat moves every few seconds and shows nowhere.
UNSHOWN = frozenset({"heartbeat_at"})

_served_at: str | None = None  # the route's path, once ``routes()`` gave it to this process's server


# --------------------------------------------------------------------------------------------------
# the server side
# --------------------------------------------------------------------------------------------------


def route_path() -> str:
    """The route's path under ``server.baseUrlPath`` (``st.App`` does not prefix an app's own routes)."""
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(p for p in (base, ROUTE) if p)


def routes() -> list:
    """The routes to give ``st.App``; from then on this process's pages poll instead of rerunning."""
    from starlette.routing import Route

    global _served_at
    _served_at = route_path()
    return [Route(_served_at, _version_endpoint, methods=["GET"])]


def served() -> str | None:
    """The route's path if this process serves it, else None (the pages keep their timers)."""
    return _served_at


def token(shown: Any) -> str:
    """A short token of what a page shows (anything with a stable ``repr``)."""
    return hashlib.blake2b(repr(shown).encode(), digest_size=8).hexdigest()


def run_token(version: Mapping[str, Any]) -> str:
    """A token that changes whenever anything a Run page shows of the run changes.

    Built from ``MetricsStore.run_version`` (status, step, epoch, events, each series' size, name, note,
    tags ...) less the columns that show nowhere; the route and the watcher both call this, so they agree.
    """
    return token(sorted((k, v) for k, v in version.items() if k not in UNSHOWN))


def runs_token(state: Any) -> str:
    """The Runs page's token: its table's rows and its queue (``live_data.runs_state``), so one poller
    covers both (and the empty page's "a run appeared")."""
    return token(tuple(state))


def compare_token(version: tuple) -> str:
    """Compare's token: the compared runs' status, attempt and series sizes (``live_data.compare_version``)."""
    return token(version)


def sweep_token(version: Any) -> str | None:
    """A sweep page's token: ``sweep_data.version`` (its row, its trial runs' statuses and times, its
    study's trial counts), or None for a sweep that no longer exists (the page reruns to say so)."""
    return None if version is None else token(tuple(version))


def sweeps_token(state: list[tuple]) -> str:
    """The list of sweeps' token: each sweep's row, runs per status and finished trials
    (``sweep_data.sweeps_state``), which is all its table shows, best value included."""
    return token(tuple(state))


# The most runs Compare overlays, so the most one ``?compare=`` may name (views/compare.py takes it from
# here: the route cannot import a page, which draws itself when imported).
COMPARE_MAX_RUNS = 10


def compared_ids(text: str) -> list[str]:
    """The run ids of a ``?compare=a,b`` question (Compare's ``?runs=`` as it is on the page).

    Raises:
        ValueError: none, or more than COMPARE_MAX_RUNS (the route answers 400 with the message).
    """
    from dashboard.state import parse_run_ids

    ids = parse_run_ids(text) or []
    if not ids or len(ids) > COMPARE_MAX_RUNS:
        raise ValueError(
            f"compare=: name 1 to {COMPARE_MAX_RUNS} run ids separated by commas, not {len(ids)}"
        )
    return ids


def _answer(kind: str, value: Any) -> str | None:
    from dashboard import data, live_data, sweep_data

    if kind == "run":
        version = live_data.run_version(value)
        return None if version is None else run_token(version)  # None: deleted, the page reruns to say so
    if kind == "runs":
        return runs_token(live_data.runs_state())
    if kind == "compare":
        return compare_token(live_data.compare_version(value))
    # Two indexed reads each (``MetricsStore.sweep_version`` / ``sweeps_version``, ~0.03 ms on SQLite). A
    # whole answer, measured in-process on a sweep of 8 trials among 48 runs: ?sweep 0.19 ms, ?sweeps
    # 0.15 ms, most of it finding the cached Launcher; with each trial's full row read (the pages' old
    # question, configs parsed) ?sweep took 0.37 ms.
    if kind == "sweep":
        return sweep_token(sweep_data.version(value))
    if kind == "sweeps":
        return sweeps_token(sweep_data.sweeps_state())
    # The sidebar's line. ``engine_status`` also settles runs whose worker died unseen (at most every
    # 10 s): with no timer left on the page, this poll is what keeps doing it while a page is open.
    return token(data.engine_status())


# Each question the route answers, and whether it takes a value (``?run=<id>``) or none (``?runs``).
KINDS = {"run": True, "runs": False, "compare": True, "sweep": True, "sweeps": False, "engine": False}
USAGE = "ask one of ?run=<id>, ?runs, ?compare=<id>,<id>, ?sweep=<id>, ?sweeps, ?engine"


def _version_endpoint(request):
    # A plain function: Starlette runs it in its thread pool, so the store's read never blocks the event
    # loop that carries every session's websocket.
    from starlette.responses import JSONResponse

    query = dict(request.query_params)
    asked = [k for k in KINDS if k in query and (query[k] or not KINDS[k])]
    if len(asked) != 1:
        return JSONResponse({"error": USAGE}, status_code=400)
    kind, value = asked[0], query[asked[0]]
    if kind == "compare":
        try:
            value = compared_ids(value)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    try:
        answer = _answer(kind, value)
    except Exception as exc:  # noqa: BLE001 - a damaged store: the page's own run says what to do
        logger.warning("version check failed for %s", query, exc_info=True)
        return JSONResponse({"error": str(exc)}, status_code=503)
    return JSONResponse({"v": answer}, headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------------------------------------
# the page side
# --------------------------------------------------------------------------------------------------

UNREACHABLE = "live_poll._unreachable"  # session state: this browser could not reach the route


def polling() -> bool:
    """Whether this session's live pages poll the route (else they keep their ``run_every`` timers)."""
    return served() is not None and not st.session_state.get(UNREACHABLE, False)


def compact_js(source: str) -> str:
    """The script without its comments and indentation: it travels inside every rerun's delta of the
    component (Streamlit inlines it), 4.9 KB as written, ~2.5 KB so."""
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


@functools.cache
def _poller():
    source = Path(__file__).with_suffix(".js").read_text(encoding="utf-8")
    return st.components.v2.component("dashboard_live_poll", js=compact_js(source))


def _ignore() -> None:
    """The trigger callbacks: the rerun a trigger causes is the whole point, nothing else to do."""


def watch(
    key: str, query: Mapping[str, str], token: str, every_s: float, clock: list[dict] | None = None
) -> bool:
    """Mount the poller in the current fragment; it reruns that fragment when the route's token moves.

    Args:
        key: the component's key (one per page).
        query: the route's query, e.g. ``{"run": run_id}``.
        token: what the fragment was drawn from, as the route computes it (``run_token``).
        every_s: seconds between two polls.
        clock: texts to tick in the browser until the next rerun, each ``{"metric": label}`` or
            ``{"before": text}`` (a progress bar's text up to the value), with ``format`` ("duration" or
            "eta") and ``seconds`` (the value now and a minute on).
    Returns:
        False, or True in the rerun after the browser found the route unreachable: from then on
        ``polling()`` is False for this session, and the caller should go back to its timer.
    """
    data = {
        "url": f"{served()}?{urlencode(query)}",
        "token": token,
        "every_ms": int(every_s * 1000),
        "failures_allowed": FAILURES_BEFORE_FALLBACK,
        "clock": clock or [],
    }
    result = _poller()(key=key, data=data, on_changed_change=_ignore, on_unreachable_change=_ignore, height=0)
    if getattr(result, "unreachable", None):
        st.session_state[UNREACHABLE] = True
        logger.warning("live poll unreachable from the browser: session back to fragment timers")
        return True
    return False
