"""A damaged or lost metrics store, and unusable store/home settings: a clear error, then a real rebuild.

Two real tiny runs are trained once for the module (one completed, one stopped part way); each test
works on a copy of their runs folder, damages the store the way disks and people do, and rebuilds it
with the real CLI.
"""

from __future__ import annotations

import shutil
import time

import pytest

from tests.conftest import tiny_config, tmpfs
from tests.test_cli import cli
from tests.test_launcher import wait_for
from tests.test_store import damage
from trainer_core.errors import ConfigError, StoreDamagedError
from trainer_core.runs.launcher import Launcher
from trainer_core.runs.rebuild import rebuild_store
from trainer_core.tracking.status import COMPLETED, STOPPED
from trainer_core.tracking.store import MetricsStore

SERIES = ["step", "epoch", "value"]  # wall times are not in trainer_state.json; rebuilt ones are estimates


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory):
    """A runs folder with a completed run and a run stopped after a few steps; returns (home, ids)."""
    home = tmp_path_factory.mktemp("trained") / "runs"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("TRAINER_CORE_DB", raising=False)
        launcher = Launcher(home=home)
        done = launcher.launch(tiny_config(eval_strategy="epoch", save_strategy="epoch"), name="done")
        long = tiny_config(num_train_epochs=40, max_train_samples=160, per_device_train_batch_size=8)
        stopped = launcher.launch(long, name="stopped")
        wait_for(lambda: (launcher.store.get_run(stopped)["step"] or 0) >= 3, timeout=240, what="training")
        launcher.stop(stopped)
        assert launcher.wait(stopped, timeout=240)["status"] == STOPPED
        run = launcher.wait(done, timeout=240)
        assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(done))
        launcher.store.checkpoint()
        launcher.store.close()
    return home, {"done": done, "stopped": stopped}


@pytest.fixture
def home_copy(trained_home, tmp_path, monkeypatch):
    """A private copy of the trained runs folder (tests damage its store); returns (home, ids, original)."""
    home, ids = trained_home
    copy = tmp_path / "runs"
    # Checkpointed: the file holds everything. Skipping the log files (not copying, then deleting them)
    # also avoids a race: the previous test's store, garbage-collected mid-copy, removes its -wal file.
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("metrics.db-wal", "metrics.db-shm"))
    monkeypatch.setenv("TRAINER_CORE_HOME", str(copy))
    monkeypatch.delenv("TRAINER_CORE_DB", raising=False)
    return copy, ids, MetricsStore(home / "metrics.db")


def one_error_line(out) -> str:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    (line,) = [x for x in out.stderr.splitlines() if x.strip()]
    assert line.startswith("error: ")
    return line


def break_store(db, how: str) -> None:
    if how == "empty":
        db.write_bytes(b"")
    elif how == "missing":
        db.unlink()
    elif how == "replaced by a new one":
        db.unlink()
        MetricsStore(db).close()  # what any older version did on opening a 0-byte file
    else:
        damage(db, how)


@pytest.mark.parametrize("how", ["empty", "junk header", "truncated", "missing", "replaced by a new one"])
def test_damaged_store_is_refused_then_rebuilt_from_the_run_folders(home_copy, how):
    home, ids, original = home_copy
    db = home / "metrics.db"
    break_store(db, how)

    with pytest.raises(StoreDamagedError) as info:
        Launcher(home=home)
    assert str(db) in str(info.value) and "trainer-core rebuild-store" in str(info.value)
    line = one_error_line(cli("list", home=home, check=False))
    assert str(db) in line and "rebuild-store" in line

    began = time.monotonic()
    out = cli("rebuild-store", home=home)
    rebuild_s = time.monotonic() - began
    assert "2 run(s) recovered" in out.stdout, out.stdout
    aside = sorted(p.name for p in home.glob("metrics.db.damaged-*"))
    assert (len(aside) >= 1) == (how != "missing")  # moved aside, never deleted
    print(f"rebuild-store of 2 tiny runs ({how}): {rebuild_s:.1f} s with the CLI's start-up")

    store = Launcher(home=home).store
    runs = {r["id"]: r for r in store.list_runs()}
    assert runs.keys() == set(ids.values())
    done, stopped = runs[ids["done"]], runs[ids["stopped"]]
    assert (done["status"], stopped["status"]) == (COMPLETED, STOPPED)
    assert (done["name"], stopped["name"]) == ("done", "stopped")  # given at launch, apart from the config
    assert done["config"] == original.get_run(ids["done"])["config"]
    assert done["summary"]["report"] == original.get_run(ids["done"])["summary"]["report"]
    assert done["summary"]["train_loss"] == original.get_run(ids["done"])["summary"]["train_loss"]
    assert (done["step"], done["total_steps"]) == (12, 12)
    assert stopped["step"] == original.get_run(ids["stopped"])["step"]
    assert "recovered from folder" in store.events(ids["done"])[-1]["message"]
    # The curves come back exactly: every key the callback wrote, at the same steps and epochs.
    for run_id in ids.values():
        keys = original.metric_keys(run_id)
        if run_id == ids["stopped"]:
            # The Trainer's closing log (train_runtime, ...) comes after the stop's checkpoint was saved.
            keys = [k for k in keys if not (k.startswith("train_") or k == "total_flos")]
        assert store.metric_keys(run_id) == keys
        for key in keys:
            rebuilt, kept = store.get_series(run_id, key), original.get_series(run_id, key)
            assert rebuilt[SERIES].equals(kept[SERIES]), (run_id, key)
    assert store.get_series(ids["done"], "eval_loss")["step"].tolist() == [6, 12]
    assert set(store.get_series(ids["done"], "loss")["step"]) >= {6, 12}


