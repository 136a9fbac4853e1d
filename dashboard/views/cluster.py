"""The Ray cluster on the dashboard: the cluster panel (nodes, alive or dead, free and total CPUs, GPUs
and memory) and the reason a Ray run waits, both asked of Ray through the engine.

Not a page: the Runs page draws the panel under its queue, the Run page the reason of a queued Ray run.
The panel shows only when this machine is pointed at a cluster (``TRAINER_CORE_RAY_ADDRESS``) or a run
went to one. Ray is asked at most every few seconds per cluster (each read is two or three HTTP round
trips), and a cluster that does not answer is said in words, never raised.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.tables import format_bytes
from trainer_core import ConfigError, RunStatus, cluster_status, configured_ray_address

REFRESH_S = 5.0
ASK_EVERY_S = 3  # how old an answer of Ray's may be
MAX_CLUSTERS = 3  # panels drawn at most (the configured cluster first, then those of the newest runs)


@st.cache_data(ttl=ASK_EVERY_S, show_spinner=False)
def read_cluster(address: str) -> dict[str, Any]:
    """The cluster's status (``cluster_status``) with ``ok`` True, or ``ok`` False and why it could not
    be read (cached too, so an unreachable cluster is not asked on every refresh)."""
    try:
        return {"ok": True, **cluster_status(address)}
    except ConfigError as exc:
        return {"ok": False, "address": address, "error": exc.message}
    except Exception as exc:  # noqa: BLE001 - Ray's client raises what its HTTP layer raised
        return {"ok": False, "address": address, "error": f"{type(exc).__name__}: {exc}"}


def cluster_addresses(runs: list[dict[str, Any]]) -> list[str]:
    """The clusters to show: the one this machine is pointed at, then those runs went to (newest first)."""
    found = [configured_ray_address()] + [r.get("ray_address") for r in runs]
    return list(dict.fromkeys(a for a in found if a))[:MAX_CLUSTERS]


def nodes_table(status: dict[str, Any]) -> pd.DataFrame:
    """One row per node: id, IP, role, state, and free / total CPUs, GPUs and memory."""
    rows = [
        {
            "Node": n["node_id"][:12],
            "IP": n["ip"],
            "Role": "head" if n["is_head"] else "worker",
            "State": "alive" if n["alive"] else "dead",
            "CPUs free": f"{n['free_cpus']:g} / {n['cpus']:g}",
            "GPUs free": f"{n['free_gpus']:g} / {n['gpus']:g}",
            "Memory free": f"{format_bytes(n.get('free_memory'))} / {format_bytes(n.get('memory'))}",
        }
        for n in status["nodes"]
    ]
    return pd.DataFrame(
        rows, columns=["Node", "IP", "Role", "State", "CPUs free", "GPUs free", "Memory free"]
    )


def summary_line(status: dict[str, Any]) -> str:
    alive = sum(n["alive"] for n in status["nodes"])
    dead = len(status["nodes"]) - alive
    return (
        f"{alive} node{'s' if alive != 1 else ''} alive" + (f", {dead} dead" if dead else "")
        + f" · {status['free_cpus']:g} of {status['cpus']:g} CPUs free"
        + f" · {status['free_gpus']:g} of {status['gpus']:g} GPUs free"
        + f" · {format_bytes(status.get('free_memory'))} of {format_bytes(status.get('memory'))} memory free"
    )  # fmt: skip


SHOWN = "cluster._shown"  # the clusters the panel was last declared for


def render_cluster() -> None:
    """A panel per Ray cluster in use, on a REFRESH_S timer; nothing, and no timer, when none is.

    Ray's answers are not in the store, so no version route can tell that they moved without asking Ray
    (two or three HTTP round trips) at every poll: a shown panel keeps its timer. With no cluster in use
    a timer would only rerun an empty fragment every REFRESH_S; the page that draws the panel reruns
    itself when a run goes to a cluster (``clusters_changed``).
    """
    addresses = cluster_addresses(data.list_runs())
    st.session_state[SHOWN] = addresses
    st.fragment(run_every=REFRESH_S if addresses else None)(render_panels)()


def clusters_changed(runs: list[dict[str, Any]]) -> bool:
    """Whether ``runs`` name other clusters than the panel was declared for (its timer must change)."""
    return cluster_addresses(runs) != st.session_state.get(SHOWN)


def render_panels() -> None:
    for address in cluster_addresses(data.list_runs()):
        status = read_cluster(address)
        with st.container(border=True, key=f"cluster.{address}"):
            if not status["ok"]:
                st.markdown(f"**Ray cluster** at `{address}`")
                st.warning(f"Cannot read this Ray cluster: {status['error']}", icon=":material/cloud_off:")
                continue
            st.markdown(f"**Ray cluster** at `{address}` · {summary_line(status)}")
            st.dataframe(nodes_table(status), hide_index=True, key=f"cluster.nodes.{address}")
            st.caption("Memory is Ray's schedulable memory (what its tasks may reserve), not the nodes' RAM.")


@st.cache_data(ttl=ASK_EVERY_S, show_spinner=False)
def _wait_reason(run_key: tuple, _run: dict[str, Any]) -> str | None:
    try:
        return data.get_launcher().ray_wait_reason(_run)
    except ConfigError as exc:
        return f"cannot ask the Ray cluster now ({exc.message})"
    except Exception as exc:  # noqa: BLE001 - an HTTP error while the cluster goes away
        return f"cannot ask the Ray cluster now ({type(exc).__name__}: {exc})"


def render_wait_reason(run: dict[str, Any]) -> None:
    """Under a queued Ray run's status line: why it has not started training, in Ray's words."""
    if run["status"] != RunStatus.QUEUED:
        return  # (a run on this machine: the engine has no Ray reason for it, and says None)
    reason = _wait_reason((run["id"], run.get("attempt"), run.get("ray_job_id")), run)
    if reason:
        st.info(f"Queued on the Ray cluster: {reason}", icon=":material/hourglass_top:")
