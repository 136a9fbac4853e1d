"""Sweeps for real: Optuna studies in the store's database, every trial a real run of the tiny BERT."""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics

import pytest
import yaml

from tests.conftest import tiny_config
from tests.test_cli import cli
from tests.test_launcher import wait_for
from trainer_core.errors import ConfigError
from trainer_core.runs.launcher import Launcher
from trainer_core.sweeps import study as studies
from trainer_core.sweeps.driver import Sweeps, SweepStatus
from trainer_core.sweeps.spec import parse_sweep_spec, spec_from_dict
from trainer_core.tracking.status import COMPLETED, FAILED, PRUNED, RUNNING, STOPPED

LR = {"learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 0.5}}


def spec(**overrides) -> dict:
    return {"base": tiny_config(), "space": dict(LR), "n_trials": 3, "parallel": 2, **overrides}


# -- bad input, refused before anything runs ------------------------------------------------------

BAD_SPECS = [
    ({"space": {}}, "space", "empty"),
    (
        {"space": {"learning_rat": {"distribution": "uniform", "low": 0, "high": 1}}},
        "learning_rat",
        "'learning_rate'",
    ),
    (
        {"space": {"train_file": {"distribution": "choice", "values": ["a.csv"]}}},
        "train_file",
        "cannot be swept",
    ),
    ({"space": {"output_dir": {"distribution": "choice", "values": ["x"]}}}, "output_dir", "cannot be swept"),
    (
        {"space": {"learning_rate": {"distribution": "log_uniform", "low": 1e-3, "high": 1e-5}}},
        "learning_rate",
        "swap",
    ),
    (
        {"space": {"weight_decay": {"distribution": "log_uniform", "low": 0, "high": 0.1}}},
        "weight_decay",
        "above 0",
    ),
    # The run config's own rule, word for word as a bad hyperparameter gets it:
    (
        {"space": {"learning_rate": {"distribution": "uniform", "low": -1, "high": 1e-3}}},
        "learning_rate",
        "greater than 0",
    ),
    (
        {"space": {"learning_rate": {"distribution": "uniform", "low": 1e-5, "high": 2}}},
        "learning_rate",
        "diverge",
    ),
    (
        {"space": {"per_device_train_batch_size": {"distribution": "uniform", "low": 8, "high": 32}}},
        "per_device_train_batch_size",
        "int distribution",
    ),
    (
        {
            "space": {"per_device_train_batch_size": {"distribution": "choice", "values": [8, 16, 32]}},
            "sampler": "grid",
            "n_trials": 2,
        },
        "n_trials",
        "grid has 3 points",
    ),
    ({"sampler": "grid"}, "learning_rate", "grid sampler needs values"),
    ({"objective": "eval_bleu"}, "objective", "eval_f1"),
    ({"objective": "eval_loss", "direction": "maximize"}, "direction", "minimize"),
    (
        {"pruner": "median", "base": tiny_config(eval_strategy="no", save_strategy="no")},
        "eval_strategy",
        "pruner",
    ),
    ({"parallel": 5}, "parallel", "more than n_trials"),
    ({"n_trials": 0}, "n_trials", "at least 1"),
    ({"sampler": "bayes"}, "sampler", "tpe"),
    # The pruners' settings, each named, and one pruner's setting given to another refused:
    ({"pruner": "median", "pruner_startup_trials": 0}, "pruner_startup_trials", "at least 1"),
    ({"pruner": "successive_halving", "pruner_min_resource": "soon"}, "pruner_min_resource", "auto"),
    ({"pruner": "successive_halving", "pruner_min_resource": 0}, "pruner_min_resource", "at least 1"),
    ({"pruner": "successive_halving", "pruner_reduction_factor": 1}, "pruner_reduction_factor", "at least 2"),
    (
        {"pruner": "successive_halving", "pruner_min_early_stopping_rate": -1},
        "pruner_min_early_stopping_rate",
        "at least 0",
    ),
    ({"pruner": "median", "pruner_reduction_factor": 3}, "pruner_reduction_factor", "successive_halving"),
    ({"pruner_startup_trials": 3}, "pruner_startup_trials", "median"),
    # A first rung at or past the last of the trials' 2 epochs would prune nothing:
    ({"pruner": "successive_halving", "pruner_min_resource": 2}, "pruner_min_resource", "below 2"),
    (
        {"pruner": "successive_halving", "pruner_min_early_stopping_rate": 1},
        "pruner_min_early_stopping_rate",
        "epoch 4",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "field", "words"), BAD_SPECS, ids=[b[1] + "-" + b[2] for b in BAD_SPECS]
)
def test_bad_sweep_input_is_refused_before_anything_starts(launcher, overrides, field, words):
    with pytest.raises(ConfigError) as error:
        Sweeps(launcher).create(spec(**overrides))
    assert error.value.field == field and words in error.value.message, str(error.value)
    assert launcher.store.list_sweeps() == [] and launcher.store.list_runs() == []
    assert not [p for p in launcher.home.iterdir() if p.is_dir()]  # no run folder either


def test_spec_round_trips_and_a_grid_sizes_its_own_budget():
    grid = parse_sweep_spec(
        spec(
            space={
                "per_device_train_batch_size": {"distribution": "choice", "values": [8, 16]},
                "num_train_epochs": {"distribution": "int", "low": 1, "high": 3},
            },
            sampler="grid",
            n_trials=None,
            parallel=1,
        )
    )
    assert grid.n_trials == 6 and grid.grid == {
        "per_device_train_batch_size": [8, 16],
        "num_train_epochs": [1, 2, 3],
    }
    assert spec_from_dict(grid.to_dict()) == grid
    halving = parse_sweep_spec(
        spec(
            pruner="successive-halving",
            pruner_min_resource="1",
            pruner_reduction_factor=3,
            pruner_min_early_stopping_rate="",  # a blank box: the default
        )
    )
    assert spec_from_dict(halving.to_dict()) == halving and "pruner_startup_trials" not in halving.to_dict()
    pruner = studies.make_pruner(halving)
    assert (pruner._min_resource, pruner._reduction_factor, pruner._min_early_stopping_rate) == (1, 3, 0)
    assert studies.make_pruner(parse_sweep_spec(spec(pruner="successive_halving")))._min_resource is None
    loss = parse_sweep_spec(spec(objective="loss"))
    assert (loss.objective, loss.direction) == ("eval_loss", "minimize")
    assert studies.optuna_storage_url("sqlite:////tmp/x/metrics.db") == "sqlite:////tmp/x/metrics.db"
    assert studies.optuna_storage_url("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"


# -- real sweeps ----------------------------------------------------------------------------------


@pytest.mark.both_stores
def test_sweep_trains_trials_in_parallel_prunes_the_bad_one_and_keeps_the_best(runs_home, monkeypatch):
    """Two good learning rates train side by side; the third, 0.5, diverges (eval loss ~3.5 after one
    epoch against ~0.7) and the median pruner, live after two completed trials, must end it there.

    Two, not one: with one, whichever good trial finished first could prune the other, had it not yet
    reported its first epoch (1e-3 gives 0.6994 at epoch 1, 2e-3 0.7059: trial 1 was pruned in 4 of 11
    runs on a loaded machine). With two, only trial 2 can be pruned; it starts when a good trial ends,
    and its worker's start (7-12 s measured) outlasts what the other good trial, begun with it, has left."""
    monkeypatch.setenv("TRAINER_CORE_SLOTS", "2")
    launcher = Launcher(home=runs_home)
    sweeps = Sweeps(launcher)
    sweep_id = sweeps.create(
        spec(
            objective="eval_loss",
            pruner="median",
            pruner_startup_trials=2,
            enqueue_trials=[{"learning_rate": 1e-3}, {"learning_rate": 2e-3}, {"learning_rate": 0.5}],
        )
    )
    sweep = sweeps.wait(sweep_id, timeout=300)
    assert sweep["status"] == SweepStatus.COMPLETED
    detail = sweeps.get(sweep_id)
    runs = {r["trial_number"]: r for r in launcher.store.sweep_runs(sweep_id)}
    assert [t["number"] for t in detail["trials"]] == [0, 1, 2] and sorted(runs) == [0, 1, 2]

    # Trials 0 and 1 trained at the same time.
    first, second = runs[0], runs[1]
    assert first["started_at"] < second["finished_at"] and second["started_at"] < first["finished_at"]

    # Each completed trial is a complete run, its sampled value in its config.
    for number in (0, 1):
        run = runs[number]
        assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run["id"]))
        assert (
            launcher.config_of(run["id"])["learning_rate"]
            == detail["trials"][number]["params"]["learning_rate"]
        )
        assert launcher.model_dir(run["id"]) is not None and len(launcher.predictions(run["id"])) == 48
        assert detail["trials"][number]["state"] == "complete"

    # The diverging trial was pruned after its first evaluation, rightly: worse than the median then.
    pruned = runs[2]
    assert pruned["status"] == PRUNED and detail["trials"][2]["state"] == "pruned", launcher.log_tail(
        pruned["id"]
    )
    assert launcher.store.get_series(pruned["id"], "eval_loss")["epoch"].tolist() == [1.0]
    assert pruned["step"] < pruned["total_steps"]
    epoch_one = [launcher.store.get_series(runs[n]["id"], "eval_loss")["value"].iloc[0] for n in (0, 1)]
    assert detail["trials"][2]["intermediate"][1] > statistics.median(epoch_one)
    assert any(e["kind"] == "pruned" for e in launcher.store.events(pruned["id"]))

    # The study's best is the best trial run's recorded score.
    recorded = {n: runs[n]["summary"]["final_metrics"]["eval_loss"] for n in (0, 1)}
    best_number = min(recorded, key=recorded.get)
    assert detail["best"]["number"] == best_number and detail["best"]["run_id"] == runs[best_number]["id"]
    assert sweeps.study(sweep_id).best_value == recorded[best_number]

    if launcher.store.dialect == "sqlite":
        # Optuna's tables sit beside the store's in one file, and the file is still a sound store.
        with sqlite3.connect(launcher.store.path) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "metrics", "events", "sweeps", "studies", "trials", "trial_values"} <= tables
        assert Launcher(home=runs_home).store.list_runs()


