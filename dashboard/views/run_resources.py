"""Run page: what the run's processes use (CPU, memory, GPU memory), beside its training curves.

The worker samples its process tree at each heartbeat and stores the values as ``system/...`` series
(``trainer_core.describe_system_series`` says what each one is). The Run page draws them with one call,
``render_resources(run)``, inside its live fragment.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.figures import resources_figure
from dashboard.views.run_outcome import CHART_CONFIG
from trainer_core import ACTIVE_STATUSES, describe_system_series

FIGURE = "run._resources_figure"  # (signature of its data, the figure drawn from it)


def latest_values(frames: Mapping[str, pd.DataFrame | None]) -> dict[str, float]:
    """Each series' most recent sample (by wall time), keyed as ``frames``; empty series left out."""
    out = {}
    for key, df in frames.items():
        if df is not None and len(df):
            out[key] = float(df.loc[df["wall_time"].idxmax(), "value"])
    return out


def resource_captions(latest: Mapping[str, float]) -> list[str]:
    """One line per series, e.g. ``RSS: **812 MB**``, in key order."""
    lines = []
    for key in sorted(latest):
        label, unit = describe_system_series(key)
        lines.append(f"{label}: **{latest[key]:,.0f} {unit}**".rstrip())
    return lines


def render_resources(run: dict) -> None:
    """The resource chart and the latest sample's values; a line of text until the first sample."""
    keys = data.system_keys(run)
    if not keys:
        if run["status"] in ACTIVE_STATUSES:
            st.caption("Resource use (CPU, memory, GPU memory) appears with the worker's first heartbeat.")
        return
    frames = {key: data.series(run, key) for key in keys}
    latest = latest_values(frames)
    # Re-send the same figure object while no sample is new: the fragment must emit the chart on every
    # refresh, and an unchanged element is not drawn again by the browser.
    signature = (
        run["id"],
        run.get("attempt"),
        tuple((k, len(f)) for k, f in frames.items()),
        *latest.items(),
    )
    kept = st.session_state.get(FIGURE)
    if kept is None or kept[0] != signature:
        kept = (signature, resources_figure(frames, origin=run.get("started_at"), uirevision=run["id"]))
        st.session_state[FIGURE] = kept
    chart, values = st.columns(2)
    with chart:
        st.plotly_chart(kept[1], key="run.resources_chart", config=CHART_CONFIG)
    with values:
        st.markdown("**Latest sample**, summed over the worker and its child processes")
        for line in resource_captions(latest):
            st.caption(line)
