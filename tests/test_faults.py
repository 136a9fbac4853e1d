"""Faults of issue 8, each reproduced for real: cut-off checkpoints, forced stops, a second launcher
reconciling in a tight loop, a full disk (a real tmpfs), SIGTERM storms, allocator failures, and the CLI
without a terminal. Each test failed on the code before the fix."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import REPO, tiny_config, tmpfs
from tests.test_cli import cli
from tests.test_launcher import wait_for
from trainer_core.config import config_from_dict, save_config
from trainer_core.errors import RunStateError
from trainer_core.runs.folder import CHECKPOINT_EVENT, RunFolder, checkpoint_problem
from trainer_core.runs.launcher import Launcher
from trainer_core.runs.outcome import describe_error
from trainer_core.tracking.status import COMPLETED, FAILED, RUNNING, STOPPED


def long_run(**overrides) -> dict:
    """A tiny run that trains far longer than any test waits, saving no checkpoints unless asked."""
    return tiny_config(num_train_epochs=50, save_strategy="no", eval_strategy="no", **overrides)


def kinds(launcher: Launcher, run_id: str) -> list[str]:
    return [e["kind"] for e in launcher.store.events(run_id, limit=1000)]


def training(launcher: Launcher, run_id: str, past_step: int = 0) -> None:
    wait_for(
        lambda: (
            (run := launcher.store.get_run(run_id))["status"] == RUNNING and (run["step"] or 0) > past_step
        ),
        what=f"run {run_id} to train past step {past_step}",
    )


# -- 1. a checkpoint cut off mid-write -----------------------------------------------------------------


def test_resume_skips_checkpoints_cut_off_mid_write(launcher):
    # 64 rows / 16 = 4 steps, a checkpoint every 2.
    run_id = launcher.launch(
        tiny_config(max_train_samples=64, num_train_epochs=1, save_strategy="steps", save_steps=2)
    )
    assert launcher.wait(run_id, timeout=240)["status"] == COMPLETED
    folder = RunFolder(launcher.run_dir(run_id))
    good = folder.checkpoints_dir / "checkpoint-2"
    assert checkpoint_problem(good) is None
    # The ways a kill during save_checkpoint leaves a folder: state not yet written, weights cut short,
    # nothing at all; plus a missing optimizer and unparsable state, checked directly.
    (folder.checkpoints_dir / "checkpoint-4" / "trainer_state.json").unlink()
    cut = shutil.copytree(good, folder.checkpoints_dir / "checkpoint-6")
    with open(cut / "model.safetensors", "r+b") as fh:
        fh.truncate(os.path.getsize(cut / "model.safetensors") // 2)
    (folder.checkpoints_dir / "checkpoint-8").mkdir()
    odd = shutil.copytree(good, folder.checkpoints_dir.parent / "scratch")
    (odd / "optimizer.pt").unlink()
    assert "optimizer.pt" in checkpoint_problem(odd)
    (odd / "trainer_state.json").write_text('{"global_step": 2, "log_hi')
    assert "trainer_state.json" in checkpoint_problem(odd)
    shutil.rmtree(odd)
    # A crash after the last save (a completed run cannot be resumed).
    launcher.store.update_run(run_id, status=FAILED)

    assert [c["step"] for c in launcher.checkpoints(run_id)] == [2]
    listed = {c["step"]: c["complete"] for c in launcher.checkpoints(run_id, include_incomplete=True)}
    assert listed == {2: True, 4: False, 6: False, 8: False}
    plan = launcher.resume_plan(run_id)
    assert plan["checkpoint"] == "checkpoint-2"
    assert [s["name"] for s in plan["skipped"]] == ["checkpoint-8", "checkpoint-6", "checkpoint-4"]
    assert "truncated" in plan["skipped"][1]["problem"] or "declares" in plan["skipped"][1]["problem"]
    assert "trainer_state.json is missing" in plan["skipped"][2]["problem"]

    started = time.monotonic()
    launcher.resume(run_id)
    run = launcher.wait(run_id, timeout=240)
    print(f"[measure] cut-off checkpoints: resumed run completed in {time.monotonic() - started:.1f} s")
    assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id))
    assert run["start_step"] == 2
    assert launcher.store.get_series(run_id, "loss")["step"].tolist() == [1, 2, 3, 4]
    events = launcher.store.events(run_id, limit=1000)
    skipped = [e["message"] for e in events if e["kind"] == "checkpoint_skipped"]
    assert len(skipped) == 3 and "checkpoint-8" in skipped[0]
    resumed = [e["message"] for e in events if e["kind"] == "resumed"][-1]
    assert "checkpoint-2" in resumed and "skipped" in resumed


# -- 2. a forced stop ----------------------------------------------------------------------------------


def test_force_stop_is_recorded_as_stopped_every_time(launcher):
    run_id = launcher.launch(long_run())
    for attempt in range(3):
        training(launcher, run_id)
        started = time.monotonic()
        launcher.stop(run_id, force=True)
        took = time.monotonic() - started
        # The supervisor thread saw the SIGKILL too: give it time to (wrongly) write its own verdict.
        time.sleep(1.0)
        run = launcher.store.get_run(run_id)
        assert run["status"] == STOPPED and run["error"] is None, (attempt, run["error"])
        assert kinds(launcher, run_id)[-1] == STOPPED, kinds(launcher, run_id)
        print(f"[measure] forced stop {attempt}: stopped after {took:.2f} s")
        if attempt < 2:
            # A SIGKILL can land mid-checkpoint, leaving none complete: confirm a fresh start then
            # (what this test checks is the stop's record, not the checkpoint).
            launcher.resume(run_id, restart_from_scratch=True)
    assert FAILED not in kinds(launcher, run_id)
    assert kinds(launcher, run_id).count(STOPPED) == 3


# -- 3. a second launcher on the same home -------------------------------------------------------------

RECONCILER = textwrap.dedent(
    """
    import os, sys, time
    from trainer_core.runs.launcher import Launcher
    launcher = Launcher(home=sys.argv[1])
    print("ready", flush=True)
    while not os.path.exists(sys.argv[2]):
        for run_id in launcher.reconcile():
            print("failed", run_id, flush=True)
        time.sleep(0.002)
    """
)


@pytest.mark.both_stores
def test_a_second_launcher_reconciling_never_fails_a_healthy_run(launcher, tmp_path):
    done = tmp_path / "done"
    other = subprocess.Popen(
        [sys.executable, "-c", RECONCILER, str(launcher.home), str(done)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "ready"
        run_id = launcher.launch(long_run())
        for _ in range(3):
            training(launcher, run_id)
            launcher.stop(run_id, force=True)
            assert launcher.store.get_run(run_id)["status"] == STOPPED
            launcher.resume(run_id, restart_from_scratch=True)  # the kill may have cut the only checkpoint
            # The window the other launcher used to fail it in: queued, the old worker's pid still recorded.
            time.sleep(0.3)
            assert launcher.store.get_run(run_id)["status"] != FAILED, launcher.store.get_run(run_id)["error"]
        training(launcher, run_id)
        launcher.stop(run_id, force=True)
        time.sleep(1.0)
    finally:
        done.touch()
        out, _ = other.communicate(timeout=30)
    run = launcher.store.get_run(run_id)
    assert run["status"] == STOPPED and run["attempt"] == 3, run["error"]
    assert FAILED not in kinds(launcher, run_id), run["error"]
    assert "failed" not in out


# -- 4. a full disk under the store --------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MB tmpfs: the runs folder and the store on a disk that a test can really fill."""
    with tmpfs(tmp_path / "disk", "size=8m") as mount:
        yield mount