def lose_store(home) -> None:
    for name in ("metrics.db", "metrics.db-wal", "metrics.db-shm"):
        (home / name).unlink(missing_ok=True)


def test_rebuild_restores_name_note_and_tags_from_the_run_folder(home_copy):
    home, ids, _ = home_copy
    launcher = Launcher(home=home)
    for run_id in ids.values():  # the copy's rows still name the original folders
        launcher.store.update_run(run_id, run_dir=str(home / run_id))
    launcher.rename(ids["done"], "renamed after training")
    launcher.annotate(ids["done"], note="Best so far.\nTry a lower LR next.", tags=["baseline", "MRPC"])
    launcher.annotate(ids["stopped"], tags=["too-slow"])
    launcher.store.close()
    # A folder from before annotations.json: its name comes from the config, as at launch.
    (home / ids["stopped"] / "annotations.json").unlink()
    lose_store(home)

    report = rebuild_store(home)
    store = MetricsStore(home / "metrics.db")
    done, stopped = store.get_run(ids["done"]), store.get_run(ids["stopped"])
    assert (done["name"], done["note"], done["tags"]) == (
        "renamed after training",
        "Best so far.\nTry a lower LR next.",
        ["baseline", "MRPC"],
    )
    assert (stopped["name"], stopped["note"], stopped["tags"]) == (
        "tiny-bert-rotten-tomatoes-" + ids["stopped"][-6:],
        None,
        [],
    )
    assert "note and tags from annotations.json" in store.events(ids["done"])[-1]["message"]
    assert len(report.recovered) == 2

    # Edited by hand into tags the launcher would refuse: the run still comes back, without them.
    (home / ids["done"] / "annotations.json").write_text('{"name": "hand", "note": 3, "tags": ["a,b"]}')
    store.close()
    lose_store(home)
    rebuild_store(home)
    done = MetricsStore(home / "metrics.db").get_run(ids["done"])
    assert (done["name"], done["note"], done["tags"]) == ("hand", None, [])


def test_rebuild_keeps_a_sound_store_and_adds_only_the_runs_it_lacks(home_copy):
    home, ids, _ = home_copy
    store = MetricsStore(home / "metrics.db")
    store.delete_run(ids["stopped"])
    store.add_event(ids["done"], "note", "kept")
    store.close()
    report = rebuild_store(home)
    assert report.moved_aside == [] and report.kept == [ids["done"]]
    assert [r["run_id"] for r in report.recovered] == [ids["stopped"]]
    store = MetricsStore(home / "metrics.db")
    assert store.events(ids["done"])[-1]["message"] == "kept"
    assert store.get_run(ids["stopped"])["status"] == STOPPED


def test_a_run_that_crashed_is_recovered_as_failed_with_its_error(home_copy):
    home, ids, _ = home_copy
    folder = home / ids["stopped"]
    with open(folder / "train.log", "a") as log:
        log.write("\n=== 2026-01-01 00:00:00 worker resume ===\nTraceback (most recent call last):\n")
        log.write('  File "x.py", line 1, in <module>\ntorch.OutOfMemoryError: CUDA out of memory\n')
    (home / "metrics.db").unlink()
    (recovered,) = [r for r in rebuild_store(home).recovered if r["run_id"] == ids["stopped"]]
    run = MetricsStore(home / "metrics.db").get_run(ids["stopped"])
    # The newest checkpoint was saved by the stop, but the later attempt crashed: that is how it ended.
    assert recovered["status"] == run["status"] == "failed"
    assert run["error"].startswith("torch.OutOfMemoryError: CUDA out of memory")


