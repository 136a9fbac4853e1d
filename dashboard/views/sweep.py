"""Sweep: one sweep (``/sweep?sweep=<id>``), or the list of sweeps (``/sweep``).

A sweep's page shows its trials (each a run), Optuna's figures of its study, its best trial with the
ways to go on from it (fine-tune further, clone into New run), and the sweep's controls: stop (running
trials checkpoint and stop, queued ones leave the queue), resume, add trials, delete (with its runs or
keeping them).

While the sweep runs (or a trial is still active), two parts are fragments with no timer: the trials
(header, best trial, table) and the figures, rerun by a small watcher when what each is drawn from moved
(``sweep_data.version``; the figures only when a trial finished). Where ``dashboard/serve.py`` serves the
version route, the browser asks it every REFRESH_S (``?sweep=<id>``) and reruns the watcher only when the
answer moved, so a quiet sweep runs no script and sends nothing; elsewhere the watcher reruns on a
REFRESH_S timer. A change of what only the whole page draws (the sweep's status, its controls, a new
trial's run, the sweep deleted) reruns the page; a finished sweep's page has no watcher, as a finished
run's page.
"""

from __future__ import annotations

from collections import Counter

import streamlit as st

from dashboard import live_poll, state, sweep_data
from dashboard.live import drawn_marks, record_drawn, rerun_parts, stale_parts
from dashboard.sweep_tables import trials_done, trials_table
from dashboard.views.sweeps import main as render_list
from trainer_core import (
    ACTIVE_STATUSES,
    PRUNER_SETTINGS,
    ConfigError,
    RunStateError,
    SweepNotFoundError,
    SweepStatus,
)

REFRESH_S = 2.0
TRIALS = "sweep.part.trials"  # header, best trial and trials table: rerun when the sweep or a trial moved
FIGURES = "sweep.part.figures"  # Optuna's figures: rerun when a trial finished (they show no other)
PAGE = "page"  # the drawn mark of what only a whole-page run draws (controls, whether to watch)
DRAWN = "sweep._drawn"
POLL = "sweep.poll"  # the version poller's component (dashboard.live_poll), in the watcher
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


def render_figures(mark: tuple, objective: str) -> None:
    figures = sweep_data.figures(mark, objective)
    tabs = st.tabs(["Optimisation history", "Parallel coordinates", "Parameter importances"])
    for tab, name in zip(tabs, ("history", "parallel", "importances"), strict=True):
        with tab:
            figure = figures[name]
            if isinstance(figure, str):
                st.info(figure)
            else:
                st.plotly_chart(figure, key=f"sweep.figure.{name}", config=FIGURE_CONFIG)


def is_live(version: sweep_data.SweepVersion) -> bool:
    """Whether the sweep may still change by itself: it runs, or one of its trials is still active."""
    return version.status == SweepStatus.RUNNING or any(r[2] in ACTIVE_STATUSES for r in version.runs)


def page_mark(version: sweep_data.SweepVersion | None) -> tuple | None:
    """What only a run of the whole page draws: the controls (by the sweep's status, the trials' runs
    Compare opens) and whether the page watches the sweep at all."""
    if version is None:
        return None
    return version.status, is_live(version), tuple(r[0] for r in version.runs)


def part_marks(version: sweep_data.SweepVersion) -> dict[str, tuple]:
    return {TRIALS: version, FIGURES: sweep_data.figures_mark(version)}


@st.fragment(key=TRIALS)
def render_trials_part(sweep_id: str) -> None:
    """The header, best trial and trials; redrawn by the watcher, the rest of the page does not rerun."""
    version = sweep_data.version(sweep_id)
    record_drawn(DRAWN, TRIALS, version)
    if version is None:
        return  # deleted meanwhile: the watcher reruns the page, which says so
    detail = sweep_data.detail(version)
    render_header(detail)
    render_best(detail)
    st.subheader("Trials")
    render_trials(detail)


@st.fragment(key=FIGURES)
def render_figures_part(sweep_id: str) -> None:
    version = sweep_data.version(sweep_id)
    if version is None:
        return
    mark = sweep_data.figures_mark(version)
    record_drawn(DRAWN, FIGURES, mark)
    render_figures(mark, sweep_data.detail(version)["spec"]["objective"])


def watch(sweep_id: str) -> None:
    """One small read of the sweep (``sweep_data.version``); the parts whose data moved are redrawn."""
    now = sweep_data.version(sweep_id)
    if page_mark(now) != drawn_marks(DRAWN).get(PAGE):
        # Deleted, ended, stopped or resumed, or a trial launched: the controls and the watcher itself
        # (polling, a timer, or none once finished) are drawn by the page's own run.
        st.rerun(scope="app")
    rerun_parts(stale_parts(drawn_marks(DRAWN), part_marks(now)))
    if live_poll.polling() and live_poll.watch(
        POLL, {"sweep": sweep_id}, live_poll.sweep_token(now), REFRESH_S
    ):
        st.rerun(scope="app")  # the route is unreachable from this browser: declare the timer instead


def main() -> None:
    sweep_id = st.query_params.get(state.SWEEP_PARAM)
    if not sweep_id:
        render_list()
        return
    state.sweep_link(st, None, label="All sweeps")
    version = sweep_data.version(sweep_id)
    record_drawn(DRAWN, PAGE, page_mark(version))
    if version is None:
        st.warning(f"There is no sweep `{sweep_id}` (it may have been deleted).", icon=":material/warning:")
        return
    render_trials_part(sweep_id)
    render_figures_part(sweep_id)
    if is_live(version):
        # After the parts: a watcher reruns parts drawn before it. A timer only where the page does not poll.
        st.fragment(run_every=None if live_poll.polling() else REFRESH_S)(watch)(sweep_id)
    render_controls(sweep_data.detail(version))


if __name__ == "__main__":
    main()
