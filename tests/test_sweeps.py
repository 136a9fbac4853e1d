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
    loss = parse_sweep_spec(spec(objective="loss"))
    assert (loss.objective, loss.direction) == ("eval_loss", "minimize")
    assert studies.optuna_storage_url("sqlite:////tmp/x/metrics.db") == "sqlite:////tmp/x/metrics.db"
    assert studies.optuna_storage_url("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"


# -- real sweeps ----------------------------------------------------------------------------------


@pytest.mark.both_stores
def test_sweep_trains_trials_in_parallel_prunes_the_bad_one_and_keeps_the_best(runs_home, monkeypatch):
    """Two good learning rates train side by side; the third, 0.5, diverges (eval loss ~3.5 after one
    epoch against ~0.7) and the median pruner, live after one completed trial, must end it there."""
    monkeypatch.setenv("TRAINER_CORE_SLOTS", "2")
    launcher = Launcher(home=runs_home)
    sweeps = Sweeps(launcher)
    sweep_id = sweeps.create(
        spec(
            objective="eval_loss",
            pruner="median",
            pruner_startup_trials=1,
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


def test_a_restarted_launcher_resumes_the_study_where_it_was(runs_home, tmp_path):
    """The CLI that started the sweep is gone, then trial 0's worker is killed (a machine restart, as
    far as the sweep can tell): the next launcher fails that trial, tells the study, and goes on with
    trial 1 of the same study, which completes the sweep."""
    spec_file = tmp_path / "sweep.yaml"
    long_then_short = [
        {"learning_rate": 1e-3, "num_train_epochs": 30},
        {"learning_rate": 1e-3, "num_train_epochs": 2},
    ]
    epochs = {"num_train_epochs": {"distribution": "choice", "values": [30, 2]}}
    spec_file.write_text(
        yaml.safe_dump(spec(n_trials=2, parallel=1, space={**LR, **epochs}, enqueue_trials=long_then_short))
    )
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
