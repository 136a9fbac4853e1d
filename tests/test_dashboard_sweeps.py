"""The sweep pages under AppTest, over a real sweep: three trials of the tiny BERT trained for real, their
study in the store's SQLite file; and the New sweep form's checks, which are the engine's."""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qsl

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import tiny_config
from tests.test_dashboard_app import APP, TIMEOUT, button, texts
from tests.test_launcher import wait_for
from trainer_core import Launcher, Sweeps, SweepStatus, estimate_trial_time, parse_sweep_spec
from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED, STOPPED

PAGES = {"new": "views/new_run.py", "run": "views/run.py", "compare": "views/compare.py"}
LR = {"learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2}}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A finished sweep of three one-epoch trials, two at a time: (home, sweep id, its detail)."""
    home = tmp_path_factory.mktemp("sweeps") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRAINER_CORE_SLOTS", "2")
        mp.delenv("TRAINER_CORE_DB", raising=False)
        sweeps = Sweeps(Launcher(home=home))
        spec = {
            "base": tiny_config(num_train_epochs=1, max_train_samples=48),
            "space": dict(LR),
            "n_trials": 3,
            "parallel": 2,
            "sampler": "random",
            "seed": 3,
        }
        sweep_id = sweeps.create(spec, name="ui sweep")
        assert sweeps.wait(sweep_id, timeout=240)["status"] == SweepStatus.COMPLETED
        return home, sweep_id, sweeps.get(sweep_id)


@pytest.fixture
def in_swept(swept, monkeypatch):
    monkeypatch.setenv("TRAINER_CORE_HOME", str(swept[0]))
    monkeypatch.delenv("TRAINER_CORE_DB", raising=False)
    return swept


def open_at(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()  # st.navigation maps page files to their routes on the first run
    at.query_params.update(query)
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def links(at: AppTest) -> dict[str, dict[str, str]]:
    """Page links by label: their query parameters."""
    return {e.proto.label: dict(parse_qsl(e.proto.query_string)) for e in at.get("page_link")}


# -- the Sweep page ---------------------------------------------------------------------------------


def test_sweep_page_shows_trials_figures_and_the_best_trial(in_swept):
    home, sweep_id, detail = in_swept
    at = open_at("views/sweep.py", sweep=sweep_id)
    assert at.title[0].value == "ui sweep"
    assert "3 of 3 trials done" in texts(at.caption)

    table = at.dataframe[0].value
    assert list(table["Trial"].str.rstrip(" ★")) == ["#0", "#1", "#2"]
    assert set(table["Status"]) == {f"✔ {COMPLETED}"}
    trials = detail["trials"]
    assert table["learning_rate"].tolist() == pytest.approx([t["params"]["learning_rate"] for t in trials])
    assert table["eval_f1"].tolist() == pytest.approx([t["value"] for t in trials])
    assert table["Run"].tolist() == [f"run?run={t['run_id']}" for t in trials]

    charts = at.get("plotly_chart")
    assert len(charts) == 3  # history, parallel coordinates, importances: all drawn, none "not yet"
    assert '"Optimisation history"' in charts[0].proto.spec and '"best so far"' in charts[0].proto.spec

    best = detail["best"]
    assert best["value"] == max(t["value"] for t in trials)
    assert f"Best trial #{best['number']}" in texts(at.markdown)
    found = links(at)
    assert found["Fine-tune further"] == {"finetune": best["run_id"]}
    assert found["Clone"] == {"clone": best["run_id"]}
    assert found["Compare these trials"] == {"runs": ",".join(t["run_id"] for t in trials)}

    # Fine-tune further: New run with the best trial's own fine-tuned model as the checkpoint.
    at.query_params.clear()
    at.query_params.update(found["Fine-tune further"])
    at.switch_page(PAGES["new"]).run()
    model = Launcher(home=home).model_dir(best["run_id"])
    assert model is not None and at.selectbox(key="new.model_run").value == str(model)


def test_sweep_header_names_the_pruner_settings_the_sweep_was_given():
    from dashboard.views.sweep import pruner_settings

    halving = parse_sweep_spec(
        {
            "base": tiny_config(num_train_epochs=3),
            "space": dict(LR),
            "n_trials": 2,
            "pruner": "successive_halving",
            "pruner_reduction_factor": 2,
        }  # fmt: skip
    )
    assert pruner_settings(halving.to_dict()) == (
        " (min resource auto, reduction factor 2, min early-stopping rate 0)"
    )
    plain = parse_sweep_spec({"base": tiny_config(), "space": dict(LR), "n_trials": 2})
    assert pruner_settings(plain.to_dict()) == ""


def test_sweeps_list_and_runs_filter(in_swept):
    _, sweep_id, detail = in_swept
    at = open_at("views/sweep.py")
    table = at.dataframe[0].value
    row = table.loc[sweep_id]
    assert (row["Name"], row["Status"], row["Trials"]) == ("ui sweep", "completed", "3 / 3")
    assert row["Best"] == pytest.approx(detail["best"]["value"])
    assert links(at)["ui sweep"] == {"sweep": sweep_id}

    at = open_at("views/runs.py")
    at.multiselect(key="runs.sweep").set_value([sweep_id]).run()
    runs = at.dataframe[0].value
    assert sorted(runs["Trial"]) == ["#0", "#1", "#2"] and len(runs) == 3


def test_budget_preview_counts_steps_from_the_data_and_times_them_from_finished_runs(in_swept):
    at = open_at("views/new_sweep.py")
    at.selectbox(key="new.model_builtin").set_value("builtin:tiny-bert").run()
    rows = int(next(m.value for m in at.metric if m.label == "Training rows").replace(",", ""))
    budget = next(i.value for i in at.info if "trials ×" in i.value)
    # The form's defaults: batch 8, 3 epochs; the sweep's three trials are this store's finished runs.
    assert f"8 trials × {math.ceil(rows / 8) * 3:,} steps each ({rows:,} training rows)" in budget
    assert "From 3 completed runs of this checkpoint" in budget and not button(at, "new_sweep.start").disabled


def test_estimate_trial_time_ranges_over_the_space_and_reads_only_its_checkpoint():
    spec = parse_sweep_spec(
        {
            "base": tiny_config(),  # 96 rows at most, 2 epochs
            "space": {**LR, "per_device_train_batch_size": {"distribution": "choice", "values": [8, 16]}},
            "n_trials": 4,
        }
    )
    assert estimate_trial_time(spec, 4000, []).trial_s is None
    runs = [
        {"status": COMPLETED, "config": {"model_name_or_path": "builtin:tiny-bert"}, "started_at": 0.0,
         "train_began_at": 2.0, "finished_at": 2.0 + 10 * per_step, "step": 10, "start_step": 0}
        for per_step in (0.1, 0.2, 0.9)
    ] + [
        {"status": COMPLETED, "config": {"model_name_or_path": "builtin:minilm-l6"}, "started_at": 0.0,
         "train_began_at": 1.0, "finished_at": 100.0, "step": 10, "start_step": 0},
        {"status": STOPPED, "config": {"model_name_or_path": "builtin:tiny-bert"}, "started_at": 0.0,
         "train_began_at": 1.0, "finished_at": 100.0, "step": 10, "start_step": 0},
    ]  # fmt: skip
    estimate = estimate_trial_time(spec, 4000, runs)
    assert estimate.steps == (12, 24) and estimate.rows == 96  # 96/16 x 2 and 96/8 x 2
    assert estimate.runs_measured == 3 and estimate.sec_per_step == pytest.approx(0.2)
    assert estimate.trial_s == pytest.approx((2.0 + 12 * 0.2, 2.0 + 24 * 0.2))
    assert estimate.total_s(4) == pytest.approx((4 * 4.4, 4 * 6.8))


# -- the New sweep form -----------------------------------------------------------------------------


def test_bad_space_rows_get_per_field_errors_and_start_stays_disabled(runs_home):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.session_state["new_sweep.rows"] = [
        {"field": "learning_rate", "distribution": "uniform", "low": "-1", "high": "1e-3"},
        {"field": "per_device_train_batch_size", "distribution": "uniform", "low": "8", "high": "32"},
        {"field": "weight_decay", "distribution": "log_uniform", "low": "0", "high": "0.1"},
        {"field": "warmup_steps", "distribution": "uniform", "low": "0.1", "high": "0.01"},
    ]
    at.switch_page("views/new_sweep.py").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = texts(at.error)
    # The run config's own rule for a bad learning rate, word for word, tied to its row and field:
    assert re.search(
        r"Row 1 · \*\*learning_rate\*\*: search space low bound .*must be greater than 0", errors
    )
    assert "Row 2 · **per_device_train_batch_size**" in errors and "int distribution" in errors
    assert "Row 3 · **weight_decay**" in errors and "above 0" in errors
    assert "Row 4 · **warmup_steps**" in errors and "swap them" in errors
    assert "Start is disabled" in errors and button(at, "new_sweep.start").disabled

    # A sweep setting the engine refuses: said under its box, and Start still disabled.
    at.session_state["new_sweep.rows"] = [{"field": "learning_rate", "distribution": "log_uniform",
                                            "low": "1e-5", "high": "1e-3"}]  # fmt: skip
    at.text_input(key="new_sweep.n_trials").set_value("2")
    at.text_input(key="new_sweep.parallel").set_value("3").run()
    assert "more than n_trials" in texts(at.error) and button(at, "new_sweep.start").disabled
    at.text_input(key="new_sweep.parallel").set_value("1").run()
    assert not at.error and not button(at, "new_sweep.start").disabled


def test_sweep_controls_stop_resume_and_delete_keeping_runs(runs_home, monkeypatch):
    """One long trial at a time: Stop stops it (checkpoint) and asks for no more; Resume asks for a new
    trial; Delete keeping the runs removes the sweep and leaves its trials as plain runs."""
    monkeypatch.setenv("TRAINER_CORE_SLOTS", "1")
    launcher = Launcher(home=runs_home)
    sweeps = Sweeps(launcher)
    spec = {"base": tiny_config(num_train_epochs=30), "space": dict(LR), "n_trials": 2, "parallel": 1}
    sweep_id = sweeps.create(spec, name="long sweep")
    wait_for(lambda: (launcher.store.sweep_runs(sweep_id)[0]["step"] or 0) >= 2, what="trial 0 to train")

    at = open_at("views/sweep.py", sweep=sweep_id)
    assert button(at, "sweep.resume").disabled
    button(at, "sweep.stop").click().run()
    assert sweeps.wait(sweep_id, timeout=120)["status"] == SweepStatus.STOPPED
    assert [r["status"] for r in launcher.store.sweep_runs(sweep_id)] == [STOPPED]

    at = open_at("views/sweep.py", sweep=sweep_id)
    button(at, "sweep.resume").click().run()
    assert launcher.store.get_sweep(sweep_id)["status"] == SweepStatus.RUNNING
    assert len(launcher.store.sweep_runs(sweep_id)) == 2  # a new trial replaces the stopped one

    at = open_at("views/sweep.py", sweep=sweep_id)
    at.toggle(key="sweep.keep_runs").set_value(True).run()
    button(at, "sweep.delete").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert launcher.store.list_sweeps() == []
    kept = wait_for(
        lambda: (
            (rs := launcher.store.list_runs()) and all(r["status"] not in ACTIVE_STATUSES for r in rs) and rs
        ),
        timeout=120,
        what="the kept runs to stop",
    )
    assert len(kept) == 2 and all(r["sweep_id"] is None for r in kept)


def test_new_sweep_keeps_its_table_and_settings_when_the_user_visits_other_pages(runs_home):
    """The search-space table (whose edits Streamlit drops with the editor when another page runs) and
    every sweep setting, pruner settings included, are as the user left them after a visit elsewhere."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/new_sweep.py").run()
    # The browser's edits to the table: a bound changed, a row added.
    at.session_state["new_sweep.space"] = {
        "edited_rows": {0: {"high": "1e-2"}},
        "added_rows": [{"field": "weight_decay", "distribution": "uniform", "low": "0", "high": "0.1"}],
        "deleted_rows": [],
    }
    at.text_input(key="new_sweep.n_trials").set_value("6")
    at.text_input(key="new_sweep.parallel").set_value("2")
    at.selectbox(key="new_sweep.objective").set_value("eval_loss")
    at.selectbox(key="new_sweep.sampler").set_value("random")
    at.selectbox(key="new_sweep.pruner").set_value("successive_halving").run()
    # Successive halving's own settings, each checked by the engine and named in its message:
    at.text_input(key="new_sweep.pruner_reduction_factor").set_value("1").run()
    assert "**pruner_reduction_factor**: must be at least 2, got 1" in texts(at.error)
    assert button(at, "new_sweep.start").disabled
    at.text_input(key="new_sweep.pruner_reduction_factor").set_value("3")
    at.text_input(key="new_sweep.pruner_min_resource").set_value("1").run()
    assert not at.error and not button(at, "new_sweep.start").disabled

    edited = [["learning_rate", "log_uniform", "1e-5", "1e-2"], ["weight_decay", "uniform", "0", "0.1"]]
    settings = {"n_trials": "6", "parallel": "2", "objective": "eval_loss", "sampler": "random",
                "pruner": "successive_halving", "pruner_min_resource": "1", "pruner_reduction_factor": "3"}  # fmt: skip

    def away_and_back(page: str) -> list[list[str]]:
        at.switch_page(page).run()
        at.switch_page("views/new_sweep.py").run()
        assert not at.exception, [e.value for e in at.exception]
        for name, value in settings.items():
            assert at.session_state[f"new_sweep.{name}"] == value, name
        return at.data_editor[0].value[["field", "distribution", "low", "high"]].values.tolist()

    for page in ("views/runs.py", "views/new_run.py", "views/sweep.py"):
        assert away_and_back(page) == edited, page
    # The kept settings are what the engine reads: with them, a rate of 2 puts the first rung at
    # 1 x 3^2 = epoch 9, past the form's 3 epochs.
    at.text_input(key="new_sweep.pruner_min_early_stopping_rate").set_value("2").run()
    assert "**pruner_min_early_stopping_rate**: successive halving would first compare trials at epoch 9" in (
        texts(at.error)
    )
    at.text_input(key="new_sweep.pruner_min_early_stopping_rate").set_value("")

    # An edit after coming back applies to the rows as kept (once, not on top of the first edits).
    at.session_state["new_sweep.space"] = {"edited_rows": {}, "added_rows": [], "deleted_rows": [0]}
    at.run()
    assert away_and_back("views/runs.py") == edited[1:]
    # Another pruner: its own box shows, and successive halving's kept values are not sent with it.
    at.selectbox(key="new_sweep.pruner").set_value("median").run()
    assert [t.key for t in at.text_input if t.key.startswith("new_sweep.pruner_")] == [
        "new_sweep.pruner_startup_trials"
    ]
    assert not at.error and not button(at, "new_sweep.start").disabled