# -- unusable settings -------------------------------------------------------------------------------


def test_home_under_a_regular_file_is_a_config_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as info:
        Launcher(home=blocker / "runs")
    assert info.value.field == "TRAINER_CORE_HOME" and str(blocker / "runs") in info.value.message
    with pytest.raises(ConfigError) as info:
        Launcher(home=blocker)
    assert info.value.field == "TRAINER_CORE_HOME" and "not a folder" in info.value.message
    line = one_error_line(cli("list", home=blocker / "runs", check=False))
    assert "TRAINER_CORE_HOME" in line


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only tmpfs: unlike chmod, it stops root from writing too."""
    with tmpfs(tmp_path / "ro", "ro,size=1m") as path:
        yield path


def test_read_only_home_is_a_config_error(read_only_dir):
    for home in (read_only_dir, read_only_dir / "runs"):
        with pytest.raises(ConfigError) as info:
            Launcher(home=home)
        assert info.value.field == "TRAINER_CORE_HOME" and "Read-only" in info.value.message
    line = one_error_line(cli("list", home=read_only_dir, check=False))
    assert "TRAINER_CORE_HOME" in line and "write to" in line


def test_store_in_a_read_only_folder_is_a_config_error(read_only_dir, tmp_path):
    with pytest.raises(ConfigError) as info:
        Launcher(home=tmp_path / "runs", store_url=f"sqlite:///{read_only_dir / 'metrics.db'}")
    assert info.value.field == "TRAINER_CORE_DB"


def test_unsupported_store_url_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINER_CORE_DB", "mysql://db.example/runs")
    with pytest.raises(ConfigError) as info:
        Launcher(home=tmp_path / "runs")
    assert info.value.field == "TRAINER_CORE_DB" and "postgresql://" in info.value.message
    env_line = one_error_line(cli("--db", "mysql://db.example/runs", "list", home=tmp_path, check=False))
    assert "TRAINER_CORE_DB" in env_line and "sqlite:///" in env_line
    # A PostgreSQL server that is not there: one line naming the URL (without its password).
    pg_line = one_error_line(
        cli("--db", "postgresql://u:pw@127.0.0.1:1/runs", "list", home=tmp_path, check=False)
    )
    assert "TRAINER_CORE_DB" in pg_line and "u:***@127.0.0.1:1/runs" in pg_line and ":pw@" not in pg_line


def test_a_runs_folder_moves_into_an_empty_postgresql_store_with_rebuild(home_copy, pg_server):
    home, ids, original = home_copy
    url = pg_server.new_database()
    # An empty shared store beside launched run folders is refused, as a lost SQLite file is ...
    line = one_error_line(cli("--db", url, "list", home=home, check=False))
    assert "has no runs, but 2 run folder(s)" in line and "rebuild-store" in line
    # ... and rebuild-store fills it from the folders, moving nothing aside.
    out = cli("--db", url, "rebuild-store", home=home)
    assert "2 run(s) recovered" in out.stdout and "moved aside" not in out.stdout
    store = Launcher(home=home, store_url=url).store
    assert store.dialect == "postgresql"
    assert {r["id"]: r["status"] for r in store.list_runs()} == {
        ids["done"]: COMPLETED,
        ids["stopped"]: STOPPED,
    }
    for key in original.metric_keys(ids["done"]):
        rebuilt, kept = store.get_series(ids["done"], key), original.get_series(ids["done"], key)
        assert rebuilt[SERIES].equals(kept[SERIES]), key
    assert ids["done"] in cli("--db", url, "list", home=home).stdout


def test_store_errors_are_config_errors_for_the_dashboard_too(tmp_path):
    # dashboard/data.py builds its Launcher the same way: it gets these same exceptions.
    db = tmp_path / "runs" / "metrics.db"
    db.parent.mkdir()
    db.write_bytes(b"x" * 4096)
    with pytest.raises(ConfigError):
        Launcher(home=db.parent)
    assert db.read_bytes() == b"x" * 4096  # refused, not overwritten
