"""Runs over several processes: tiny-bert trained by two real CPU ranks under torchrun (gloo)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import tiny_config
from tests.test_dashboard_app import button, csv_form, texts  # noqa: F401 - csv_form is a fixture
from tests.test_launcher import wait_for
from trainer_core.config import config_from_dict
from trainer_core.errors import ConfigError
from trainer_core.runs import distributed
from trainer_core.runs.folder import RunFolder
from trainer_core.tracking.status import COMPLETED, FAILED, RUNNING, STOPPED


def group_processes(launcher, run_id) -> list[psutil.Process]:
    """The run's agent (the pid the launcher records) and every process under it."""
    agent = psutil.Process(launcher.store.get_run(run_id)["pid"])
    return [agent, *agent.children(recursive=True)]


def rank_process(processes: list[psutil.Process], rank: int) -> psutil.Process:
    ranks = [p for p in processes if p.environ().get("RANK") == str(rank) and "--run-id" in p.cmdline()]
    assert len(ranks) == 1, [p.cmdline() for p in processes]
    return ranks[0]


def assert_all_gone(processes: list[psutil.Process], within_s: float = 15.0) -> None:
    _, alive = psutil.wait_procs(processes, timeout=within_s)
    assert not alive, [(p.pid, p.cmdline()) for p in alive]


def training_past(launcher, run_id, step: int) -> None:
    wait_for(
        lambda: (run := launcher.store.get_run(run_id))["status"] == RUNNING and (run["step"] or 0) >= step,
        timeout=240,
        what=f"run {run_id} to reach step {step}",
    )


# -- without processes: the command line, the group's TrainingArguments, the checks -------------------


def test_command_line_is_the_worker_alone_or_torchrun_with_its_ranks():
    args = ["--run-id", "r1", "--run-dir", "/tmp/r1", "--store", "sqlite:///x.db", "--attempt", "0"]
    argv, env = distributed.worker_command(args, {"num_processes": 1})
    assert argv == [sys.executable, "-m", "trainer_core.runs.worker", *args] and env == {}
    argv, env = distributed.worker_command(args, {"num_processes": 2}, devices=[])
    assert argv[:3] == [sys.executable, "-m", "trainer_core.runs.agent"]
    assert argv[argv.index("--nproc-per-node") + 1] == "2" and argv[argv.index("--max-restarts") + 1] == "0"
    assert "--standalone" in argv and argv[-len(args) - 2 :] == [
        "--module",
        "trainer_core.runs.worker",
        *args,
    ]
    assert env == {"CUDA_VISIBLE_DEVICES": ""}  # the queue's device list: here, no GPU at all
    _, env = distributed.worker_command(args, {"num_processes": 2}, devices=[3, 1])
    assert env == {"CUDA_VISIBLE_DEVICES": "3,1"}
    with pytest.raises(ConfigError) as info:
        distributed.worker_command(args, {"num_processes": 2}, devices=[0])
    assert info.value.field == "num_processes" and "1 it was given" in info.value.message


def test_num_processes_is_checked_before_anything_starts(launcher):
    for bad, words in ((0, "greater than 0"), (-2, "greater than 0"), (os.cpu_count() + 1, "cores")):
        with pytest.raises(ConfigError) as info:
            launcher.launch(tiny_config(num_processes=bad))
        assert info.value.field == "num_processes" and words in info.value.message, info.value.message
    assert launcher.store.list_runs() == []


def test_ddp_backend_is_set_only_inside_the_group(monkeypatch):
    from transformers import TrainingArguments

    # The trap: gloo asked for outside torchrun fails when TrainingArguments is built ...
    with pytest.raises(ValueError):
        TrainingArguments(output_dir="unused", ddp_backend="gloo", report_to="none")
    # ... so a 2-process config validates in the launcher's (single) process and is saved without it,
    config = config_from_dict(tiny_config(num_processes=2))
    assert config.run.num_processes == 2 and config.to_dict()["ddp_backend"] is None
    assert distributed.group_training_changes(config.training) == {}
    # and a rank of a CPU group gets gloo, the CPU mode accelerate needs, and an unscaled loss.
    monkeypatch.setenv("WORLD_SIZE", "2")
    changes = distributed.group_training_changes(config.training)
    assert changes == {"average_tokens_across_devices": False, "use_cpu": True, "ddp_backend": "gloo"}


# -- real groups ---------------------------------------------------------------------------------------