def fill(disk) -> os.PathLike:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:  # unbuffered: close() has nothing left to fail on
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_full_disk_records_no_space_not_a_kill(small_disk, monkeypatch):
    import psutil

    monkeypatch.setenv("TRAINER_CORE_SLOTS", "2")  # both runs train at once, whatever the machine's cores

    home = small_disk / "runs"
    launcher = Launcher(home=home)
    watched = launcher.launch(long_run())  # supervised by this launcher's thread
    config_file = small_disk.parent / "long.yaml"
    save_config(config_from_dict(long_run()), config_file)
    unwatched = cli("launch", str(config_file), home=home, check=False).stdout.strip()  # nobody supervises it
    training(launcher, watched)
    training(launcher, unwatched)
    pids = [launcher.store.get_run(r)["pid"] for r in (watched, unwatched)]

    filler = fill(small_disk)
    wait_for(
        lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids),
        timeout=120,
        what="the workers to end on the full disk",
    )
    time.sleep(1.0)
    os.unlink(filler)
    freed = time.monotonic()

    # The supervisor thread survived the refused writes and records the worker's own outcome now.
    run = wait_for(
        lambda: (r := launcher.store.get_run(watched))["status"] == FAILED and r,
        timeout=30,
        what="the supervisor to record the outcome",
    )
    print(f"[measure] full disk, supervised: failed {time.monotonic() - freed:.1f} s after space was freed")
    assert "no space left on device" in run["error"].lower(), run["error"]
    assert "out of memory" not in run["error"]

    # A launcher that did not start the other run finds its outcome file (or the supervisor's own
    # reconcile, run when its worker ended to start what was queued, already did).
    assert Launcher(home=home).reconcile() in ([unwatched], [])
    print(f"[measure] full disk, reconciled: failed {time.monotonic() - freed:.1f} s after space was freed")
    error = launcher.store.get_run(unwatched)["error"]
    assert "no space left on device" in error.lower() and "out of memory" not in error, error