def test_successive_halving_prunes_the_trial_behind_at_its_first_rung(launcher):
    """Successive halving with the spec's own settings: rungs at min_resource x reduction_factor ^
    (min_early_stopping_rate + rung) = 1 x 2^1 = epoch 2, then 4; at each rung 1 trial in 2 goes on.

    Why the outcome cannot depend on the machine's load: one trial at a time (parallel 1) in the
    enqueued order, so trial 1 is asked for only once trial 0 has ended, and trial 0 recorded its epoch-2
    loss at the rung while it trained (epoch 2 of 3 is not its last evaluation, where nothing is
    recorded). Trial 1 then meets exactly one competitor at epoch 2, and with reduction factor 2 only the
    better of the two goes on. The losses are a seeded run's, and far apart: at epoch 2 learning rate 1e-3
    gave 0.70 and 0.5 gave 24 (3.8 with 96 rows), a gap no thread timing moves. Pruned at epoch 2 shows
    the settings reached the pruner in the worker: with Optuna's defaults (min_resource auto, known only
    once a trial completed) trial 0 records no rung value and this sweep prunes nothing."""
    sweeps = Sweeps(launcher)
    sweep_id = sweeps.create(
        spec(
            base=tiny_config(num_train_epochs=3, max_train_samples=48),  # 3 steps an epoch
            n_trials=2,
            parallel=1,
            objective="eval_loss",
            pruner="successive_halving",
            pruner_min_resource=1,
            pruner_reduction_factor=2,
            pruner_min_early_stopping_rate=1,
            enqueue_trials=[{"learning_rate": 1e-3}, {"learning_rate": 0.5}],
        )
    )
    assert sweeps.wait(sweep_id, timeout=240)["status"] == SweepStatus.COMPLETED
    kept, pruned = launcher.store.sweep_runs(sweep_id)
    assert kept["status"] == COMPLETED, (kept["error"], launcher.log_tail(kept["id"]))
    assert pruned["status"] == PRUNED, (pruned["error"], launcher.log_tail(pruned["id"]))

    # Optuna's own record: the states, each trial's value at the rung, and who won it.
    import optuna

    trials = sweeps.study(sweep_id).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]
    assert sorted(trials[1].intermediate_values) == [1, 2]  # pruned at the rung, epoch 2
    rung = [t.system_attrs["completed_rung_0"] for t in trials]
    assert rung == [t.intermediate_values[2] for t in trials] and rung[1] > rung[0]
    assert not any("completed_rung_1" in t.system_attrs for t in trials)

    # Through the stop path: two of three epochs trained and evaluated, then a final status.
    assert launcher.store.get_series(pruned["id"], "eval_loss")["epoch"].tolist() == [1.0, 2.0]
    assert pruned["step"] == 2 * pruned["total_steps"] // 3
    assert any(e["kind"] == "pruned" for e in launcher.store.events(pruned["id"]))
    assert sweeps.get(sweep_id)["best"]["run_id"] == kept["id"]