def test_two_processes_halve_the_steps_and_keep_the_loss_scale(launcher):
    # Both at once: the machine has two cores and each run waits mostly on imports.
    one = launcher.launch(tiny_config(), name="one process")
    two = launcher.launch(tiny_config(num_processes=2), name="two processes")
    runs = {run_id: launcher.wait(run_id, timeout=300) for run_id in (one, two)}
    for run_id, run in runs.items():
        assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id, 60))
    store = launcher.store
    # 96 rows, 16 per process and step, 2 epochs: 12 steps alone, 6 when two processes share each step.
    assert runs[one]["total_steps"] == 12 and runs[two]["total_steps"] == 6 and runs[two]["step"] == 6
    # One point per step (only rank 0 writes), one evaluation per epoch.
    assert store.get_series(two, "loss")["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert store.get_series(two, "eval_accuracy")["epoch"].tolist() == [1.0, 2.0]
    # Each step's loss is a batch mean in both runs; scaled by the process count it would be ~2x.
    ratio = store.get_series(two, "loss")["value"].mean() / store.get_series(one, "loss")["value"].mean()
    print(f"[measure] mean training loss, 2 processes / 1 process: {ratio:.3f}")
    assert 0.8 < ratio < 1.25, ratio
    # rank 0 alone wrote the model and the predictions; gathered from both ranks, in the data's order.
    predictions = {run_id: launcher.predictions(run_id) for run_id in (one, two)}
    assert len(predictions[two]) == 48
    assert predictions[two]["label"].tolist() == predictions[one]["label"].tolist()
    assert launcher.model_dir(two) is not None and runs[two]["summary"]["n_train"] == 96
    assert [c["step"] for c in launcher.checkpoints(two)] == [3, 6]
    assert [e["kind"] for e in store.events(two)].count("worker_start") == 1


def test_stop_is_agreed_by_both_ranks_and_resume_continues(launcher):
    # 96 rows / (8 x 2 processes) = 6 steps per epoch, 4 epochs: 24 steps.
    run_id = launcher.launch(tiny_config(num_processes=2, per_device_train_batch_size=8, num_train_epochs=4))
    training_past(launcher, run_id, 2)
    processes = group_processes(launcher, run_id)
    launcher.stop(run_id)
    run = launcher.wait(run_id, timeout=120)
    assert run["status"] == STOPPED, (run["error"], launcher.log_tail(run_id, 40))
    assert_all_gone(processes)
    checkpoint = launcher.checkpoints(run_id)[-1]
    stopped_at = checkpoint["step"]
    assert 2 <= stopped_at < 24
    # One checkpoint, saved by both ranks at the same step: each left its random state in it.
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= set(os.listdir(checkpoint["path"]))

    launcher.resume(run_id)
    run = launcher.wait(run_id, timeout=300)
    assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id, 60))
    assert run["start_step"] == stopped_at and run["step"] == 24
    assert launcher.store.get_series(run_id, "loss")["step"].tolist() == list(range(1, 25))


def test_sigkill_of_rank_1_fails_the_run_and_leaves_no_process(launcher):
    run_id = launcher.launch(
        tiny_config(num_processes=2, num_train_epochs=50, save_strategy="no", eval_strategy="no")
    )
    training_past(launcher, run_id, 2)
    processes = group_processes(launcher, run_id)
    assert len([p for p in processes if "--run-id" in p.cmdline()]) == 3  # the agent and two ranks
    victim = rank_process(processes, 1)
    killed_at = time.monotonic()
    victim.kill()
    wait_for(lambda: launcher.store.get_run(run_id)["status"] == FAILED, timeout=30, what="the run to fail")
    took = time.monotonic() - killed_at
    print(f"[measure] rank 1 SIGKILLed -> run failed in {took:.1f} s")
    assert took < 10
    error = launcher.store.get_run(run_id)["error"]
    assert f"rank 1 of 2 (pid {victim.pid}) was killed by SIGKILL" in error, error
    assert_all_gone(processes)
    assert RunFolder(launcher.run_dir(run_id)).read_outcome(0)["status"] == FAILED

    # Resumed (from the start: it saved no checkpoint), then stopped by force: every rank goes with it.
    launcher.resume(run_id)
    training_past(launcher, run_id, 1)
    processes = group_processes(launcher, run_id)
    launcher.stop(run_id, force=True)
    assert launcher.store.get_run(run_id)["status"] == STOPPED
    assert_all_gone(processes, within_s=5)


_CHILD = """
import os, sys, time
from trainer_core.runs.distributed import die_with_agent
die_with_agent()
print("ready", flush=True)
time.sleep(120)
"""
_AGENT = """
import os, subprocess, sys, time
os.environ["TRAINER_CORE_AGENT_PID"] = str(os.getpid())
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], start_new_session=True, stdout=subprocess.PIPE)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_rank_dies_with_its_agent():
    """An agent SIGKILLed from outside (the OOM killer, kill -9) cannot pass the signal on; its ranks,
    in sessions of their own as torchrun starts them, must still go."""
    agent = subprocess.Popen([sys.executable, "-c", _AGENT, _CHILD], stdout=subprocess.PIPE, text=True)
    child = psutil.Process(int(agent.stdout.readline()))
    try:
        assert child.is_running() and os.getpgid(child.pid) != os.getpgid(agent.pid)
        agent.kill()
        agent.wait()
        assert_all_gone([child], within_s=5)
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()  # only when the test failed: no orphan either way


def test_new_run_form_takes_num_processes_and_shows_the_engines_limit(csv_form):  # noqa: F811
    at = csv_form
    at.text_input(key="new.num_processes").set_value(str(os.cpu_count() + 1)).run()
    assert f"{os.cpu_count()} cores" in texts(at.error) and button(at, "new.start").disabled
    at.text_input(key="new.num_processes").set_value("2").run()
    assert not at.error and "num_processes: 2" in texts(at.code)
