"""The run queue on the dashboard: the waiting runs with their place, why they wait, and their actions.

Kept apart from the Runs page (called there with one line) and read straight from the engine's queue,
uncached: a move must show at once. The panel is a part of the Runs page with no timer of its own: the
page's watcher reruns it when what it is drawn from (``live_data.queue_version``) moved, as it does the
table. The one exception is a queued Ray run: why it waits is Ray's answer, not in the store, so while the
panel shows one it also asks again every REFRESH_S (the route would have to ask Ray at every poll).
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, live_data
from dashboard.live import record_drawn
from dashboard.state import act

REFRESH_S = 2.0
QUEUE = "runs.part.queue"  # the panel's fragment, rerun by the Runs page's watcher
RAY_SHOWN = "runs._queue_ray"  # the panel shows a queued Ray run: it keeps a timer for Ray's reason


def _queue():
    return data.get_launcher().run_queue


def _move(run_id: str, move: str) -> None:
    _queue().move(run_id, move=move)


def _cancel(run_id: str) -> None:
    _queue().cancel(run_id)


def render_queue(drawn: str) -> None:
    """The queue panel, a fragment keyed QUEUE; ``drawn`` is the session key its page keeps marks in."""
    every = REFRESH_S if st.session_state.get(RAY_SHOWN) else None
    st.fragment(key=QUEUE, run_every=every)(render_entries)(drawn)


def render_entries(drawn: str) -> None:
    """The waiting runs in the order they start, each with up, down and cancel (nothing when empty)."""
    record_drawn(drawn, QUEUE, live_data.queue_version())  # before reading: a later move reruns it
    entries = _queue().entries()
    ray = any(e["position"] is None for e in entries)
    if st.session_state.get(RAY_SHOWN, False) != ray:
        # The timer is set when the fragment is declared: a Ray run entering or leaving changes it.
        st.session_state[RAY_SHOWN] = ray
        st.rerun(scope="app")
    if not entries:
        return
    with st.container(border=True):
        st.markdown(f"**Queue** · {len(entries)} waiting · {_queue().inventory.describe()}")
        for entry in entries:
            run_id, name = entry["id"], entry["name"]
            row = st.columns([1, 5, 6, 1, 1, 1], vertical_alignment="center")
            if entry["position"] is None:  # a Ray run: it waits for the cluster, not in this order
                render_ray_entry(row, entry)
                continue
            row[0].markdown(f"**#{entry['position']}**")
            row[1].markdown(f"{name} · `{run_id}`")
            row[2].caption(
                entry["reason"] + (f" · priority {entry['priority']}" if entry["priority"] else "")
            )
            if row[3].button(
                "",
                key=f"queue.up.{run_id}",
                icon=":material/arrow_upward:",
                help="Move up",
                disabled=entry["position"] == 1,
            ):
                act(_move, run_id, f"{name} moved up", "up")
            if row[4].button(
                "",
                key=f"queue.down.{run_id}",
                icon=":material/arrow_downward:",
                help="Move down",
                disabled=entry["position"] == len(entries),
            ):
                act(_move, run_id, f"{name} moved down", "down")
            if row[5].button(
                "",
                key=f"queue.cancel.{run_id}",
                icon=":material/close:",
                help="Take it out of the queue (it is kept as stopped; Resume queues it again)",
            ):
                act(_cancel, run_id, f"{name} removed from the queue")


def _stop_ray_run(run_id: str) -> None:
    data.get_launcher().stop(run_id, force=True)  # stops its Ray job; resume submits it again


def render_ray_entry(row, entry: dict) -> None:
    """A queued Ray run: Ray's reason, and a cancel that stops its Ray job."""
    run_id, name = entry["id"], entry["name"]
    row[0].markdown("**Ray**")
    row[1].markdown(f"{name} · `{run_id}`")
    row[2].caption(entry["reason"])
    if row[5].button(
        "",
        key=f"queue.cancel.{run_id}",
        icon=":material/close:",
        help="Stop its Ray job before it starts (it is kept as stopped; Resume submits it again)",
    ):
        act(_stop_ray_run, run_id, f"{name} stopped on the Ray cluster")


def render_start_forecast(executor: str | None) -> None:
    """One line under New run's Start button: whether the run would start now or wait, and for what.

    ``executor`` is the form's (the caller reads it: this module is also the Runs page's, which must not
    import the form, whose choices load transformers and torch: ~340 MB in the server for a page that
    only lists runs).
    """
    if executor == "ray":
        st.caption("Goes to the Ray cluster: no slot of this machine; Ray starts it once its workers fit.")
        return
    try:
        forecast = _queue().forecast()
    except Exception as exc:  # noqa: BLE001 - a bad TRAINER_CORE_SLOTS must not hide the form
        st.caption(f":red[{getattr(exc, 'message', exc)}]")
        return
    st.caption(("Starts now" if forecast == "starts now" else forecast.capitalize()) + ".")
