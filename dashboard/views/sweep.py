"""Sweep: one sweep (``/sweep?sweep=<id>``), or the list of sweeps (``/sweep``).

A sweep's page shows its trials (each a run), Optuna's figures of its study, its best trial with the
ways to go on from it (fine-tune further, clone into New run), and the sweep's controls: stop (running
trials checkpoint and stop, queued ones leave the queue), resume, add trials, delete (with its runs or
keeping them). While it runs, the trials and figures refresh on a timer; a sweep that changes nothing
costs one small query per refresh.
"""

from __future__ import annotations

from collections import Counter

import streamlit as st

from dashboard import state, sweep_data
from dashboard.sweep_tables import trials_done, trials_table
from dashboard.views.sweeps import main as render_list
from trainer_core import PRUNER_SETTINGS, ConfigError, RunStateError, SweepNotFoundError, SweepStatus

REFRESH_S = 2.0
FIGURE_CONFIG = {"displayModeBar": False}


def sweep_act(action, sweep_id: str, message: str, *args) -> None:
    """Run a sweep action and rerun the app with ``message`` as a toast; a refusal is shown in place."""
    try:
        action(sweep_id, *args)
    except (ConfigError, RunStateError, SweepNotFoundError) as exc:
        st.error(getattr(exc, "message", None) or str(exc))
        return
    state.flash(message)
    st.rerun(scope="app")


def render_header(detail: dict) -> None:
    spec = detail["spec"]
    st.title(detail["name"])
    done = trials_done(Counter(t["status"] for t in detail["trials"]))
    direction = "higher" if spec["direction"] == "maximize" else "lower"
    st.caption(
        f"**{detail['status']}** · {done} of {detail['n_trials']} trials done · up to {detail['parallel']} at a "
        f"time · objective `{spec['objective']}` ({direction} is better) · sampler {spec['sampler']} · "
        f"pruner {spec['pruner']}{pruner_settings(spec)} · `{detail['id']}`"
    )


def pruner_settings(spec: dict) -> str:
    """ " (min resource 1, reduction factor 2, ...)": the settings the sweep's pruner was given."""
    told = [
        f"{p.label.lower()} {spec[p.key]}" for p in PRUNER_SETTINGS.get(spec["pruner"], ()) if p.key in spec
    ]
    return f" ({', '.join(told)})" if told else ""


def render_controls(detail: dict) -> None:
    sweep_id, status = detail["id"], detail["status"]
    bar = st.container(horizontal=True)
    if bar.button(
        "Stop sweep", key="sweep.stop", icon=":material/stop:", disabled=status != SweepStatus.RUNNING
    ):
        sweep_act(
            sweep_data.stop,
            sweep_id,
            "Sweep stopped: running trials checkpoint, queued ones leave the queue.",
        )
    if bar.button(
        "Resume sweep",
        key="sweep.resume",
        icon=":material/play_arrow:",
        disabled=status != SweepStatus.STOPPED,
    ):
        sweep_act(sweep_data.resume, sweep_id, "Sweep resumed: it goes on until its budget is spent.")
    with bar.popover("Add trials", icon=":material/add:"):
        n = st.number_input("Trials to add", min_value=1, max_value=1000, value=2, key="sweep.add_n")
        if st.button("Add", key="sweep.add"):
            sweep_act(sweep_data.add_trials, sweep_id, f"{n} trial{'s' if n != 1 else ''} added.", int(n))
    run_ids = [t["run_id"] for t in detail["trials"] if t["run_id"]]
    state.compare_link(
        bar, run_ids[:10], "Compare these trials", help_="Open Compare on this sweep's trial runs."
    )
    with bar.popover("Delete", icon=":material/delete:"):
        keep = st.toggle(
            "Keep the trials' runs",
            key="sweep.keep_runs",
            help="Kept as plain runs in Runs; else deleted with it.",
        )
        what = (
            "the sweep and its study (its runs stay)"
            if keep
            else "the sweep, its study and all its trial runs"
        )
        st.warning(f"Delete {what}? This cannot be undone.")
        if st.button("Yes, delete", key="sweep.delete", type="primary"):
            try:
                sweep_data.delete(sweep_id, delete_runs=not keep)
            except (RunStateError, SweepNotFoundError) as exc:
                st.error(str(exc))
                return
            state.flash(f"Deleted sweep {detail['name']}")
            st.query_params.pop(state.SWEEP_PARAM, None)
            st.rerun(scope="app")


