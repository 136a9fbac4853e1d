"""New sweep: the New run form as the base config, a search-space table, the budget, Start sweep.

Sections 1-4 are New run's own (``new_run_inputs``, ``new_run_preview``), on the same ``new.*`` session
keys: the form a user filled for a run is the base of a sweep, and whatever New run's form gains shows
here too. The base config is checked by New run's ``collect_errors``; the search space and the sweep's
settings by the engine's ``review_sweep_spec``, which checks every bound with the run config's own rules:
a bad bound gets the message a bad hyperparameter gets, beside its row, and Start stays disabled.

The sweep's own fields keep their values when the user visits another page and comes back: the boxes
through ``persist_state``, the search-space table through ``new_sweep.rows`` (``st.data_editor`` has no
``persist_state`` and its edits go with it when another page runs).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import form as F
from dashboard import inputs_data, state, sweep_data
from dashboard.sweep_tables import budget_text
from dashboard.views.new_run import collect_errors, init_state, render_base_form
from dashboard.views.new_run_inputs import (
    KEEP,
    error_slot,
    number_box,
)
from trainer_core import (
    DISTRIBUTIONS,
    OBJECTIVES,
    PRUNER_SETTINGS,
    PRUNERS,
    SAMPLERS,
    ConfigError,
    sweepable_fields,
)

ROWS = "new_sweep.rows"  # the table's rows as it opens (a test or a later feature may set them)
EDITED = "new_sweep.rows_edited"  # the table's rows as the user left them at the last run
COLUMNS = ("field", "distribution", "low", "high", "values")
DEFAULT_ROWS = [{"field": "learning_rate", "distribution": "log_uniform", "low": "1e-5", "high": "1e-3"}]
# Widget -> initial text/value; number boxes hold text that the engine reads (see number_box).
SETTINGS = {
    "n_trials": "8",
    "parallel": "1",
    "objective": "eval_f1",
    "sampler": "tpe",
    "pruner": "none",
    "seed": "",
    "name": "",
}


def key(name: str) -> str:
    return f"new_sweep.{name}"


def render_space() -> list[dict]:
    """The search-space table: one row per searched field; returns its rows as the user left them."""
    st.subheader("5 · Search space")
    st.caption(
        "One row per field to search. Bounds for `log_uniform`, `uniform` and `int`; comma-separated "
        "values for `choice`. A searched field's value above is the base only trials do not use."
    )
    if key("space") not in st.session_state and EDITED in st.session_state:
        # The editor and its edits were dropped while another page ran: it opens again on the rows as
        # they were left. Only here, as the editor's identity includes its data: new rows under a live
        # editor would start it afresh, and its edits kept on top of them would be applied twice.
        st.session_state[ROWS] = st.session_state[EDITED]
    rows = st.session_state.setdefault(ROWS, [dict(r) for r in DEFAULT_ROWS])
    frame = pd.DataFrame([{c: _text(r.get(c)) for c in COLUMNS} for r in rows], columns=COLUMNS)
    edited = st.data_editor(
        frame.astype("string"),
        key=key("space"),
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            "field": st.column_config.SelectboxColumn("Field", options=sweepable_fields(), required=True),
            "distribution": st.column_config.SelectboxColumn("Distribution", options=DISTRIBUTIONS),
            "low": st.column_config.TextColumn("Low", help="Lowest value (log_uniform, uniform, int)"),
            "high": st.column_config.TextColumn("High", help="Highest value (log_uniform, uniform, int)"),
            "values": st.column_config.TextColumn(
                "Values", help="choice: values separated by commas, e.g. 8, 16"
            ),
        },
    )
    left = [{c: (None if pd.isna(v) else v) for c, v in row.items()} for row in edited.to_dict("records")]
    st.session_state[EDITED] = left
    return left


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def render_settings(slots: dict) -> None:
    """The budget and the search: trials, parallel trials, objective, sampler, pruner, seed."""
    st.subheader("6 · Budget and search")
    for name, default in SETTINGS.items():
        st.session_state.setdefault(key(name), default)
    c = st.columns(6)
    boxes = (
        ("n_trials", number_box, "Trials", {}),
        (
            "parallel",
            number_box,
            "Parallel trials",
            {"help": "Trials that train at once (each takes a slot)."},
        ),
        ("objective", st.selectbox, "Objective", {"options": OBJECTIVES}),
        ("sampler", st.selectbox, "Sampler", {"options": SAMPLERS}),
        ("pruner", st.selectbox, "Pruner", {"options": PRUNERS}),
        ("seed", number_box, "Sampler seed", {"placeholder": "random"}),
    )
    for col, (name, widget, label, kw) in zip(c, boxes, strict=True):
        with col:
            widget(label, key=key(name), persist_state=KEEP, **kw)
            error_slot(slots, name)
    render_pruner_settings(slots)


def render_pruner_settings(slots: dict) -> None:
    """The chosen pruner's own settings (the engine's list), each a box whose blank means its default."""
    settings = PRUNER_SETTINGS[st.session_state[key("pruner")]]
    if not settings:
        return
    st.caption(f"Pruner settings ({st.session_state[key('pruner')]}); leave a box empty for its default.")
    for col, setting in zip(st.columns(6), settings, strict=False):
        st.session_state.setdefault(key(setting.key), "")
        with col:
            number_box(
                setting.label,
                key=key(setting.key),
                persist_state=KEEP,
                placeholder=f"default: {setting.default}",
                help=setting.help,
            )
            error_slot(slots, setting.key)


def spec_raw(config_dict: dict, rows: list[dict]) -> dict:
    """The sweep spec the page's widgets make, as ``review_sweep_spec`` takes it."""
    s = {name: st.session_state.get(key(name)) for name in SETTINGS}
    return {
        "base": config_dict,
        "space": rows,
        "n_trials": s["n_trials"],
        "parallel": s["parallel"],
        "objective": s["objective"],
        "sampler": s["sampler"],
        "pruner": s["pruner"],
        "seed": (s["seed"] or "").strip() or None,
        # Only the chosen pruner's: the engine refuses another's (a box left filled in before a switch).
        **{p.key: st.session_state.get(key(p.key)) for p in PRUNER_SETTINGS.get(s["pruner"], ())},
    }


