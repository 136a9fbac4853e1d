"""The sidebar's one line about the engine: what it is doing, and where it keeps its runs."""

from __future__ import annotations

import streamlit as st

from dashboard import data, live_poll
from dashboard.tables import format_count
from trainer_core import RunStatus

REFRESH_S = 5


def render_engine_status() -> None:
    """One line: what the engine is doing, and where it keeps its runs (redrawn when it changes, as the
    poller of ``dashboard.live_poll`` sees; every REFRESH_S on a timer where the route is not served)."""
    st.fragment(run_every=None if live_poll.polling() else REFRESH_S)(render_engine_line)()


def render_engine_line() -> None:
    try:
        status = data.engine_status()
    except Exception as exc:  # noqa: BLE001 - the sidebar must never take the page down with it
        st.caption(f":red[Engine unavailable: {exc}]")
        return
    counts = status["counts"]
    active = counts.get(RunStatus.RUNNING, 0) + counts.get(RunStatus.STOPPING, 0)
    parts = [f"**{active}** training" if active else "idle"]
    if counts.get(RunStatus.QUEUED):
        parts.append(f"{counts[RunStatus.QUEUED]} queued")
    parts.append(f"{format_count(status['total'])} run{'' if status['total'] == 1 else 's'}")
    dot = ":green[●]" if active else ":gray[●]"
    st.caption(
        f"{dot} Engine: " + " · ".join(parts),
        help=f"Runs folder: {status['home']}\n\nStore: {status['store']}",
    )
    if live_poll.polling() and live_poll.watch(
        "sidebar.poll", {"engine": ""}, live_poll.token(status), REFRESH_S
    ):
        st.rerun(scope="app")  # the route is unreachable from this browser: declare the timer instead