def test_a_restarted_launcher_resumes_the_study_where_it_was(runs_home, tmp_path):
    """The CLI that started the sweep is gone, then trial 0's worker is killed (a machine restart, as
    far as the sweep can tell): the next launcher fails that trial, tells the study, and goes on with
    trial 1 of the same study, which completes the sweep."""
    spec_file = tmp_path / "sweep.yaml"
    long_then_short = [
        {"learning_rate": 1e-3, "num_train_epochs": 30},
        {"learning_rate": 1e-3, "num_train_epochs": 1},
    ]
    epochs = {"num_train_epochs": {"distribution": "choice", "values": [30, 1]}}
    short = spec(n_trials=2, parallel=1, space={**LR, **epochs}, enqueue_trials=long_then_short)
    spec_file.write_text(yaml.safe_dump({**short, "base": tiny_config(max_train_samples=48)}))
    sweep_id = cli("sweep", str(spec_file), "--detach", home=runs_home).stdout.strip()
    store = Launcher(home=runs_home).store
    (run,) = wait_for(
        lambda: [r for r in store.sweep_runs(sweep_id) if r["status"] == RUNNING], what="trial 0"
    )
    os.kill(run["pid"], signal.SIGKILL)

    launcher = Launcher(home=runs_home)
    sweeps = Sweeps(launcher)
    wait_for(lambda: launcher.reconcile() == [run["id"]], timeout=30, what="reconcile to notice")
    sweep = sweeps.wait(sweep_id, timeout=180)
    detail = sweeps.get(sweep_id)
    assert [(t["number"], t["state"]) for t in detail["trials"]] == [(0, "fail"), (1, "complete")]
    assert detail["trials"][0]["status"] == FAILED and "gone" in detail["trials"][0]["error"]
    assert sweep["status"] == SweepStatus.COMPLETED and detail["best"]["number"] == 1

    shown = yaml.safe_load(cli("sweep", "show", sweep_id, "--json", home=runs_home).stdout)
    assert shown["id"] == sweep_id and shown["best"]["run_id"] == detail["trials"][1]["run_id"]
    assert sweep_id in cli("sweep", "list", home=runs_home).stdout
    out = cli("sweep", "show", "nope", home=runs_home, check=False)
    assert out.returncode == 2 and "no sweep" in out.stderr and "Traceback" not in out.stderr


