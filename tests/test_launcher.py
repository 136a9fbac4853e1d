"""Real worker processes training a real tiny model: completion, stop/resume, kills, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from tests.conftest import tiny_config
from trainer_core.config import config_from_dict, load_config
from trainer_core.errors import ConfigError, RunNotFoundError, RunStateError
from trainer_core.runs.launcher import Launcher
from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED, FAILED, RUNNING, STOPPED


def wait_for(predicate, timeout=120, poll=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.both_stores
def test_completed_run_records_everything(launcher):
    run_id = launcher.launch(tiny_config(), name="tiny")
    run = launcher.wait(run_id, timeout=240)
    assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id))
    store = launcher.store
    # 96 rows / batch 16 = 6 steps per epoch, 2 epochs, a loss point every step.
    assert run["total_steps"] == 12 and run["step"] == 12
    assert store.get_series(run_id, "loss")["step"].tolist() == list(range(1, 13))
    for key in ("eval_accuracy", "eval_f1", "eval_loss"):
        assert store.get_series(run_id, key)["epoch"].tolist() == [1.0, 2.0], key
    assert run["pid"] and run["started_at"] <= run["finished_at"]
    summary = run["summary"]
    assert summary["label_names"] == ["fresh", "rotten"]
    report = summary["report"]
    assert sum(map(sum, report["confusion_matrix"])) == 48
    assert 0 <= summary["final_metrics"]["eval_accuracy"] <= 1
    # The final model and tokenizer load with from_pretrained and carry the label names.
    model_dir = launcher.model_dir(run_id)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    AutoTokenizer.from_pretrained(model_dir)
    assert model.config.id2label == {0: "fresh", 1: "rotten"}
    predictions = launcher.predictions(run_id)
    assert len(predictions) == 48 and {"text", "label", "predicted", "confidence", "correct"} <= set(
        predictions
    )
    assert [c["step"] for c in launcher.checkpoints(run_id)] == [6, 12]
    assert "config.yaml" in os.listdir(launcher.run_dir(run_id))
    assert launcher.folder(run_id).annotations()["name"] == "tiny"  # for rebuild-store, with note and tags
    assert launcher.config_of(run_id)["max_train_samples"] == 96
    replay = load_config(launcher.run_dir(run_id) / "config.yaml")
    # The saved config is complete: replaying it gives the same run config, with the columns it used.
    used = tiny_config(text_column="text", label_column="category")
    assert replay.to_dict(minimal=True) == config_from_dict(used).to_dict(minimal=True)
    assert launcher.export_model_archive(run_id).stat().st_size > 10_000
    kinds = [e["kind"] for e in store.events(run_id)]
    assert kinds[0] == "launched" and kinds[-1] == COMPLETED and "train_begin" in kinds
    began = next(e for e in store.events(run_id) if e["kind"] == "train_begin")
    assert began["data"]["device"] == "cpu" and began["data"]["precision"] == "fp32", began


def test_bad_input_is_refused_before_anything_starts(launcher, tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("review,stars\ngood,1\nbad,0\nfine,1\nawful,0\n")
    with pytest.raises(ConfigError) as info:
        launcher.launch(
            tiny_config(dataset_name=None, train_file=str(data), text_column="body", label_column="stars")
        )
    assert info.value.field == "text_column" and "review" in info.value.message
    with pytest.raises(ConfigError):
        launcher.launch(tiny_config(learning_rate=-1))
    assert launcher.store.list_runs() == []
    assert not any(p.is_dir() for p in launcher.home.iterdir())


@pytest.mark.both_stores
def test_stop_checkpoints_and_resume_continues_the_step_count(launcher):
    config = tiny_config(
        max_train_samples=160, per_device_train_batch_size=8, num_train_epochs=6
    )  # 120 steps
    run_id = launcher.launch(config)
    wait_for(lambda: (launcher.store.get_run(run_id)["step"] or 0) >= 3, what="training to start")
    launcher.stop(run_id)
    run = launcher.wait(run_id, timeout=120)
    assert run["status"] == STOPPED, run["error"]
    stopped_at = max(c["step"] for c in launcher.checkpoints(run_id))
    assert 3 <= stopped_at < 120
    assert launcher.store.get_series(run_id, "loss")["step"].max() <= stopped_at
    with pytest.raises(RunStateError):
        launcher.stop(run_id)

    launcher.resume(run_id)
    run = launcher.wait(run_id, timeout=240)
    assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id))
    steps = launcher.store.get_series(run_id, "loss")["step"].tolist()
    assert steps == list(range(1, 121))  # one point per step: none lost, none repeated across the resume
    assert run["attempt"] == 1 and run["start_step"] == stopped_at
    assert launcher.store.get_series(run_id, "eval_accuracy")["epoch"].tolist() == [1.0, 2, 3, 4, 5, 6]
    with pytest.raises(RunStateError):
        launcher.resume(run_id)


def test_worker_killed_with_sigkill_is_failed(launcher):
    run_id = launcher.launch(tiny_config(num_train_epochs=50))
    wait_for(lambda: (launcher.store.get_run(run_id)["step"] or 0) >= 2, what="training to start")
    os.kill(launcher.store.get_run(run_id)["pid"], signal.SIGKILL)
    run = launcher.wait(run_id, timeout=60)
    assert run["status"] == FAILED and "SIGKILL" in run["error"]
    # The run is not lost: its points and checkpoint folder are still there, and it can be resumed.
    assert launcher.store.count_points(run_id) > 0


@pytest.mark.both_stores
def test_dead_worker_found_by_a_later_launcher(runs_home):
    """A worker that dies while no launcher watches it (dashboard closed) is failed on the next start."""
    env = {**os.environ, "TRAINER_CORE_HOME": str(runs_home)}
    config_file = runs_home.parent / "cfg.yaml"
    import yaml

    config_file.write_text(yaml.safe_dump(tiny_config(num_train_epochs=50)))
    out = subprocess.run(
        [sys.executable, "-m", "trainer_core", "launch", str(config_file)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    run_id = out.stdout.strip()
    launcher = Launcher(home=runs_home)
    wait_for(lambda: launcher.store.get_run(run_id)["status"] == RUNNING, what="the worker to start")
    pid = launcher.store.get_run(run_id)["pid"]
    assert launcher.reconcile() == []  # alive and beating: left alone
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: launcher.reconcile() == [run_id], timeout=30, what="reconcile to notice")
    run = launcher.store.get_run(run_id)
    assert run["status"] == FAILED and "gone" in run["error"]


@pytest.mark.both_stores
def test_stale_heartbeat_is_failed(launcher):
    run_id = launcher.store.create_run("ghost", tiny_config(), run_dir=str(launcher.home / "ghost"))
    launcher.store.update_run(run_id, status=RUNNING, host="another-machine", heartbeat_at=time.time() - 3600)
    assert launcher.reconcile() == [run_id]
    assert "no heartbeat" in launcher.store.get_run(run_id)["error"]


def test_crash_in_the_worker_is_failed_with_its_traceback(launcher, tmp_path):
    # A checkpoint folder whose weights file is garbage: found and configured fine, crashes on load.
    broken = tmp_path / "broken-model"
    broken.mkdir()
    from trainer_core.assets import minilm_path as minilm_dir

    for name in (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ):
        if (minilm_dir() / name).exists():
            (broken / name).write_bytes((minilm_dir() / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    run_id = launcher.launch(tiny_config(model_name_or_path=str(broken)), preflight=False)
    run = launcher.wait(run_id, timeout=120)
    assert run["status"] == FAILED
    assert run["error"] and "Traceback" in run["traceback"]
    assert run["status"] not in ACTIVE_STATUSES


def test_columns_left_empty_are_saved_as_the_run_uses_them(launcher, tmp_path):
    # Neither name says "text" or "label": the values do (free text, six short codes).
    data = tmp_path / "questions.csv"
    topics = ["geo", "hist", "sci", "art", "math", "bio"]
    rows = [f"what is the answer to question number {i}?,{topics[i % 6]}" for i in range(60)]
    data.write_text("question,topic\n" + "\n".join(rows) + "\n")
    run_id = launcher.launch(tiny_config(dataset_name=None, train_file=str(data), num_train_epochs=50))
    try:
        saved = launcher.config_of(run_id)
        assert (saved["text_column"], saved["text_pair_column"], saved["label_column"]) == (
            "question",
            None,
            "topic",
        )
        assert launcher.store.get_run(run_id)["config"]["label_column"] == "topic"
    finally:
        launcher.delete(run_id)  # kills the worker before it trains


def test_delete_removes_folder_and_records(launcher):
    run_id = launcher.launch(tiny_config(num_train_epochs=50))
    wait_for(lambda: launcher.store.get_run(run_id)["status"] == RUNNING, what="start")
    folder = launcher.run_dir(run_id)
    launcher.delete(run_id)
    assert not folder.exists() and launcher.store.list_runs() == []


def test_log_tail_reads_only_the_end(launcher):
    run_id = launcher.store.create_run("log", {}, run_dir=str(launcher.home / "log-run"))
    folder = launcher.run_dir(run_id)
    folder.mkdir()
    lines = [f"line {i} " + "x" * (i % 50) + "\n" for i in range(20_000)]
    (folder / "train.log").write_text("".join(lines))
    assert launcher.log_tail(run_id, lines=25) == "".join(lines[-25:])
    assert launcher.log_tail(run_id, lines=5000) == "".join(lines[-5000:])
    (folder / "train.log").write_text("short\n")
    assert launcher.log_tail(run_id, lines=10) == "short\n"


def test_annotate_normalises_tags_and_refuses_bad_ones(launcher):
    run_id = launcher.store.create_run("annotated", {})
    launcher.annotate(
        run_id, note="  first try  ", tags=[" baseline", "LR-sweep", "", "lr-sweep", "Baseline "]
    )
    run = launcher.store.get_run(run_id)
    assert (run["note"], run["tags"]) == ("first try", ["baseline", "LR-sweep"])
    launcher.annotate(run_id, tags=["other"])  # note=None leaves the note as it was
    assert (launcher.store.get_run(run_id)["note"], launcher.store.get_run(run_id)["tags"]) == (
        "first try",
        ["other"],
    )
    for bad, words in ((["a,b"], "comma"), (["x" * 41], "at most 40"), ("one string", "list")):
        with pytest.raises(ConfigError, match=words) as info:
            launcher.annotate(run_id, tags=bad)
        assert info.value.field == "tags"
    launcher.annotate(run_id, note="", tags=[])
    run = launcher.store.get_run(run_id)
    assert (run["note"], run["tags"]) == (None, [])
    with pytest.raises(RunNotFoundError):
        launcher.annotate("no-such-run", note="x")
    with pytest.raises(RunNotFoundError):
        launcher.annotate("no-such-run")


def test_name_note_and_tags_are_copied_into_the_run_folder(launcher, tmp_path):
    from tests.conftest import tmpfs
    from trainer_core.runs.folder import ANNOTATIONS_FILE, RunFolder

    run_id = launcher.store.create_run("first", {}, run_dir=str(launcher.home / "kept-run"))
    folder = launcher.folder(run_id)
    folder.path.mkdir()
    launcher.annotate(run_id, note="  why this run  ", tags=["baseline", "Baseline", "lr-sweep"])
    launcher.rename(run_id, "second")
    # What the store holds after normalising, not what was typed.
    assert folder.annotations() == {
        "name": "second",
        "note": "why this run",
        "tags": ["baseline", "lr-sweep"],
    }
    launcher.annotate(run_id, note="", tags=[])
    assert folder.annotations() == {"name": "second", "note": None, "tags": []}
    # Each save renames a whole file over the old one: no temporary file is left beside it.
    assert [p.name for p in folder.path.iterdir()] == [ANNOTATIONS_FILE]

    # A folder that refuses the write (read-only here) does not undo or fail the change in the store.
    with tmpfs(tmp_path / "ro", "ro,size=1m") as read_only:
        stuck = launcher.store.create_run("stuck", {}, run_dir=str(read_only))
        launcher.annotate(stuck, note="saved anyway")
        assert launcher.store.get_run(stuck)["note"] == "saved anyway"
        assert RunFolder(read_only).annotations() == {}
    # A run without a folder (recorded by hand, or its folder deleted) has nothing to copy to.
    bare = launcher.store.create_run("bare", {})
    launcher.annotate(bare, tags=["x"])
    assert not launcher.run_dir(bare).exists()