# -- 6. SIGTERM storms ---------------------------------------------------------------------------------


def test_sigterm_storm_ends_as_a_graceful_stop(launcher):
    run_id = launcher.launch(long_run())
    training(launcher, run_id, past_step=2)
    pid = launcher.store.get_run(run_id)["pid"]
    started = time.monotonic()
    # Many signals in quick succession, landing anywhere: inside on_log's write transaction too.
    with pytest.raises(ProcessLookupError):
        for _ in range(100_000):
            os.kill(pid, signal.SIGTERM)
            time.sleep(0.0005)
    run = launcher.wait(run_id, timeout=60)
    print(
        f"[measure] SIGTERM storm: {run['status']} {time.monotonic() - started:.1f} s after the first signal"
    )
    assert run["status"] == STOPPED, (run["error"], launcher.log_tail(run_id, 30))
    stopped_at = run["summary"]["stopped_at_step"]
    assert launcher.store.get_series(run_id, "loss")["step"].tolist() == list(range(1, stopped_at + 1))
    assert "signal" in kinds(launcher, run_id)


# -- 7. smaller ones -----------------------------------------------------------------------------------


def test_out_of_memory_error_says_what_to_do():
    import torch

    config = config_from_dict(tiny_config(per_device_train_batch_size=16, max_seq_length=32))
    errors = []
    try:
        torch.empty(2**45, dtype=torch.uint8)  # 32 TiB: the CPU allocator refuses for real
    except RuntimeError as exc:
        errors.append(exc)
    errors.append(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    try:
        bytearray(2**50)
    except MemoryError as exc:
        errors.append(exc)
    assert "DefaultCPUAllocator" in str(errors[0])
    for exc in errors:
        message = describe_error(exc, config)
        assert "per_device_train_batch_size=16" in message and "max_seq_length=32" in message, message
        assert "gradient_accumulation_steps to 2" in message and "effective batch of 16" in message
    assert describe_error(ValueError("bad label"), config) == "ValueError: bad label"


def test_delete_without_yes_and_without_a_terminal_says_pass_yes(launcher):
    run_id = launcher.store.create_run("keep", tiny_config(), run_dir=str(launcher.home / "keep"))
    out = cli("delete", run_id, home=launcher.home, check=False)
    assert out.returncode != 0 and "--yes" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert launcher.store.has_run(run_id)


def test_resume_after_the_checkpoints_were_deleted_needs_a_confirmation(launcher):
    config = tiny_config(max_steps=2)
    run_dir = launcher.home / "lost"
    run_dir.mkdir(parents=True)
    save_config(config_from_dict(config), run_dir / "config.yaml")
    store = launcher.store
    run_id = store.create_run("lost", config, run_dir=str(run_dir))
    store.log_metrics(run_id, {"loss": 0.5}, step=6)
    store.add_event(run_id, CHECKPOINT_EVENT, "saved checkpoint-6", {"step": 6})
    store.update_run(run_id, status=FAILED, step=6)  # then someone deleted checkpoints/

    with pytest.raises(RunStateError, match="restart_from_scratch"):
        launcher.resume(run_id)
    assert launcher.resume_plan(run_id)["checkpoints_lost"]
    assert store.get_run(run_id)["status"] == FAILED and store.count_points(run_id) == 1  # untouched
    out = cli("resume", run_id, home=launcher.home, check=False)
    assert out.returncode == 2 and "--from-scratch" in out.stderr, out.stderr

    out = cli("resume", run_id, "--from-scratch", home=launcher.home, check=False)
    assert out.returncode == 0, out.stderr
    run = launcher.wait(run_id, timeout=240)
    assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id))
    assert store.get_series(run_id, "loss")["step"].tolist() == [1, 2]


def test_outcome_file_survives_a_full_disk(small_disk):
    folder = RunFolder(small_disk)
    folder.reserve_outcome(attempt=3)
    assert folder.read_outcome(3) is None  # reserved, not yet an outcome
    filler = fill(small_disk)
    assert folder.write_outcome(3, FAILED, "OperationalError: database or disk is full" + "x" * 9000)
    assert json.loads((small_disk / "outcome.json").read_text())["status"] == FAILED
    assert folder.read_outcome(3)["status"] == FAILED and folder.read_outcome(2) is None
    os.unlink(filler)


def test_checkpoint_file_names_match_transformers():
    """trainer_core spells the checkpoint files' names so the dashboard need not import transformers'
    trainer (and torch) to list checkpoints; they must stay the ones the Trainer writes."""
    from transformers import trainer

    from trainer_core.runs import folder

    for name in ("TRAINER_STATE_NAME", "OPTIMIZER_NAME", "SCHEDULER_NAME"):
        assert getattr(folder, name) == getattr(trainer, name), name