def test_stop_resume_and_delete_a_sweep(runs_home, monkeypatch):
    """One slot: one trial trains, one waits. Stop: the first checkpoints and stops, the second leaves
    the queue, no trial follows. Resume asks for new trials; delete removes the runs and the study."""
    monkeypatch.setenv("TRAINER_CORE_SLOTS", "1")
    launcher = Launcher(home=runs_home)
    sweeps = Sweeps(launcher)
    sweep_id = sweeps.create(spec(n_trials=4, parallel=2, base=tiny_config(num_train_epochs=30)))
    wait_for(lambda: (launcher.store.sweep_runs(sweep_id)[0]["step"] or 0) >= 2, what="trial 0 to train")
    waiting = launcher.store.sweep_runs(sweep_id)[1]
    assert waiting["status"] == "queued" and waiting["started_at"] is None

    sweeps.stop(sweep_id)
    sweep = sweeps.wait(sweep_id, timeout=120)
    runs = launcher.store.sweep_runs(sweep_id)
    assert sweep["status"] == SweepStatus.STOPPED and [r["status"] for r in runs] == [STOPPED, STOPPED]
    assert launcher.checkpoints(runs[0]["id"]) and runs[1]["started_at"] is None
    assert [t["state"] for t in sweeps.get(sweep_id)["trials"]] == ["fail", "fail"]  # told, not counted

    launched = sweeps.resume(sweep_id)
    assert len(launched) == 2 and len(sweeps.get(sweep_id)["trials"]) == 4
    study_name = launcher.store.get_sweep(sweep_id)["study_name"]
    sweeps.delete(sweep_id, delete_runs=True)
    assert launcher.store.list_sweeps() == [] and launcher.store.list_runs() == []
    import optuna

    assert study_name not in [
        s.study_name for s in optuna.get_all_study_summaries(studies.storage(launcher.store_url))
    ]
