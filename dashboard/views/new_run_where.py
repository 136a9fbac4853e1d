"""New run, where it trains: this machine (with its number of processes) or a Ray cluster (its address,
workers, GPUs and resources per worker, shared storage).

Not a page: ``new_run_inputs.render_hyperparameters`` draws it. The widgets only hold values; the rules
are the engine's (``form_where`` puts the values into the config, ``config_from_dict`` refuses a bad one
and its message lands under the field's box), and whether the cluster answers is checked by the engine
at Start, with its message shown there.
"""

from __future__ import annotations

import streamlit as st

from dashboard.form_where import EXECUTOR_LABELS
from dashboard.views.new_run_inputs import K, number_box, values
from trainer_core import EXECUTORS, configured_ray_address

PREFILLED = "new._ray_address_prefilled"


def render_where(field) -> None:
    """The executor choice and the boxes of the chosen one (``field`` draws a box with its error slot)."""
    st.markdown("**Where it trains**")
    configured = configured_ray_address()
    if configured and not st.session_state.get(K("ray_address")) and not st.session_state.get(PREFILLED):
        # Once per session: the address this machine is pointed at goes into the box (and so into the
        # config and its YAML), and a user who empties the box afterwards means it.
        st.session_state[K("ray_address")] = configured
        st.session_state[PREFILLED] = True
    typed = (values()["ray_address"] or "").strip() or configured

    def label(executor: str) -> str:
        if executor == "ray" and typed:
            return f"{EXECUTOR_LABELS['ray']} at {typed}"
        return EXECUTOR_LABELS.get(executor, executor)

    c = st.columns(4)
    field(c[0], "executor", st.radio, "Run on", options=EXECUTORS, format_func=label, horizontal=True)
    if values()["executor"] != "ray":
        field(c[1], "num_processes", number_box, "Processes (GPUs or CPU cores)")
        return
    field(
        c[1],
        "ray_address",
        st.text_input,
        "Cluster address",
        placeholder=configured or "http://head-node:8265",
    )
    field(c[2], "num_workers", number_box, "Workers")
    field(c[3], "use_gpu", st.toggle, "One GPU per worker")
    c = st.columns([1, 2, 1])
    field(c[0], "resources_per_worker", st.text_input, "Resources per worker", placeholder='e.g. {"CPU": 2}')
    field(
        c[1],
        "storage_path",
        st.text_input,
        "Storage path (shared by every node)",
        placeholder="the runs folder (a cluster on this machine only)",
    )
    c[2].caption(
        "Ray Jobs runs the driver in the cluster: closing the dashboard does not end the run. "
        "`python -m trainer_core cluster` shows the cluster's nodes."
    )