def show_errors(slots: dict, errors: dict) -> None:
    """Each base-config error under its widget (as New run shows them)."""
    for slot, (field, message) in errors.items():
        if slot == "advanced_json" and field != "advanced_json":
            message = f"{field}: {message}"
        if slot != "general":
            slots[slot].error(message, icon=":material/warning:")


def render_review(review, slots: dict, advanced_keys: set, space_errors) -> list[str]:
    """The engine's verdict on the space and the settings, each beside what it names; returns the list."""
    listed = []
    for i, exc in sorted(review.rows.items()):
        text = f"Row {i + 1} · **{exc.field}**: {exc.message}"
        space_errors.error(text, icon=":material/warning:")
        listed.append(text)
    for exc in review.errors:
        slot = F.slot_for(exc.field, set(slots), advanced_keys)
        if slot != "general":
            slots[slot].error(exc.message, icon=":material/warning:")
        listed.append(f"**{exc.field or 'sweep'}**: {exc.message}")
    return listed


def render_budget(review, preview: dict | None) -> None:
    rows = (preview or {}).get("n_train")
    if review.spec is None or rows is None:
        st.caption("The budget preview appears once the data can be read and the sweep is sound.")
        return
    estimate = sweep_data.estimate(review.spec, int(rows))
    st.info(budget_text(estimate, review.spec.n_trials, review.spec.parallel), icon=":material/timer:")


def render_start(review, general, listed: list[str]) -> None:
    if listed:
        lines = "\n".join(f"- {line}" for line in listed)
        general.error(
            f"Start is disabled until {'this is' if len(listed) == 1 else 'these are'} fixed:\n{lines}"
        )
    c1, c2 = st.columns([3, 2])
    with c1:
        st.text_input(
            "Sweep name", key=key("name"), persist_state=KEEP, placeholder="default: sweep <id> of <model>"
        )
    with c2:
        st.write("")
        start = st.button(
            "Start sweep",
            key=key("start"),
            type="primary",
            disabled=not review.ok,
            icon=":material/play_arrow:",
            width="stretch",
        )
    if start and review.ok:
        name = (st.session_state.get(key("name")) or "").strip() or None
        try:
            with st.spinner("Checking the checkpoint and the data, then starting the first trials…"):
                sweep_id = sweep_data.create(review.spec, name)
        except ConfigError as exc:
            general.error(f"Not started: {exc.field + ': ' if exc.field else ''}{exc.message}")
            return
        state.flash(f"Sweep {name or sweep_id} started")
        state.open_sweep(sweep_id)


class _NoReview:
    """What the page shows while the base config itself is unsound: nothing to review yet."""

    spec = None
    rows: dict = {}
    errors: tuple = ()
    ok = False


def main() -> None:
    st.title("New sweep")
    init_state()
    st.caption(
        "The base config is the New run form (shared with it); each trial changes the fields of the search space."
    )
    help_ = inputs_data.field_help()
    slots, checkpoint, preview, (config_dict, pre_errors, advanced_keys) = render_base_form(help_)
    with st.container(border=True):
        rows = render_space()
        space_errors = st.container()
        render_settings(slots)
    with st.container(border=True):
        st.subheader("7 · Review and start")
        general = st.empty()
        slots["general"] = general
        config, errors = collect_errors(slots, config_dict, pre_errors, advanced_keys, checkpoint, preview)
        show_errors(slots, errors)
        listed = [f"**{field or 'config'}**: {message}" for field, message in errors.values()]
        review = _NoReview() if config is None else sweep_data.review(spec_raw(config_dict, rows))
        listed += render_review(review, slots, advanced_keys, space_errors)
        render_budget(review, preview)
        render_start(review, general, listed)


if __name__ == "__main__":
    main()