def render_best(detail: dict) -> None:
    best = detail["best"]
    objective = detail["spec"]["objective"]
    with st.container(border=True):
        if best is None:
            st.markdown("**Best trial**: none yet (no trial has completed).")
            return
        params = " · ".join(
            f"{k} = `{v:.4g}`" if isinstance(v, float) else f"{k} = `{v}`" for k, v in best["params"].items()
        )
        st.markdown(f"**Best trial #{best['number']}**: {objective} **{best['value']:.4f}** · {params}")
        bar = st.container(horizontal=True)
        state.run_link(bar, best["run_id"], label="Open its run")
        state.clone_link(bar, best["run_id"], finetune=True)
        state.clone_link(bar, best["run_id"])


def render_trials(detail: dict) -> None:
    table = trials_table(detail)
    if not len(table):
        st.info("No trial has been asked for yet.")
        return
    objective = detail["spec"]["objective"]
    st.dataframe(
        table,
        key="sweep.trials",
        hide_index=True,
        placeholder="—",
        column_order=[c for c in table.columns if c != "run_id"],
        column_config={
            objective: st.column_config.NumberColumn(objective, format="%.4f"),
            "Run": st.column_config.LinkColumn("Run", display_text="open run"),
        },
    )
    errors = [t for t in detail["trials"] if t.get("error")]
    for t in errors[:3]:
        st.caption(f":red[Trial #{t['number']}: {t['error']}]")


def render_figures(version: tuple, objective: str) -> None:
    figures = sweep_data.figures(version, objective)
    tabs = st.tabs(["Optimisation history", "Parallel coordinates", "Parameter importances"])
    for tab, name in zip(tabs, ("history", "parallel", "importances"), strict=True):
        with tab:
            figure = figures[name]
            if isinstance(figure, str):
                st.info(figure)
            else:
                st.plotly_chart(figure, key=f"sweep.figure.{name}", config=FIGURE_CONFIG)


def render_live(sweep_id: str) -> None:
    """The parts that change while trials train: header, best trial, trials and figures."""
    version = sweep_data.version(sweep_id)
    if version is None:
        st.warning(f"There is no sweep `{sweep_id}` (it may have been deleted).", icon=":material/warning:")
        state.sweep_link(st, None, label="All sweeps")
        return
    detail = sweep_data.detail(version)
    render_header(detail)
    render_best(detail)
    st.subheader("Trials")
    render_trials(detail)
    render_figures(version, detail["spec"]["objective"])
    counts = {t["status"] for t in detail["trials"]}
    live = detail["status"] == SweepStatus.RUNNING or bool(counts & {"queued", "running", "stopping"})
    if st.session_state.get("sweep._live") != live:
        # The timer is set when the fragment is made: a sweep that starts or ends changes it on a full rerun.
        st.session_state["sweep._live"] = live
        st.rerun(scope="app")


def main() -> None:
    sweep_id = st.query_params.get(state.SWEEP_PARAM)
    if not sweep_id:
        render_list()
        return
    state.sweep_link(st, None, label="All sweeps")
    st.fragment(render_live, run_every=REFRESH_S if st.session_state.get("sweep._live", True) else None)(
        sweep_id
    )
    version = sweep_data.version(sweep_id)
    if version is not None:
        render_controls(sweep_data.detail(version))


if __name__ == "__main__":
    main()
