"""The CLI end to end, as a user types it: real subprocesses, real training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO, tiny_config
from trainer_core.runs.launcher import Launcher


def cli(*args, home: Path, check=True, timeout=300):
    """``python -m trainer_core ARGS`` on ``home``, with no terminal on stdin (as CI and cron have)."""
    env = {**os.environ, "TRAINER_CORE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "trainer_core", *args],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


# SQLite only: the foreground CLI path is the same on PostgreSQL, where test_two_hosts drives `list`
# against real training runs and test_launcher/test_faults cover the workers (this test costs ~90 s).
def test_smoke_example_runs_in_the_foreground_and_records_its_metrics(runs_home):
    out = cli("run", "examples/smoke.yaml", home=runs_home)
    assert out.returncode == 0, out.stderr
    assert "completed" in out.stderr and "eval_accuracy=" in out.stdout
    launcher = Launcher(home=runs_home)
    (run,) = launcher.store.list_runs()
    assert run["status"] == "completed" and run["name"] == "smoke"
    store = launcher.store
    assert len(store.get_series(run["id"], "loss")) >= 10  # 200 rows / 16 = 13 steps x 2 epochs, every 2nd
    assert len(store.get_series(run["id"], "eval_accuracy")) == 2
    assert len(store.get_series(run["id"], "eval_f1")) == 2

    listed = cli("list", home=runs_home).stdout
    assert run["id"] in listed and "completed" in listed
    shown = json.loads(cli("show", run["id"], "--json", home=runs_home).stdout)
    assert shown["status"] == "completed" and shown["progress"]["fraction"] == 1.0
    assert set(shown["best_metrics"]) >= {"eval_accuracy", "eval_f1", "eval_loss"}
    text = cli("show", run["id"], home=runs_home).stdout
    assert "best" in text and "eval_f1=" in text


def test_launch_stop_resume_and_errors(runs_home, tmp_path):
    config = tmp_path / "long.yaml"
    config.write_text(
        yaml.safe_dump(tiny_config(num_train_epochs=40, max_train_samples=160, per_device_train_batch_size=8))
    )
    run_id = cli("launch", str(config), home=runs_home).stdout.strip()
    launcher = Launcher(home=runs_home)
    from tests.test_launcher import wait_for

    wait_for(lambda: (launcher.store.get_run(run_id)["step"] or 0) >= 2, what="training")
    stopped = cli("stop", run_id, "--wait", home=runs_home)
    assert "stopped" in stopped.stdout
    assert launcher.checkpoints(run_id)
    assert "resumed" in cli("resume", run_id, home=runs_home).stdout
    wait_for(lambda: launcher.store.get_run(run_id)["status"] == "running", what="resume")
    cli("stop", run_id, "--wait", home=runs_home)
    assert cli("delete", run_id, "--yes", home=runs_home).returncode == 0
    assert launcher.store.list_runs() == []

    # User mistakes: a clear message and exit code 2, no traceback.
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: fast\n")
    out = cli("run", str(bad), home=runs_home, check=False)
    assert out.returncode == 2 and "learning_rate" in out.stderr and "Traceback" not in out.stderr
    out = cli("show", "nope", home=runs_home, check=False)
    assert out.returncode == 2 and "no run" in out.stderr
    assert "no runs yet" in cli("list", home=runs_home).stdout


def test_failed_run_exits_nonzero(runs_home, tmp_path):
    data = tmp_path / "one-class.csv"
    data.write_text("text,label\n" + "".join(f"row {i},good\n" for i in range(20)))
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(tiny_config(dataset_name=None, train_file=str(data))))
    out = cli("run", str(config), home=runs_home, check=False)
    assert out.returncode != 0 and "label" in out.stderr


def test_a_damaged_store_is_one_error_line_for_every_command(tmp_path):
    home = tmp_path / "runs"
    folder = home / "20260101-000000-abcdef"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    (folder / "train.log").write_text("=== 2026-01-01 00:00:00 worker start ===\n")
    (home / "metrics.db").write_bytes(b"\x00junk" * 2000)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    for args in (["list"], ["show", folder.name], ["launch", str(config)]):
        out = cli(*args, home=home, check=False)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("error: the metrics store") and "rebuild-store" in out.stderr
    out = cli("rebuild-store", home=home)
    assert "moved aside" in out.stdout and "1 run(s) recovered" in out.stdout
    # No checkpoint, no error in its log: nothing says how it ended, so it is not called stopped.
    run = Launcher(home=home).store.get_run(folder.name)
    assert run["status"] == "failed" and "recovered from folder" in run["error"]
