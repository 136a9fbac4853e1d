"""Run folders under a Ray run's ``storage_path``: the pointer the runs folder keeps to each, rebuild-store
finding them through it (or through ``--also`` when it was lost too), and delete removing them there.

The last test trains a real run on the session's two-node cluster (tests/ray_cluster.py) with its folder
in a storage folder of its own, then loses the store and rebuilds it.
"""

from __future__ import annotations

import os

import pytest

from tests.test_cli import cli
from tests.test_launcher import wait_for
from tests.test_ray import ray_config
from trainer_core.errors import ConfigError, StoreDamagedError
from trainer_core.runs import ray_jobs
from trainer_core.runs.home import run_folders
from trainer_core.runs.launcher import Launcher
from trainer_core.runs.pointers import leave_pointer, remove_run_folder
from trainer_core.runs.rebuild import rebuild_store
from trainer_core.tracking.status import COMPLETED
from trainer_core.tracking.store import MetricsStore

SERIES = ["step", "epoch", "value"]  # rebuilt wall times are estimates (see runs/rebuild.py)


def fake_run_folder(parent, run_id):
    """A folder as launch leaves it (config and log): what run_folders counts as a launched run."""
    folder = parent / run_id
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model_name_or_path: builtin:tiny-bert\n")
    (folder / "train.log").write_text("")
    return folder


def lose_store(home) -> None:
    for name in ("metrics.db", "metrics.db-wal", "metrics.db-shm"):
        (home / name).unlink(missing_ok=True)


# -- without a cluster: the pointer itself -----------------------------------------------------------------


def test_a_pointer_makes_a_folder_elsewhere_a_run_of_home_and_delete_removes_both(tmp_path):
    home, storage = tmp_path / "runs", tmp_path / "shared"
    home.mkdir()
    elsewhere = fake_run_folder(storage, "20260101-000000-aaaaaa")
    assert leave_pointer(home, home / "20260101-000000-bbbbbb") is None  # a folder in home needs none
    pointer = leave_pointer(home, elsewhere)
    assert pointer == home / elsewhere.name and os.readlink(pointer) == str(elsewhere)
    assert leave_pointer(home, elsewhere) == pointer  # again: the same pointer, no error
    assert run_folders(home) == [elsewhere]  # the folder itself, not the link
    # A runs folder that already holds a real folder of that name keeps it and says so.
    taken = fake_run_folder(home, "20260101-000000-cccccc")
    with pytest.raises(ConfigError) as info:
        leave_pointer(home, fake_run_folder(storage, taken.name))
    assert info.value.field == "storage_path" and "folder of its own" in info.value.message

    remove_run_folder(home, elsewhere.name, elsewhere)
    assert not elsewhere.exists() and not pointer.is_symlink() and storage.is_dir()
    # A pointer edited by hand to a folder of another name is never followed into a delete.
    other = fake_run_folder(storage, "not-a-run")
    os.symlink(other, home / "20260101-000000-dddddd")
    remove_run_folder(home, "20260101-000000-dddddd", None)
    assert other.is_dir() and not (home / "20260101-000000-dddddd").is_symlink()


def test_rebuild_store_refuses_an_also_that_is_not_a_folder(tmp_path):
    with pytest.raises(ConfigError) as info:
        rebuild_store(tmp_path / "runs", also=[tmp_path / "missing"])
    assert info.value.field == "--also" and str(tmp_path / "missing") in info.value.message


# -- on the cluster ---------------------------------------------------------------------------------------


def test_a_ray_run_under_a_storage_path_survives_a_lost_store_and_is_deleted_there(
    ray_cluster, launcher, tmp_path
):
    home, storage = launcher.home, tmp_path / "shared"
    # 96 rows, batch 8 on each of 2 workers: 6 steps an epoch, evaluated at each.
    config = ray_config(
        ray_cluster,
        storage_path=str(storage),
        num_train_epochs=2,
        max_train_samples=96,
        eval_strategy="epoch",
    )
    run_id = launcher.launch(config, name="on shared storage")
    folder, pointer = storage / run_id, home / run_id
    assert launcher.run_dir(run_id) == folder and os.readlink(pointer) == str(folder)
    run = launcher.wait(run_id, timeout=300)
    assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id))
    # The attempt's header, from which rebuild-store reads only the last attempt's failure.
    assert "worker start on the Ray cluster (attempt 0) ===" in launcher.log_tail(run_id, lines=10_000)
    # Its driver ends a moment after recording the outcome; until then rebuild-store refuses to start.
    job = run["ray_job_id"]
    wait_for(lambda: ray_jobs.job_state(ray_cluster.address, job)[0] == ray_jobs.JOB_SUCCEEDED, 60, 0.5)
    keys = launcher.store.metric_keys(run_id)
    curves = {key: launcher.store.get_series(run_id, key)[SERIES] for key in keys}
    assert {"loss", "eval_accuracy"} <= set(keys)
    launcher.store.close()

    # The store is lost: the run under the storage path counts as lost with it (found through its pointer).
    lose_store(home)
    with pytest.raises(StoreDamagedError) as info:
        Launcher(home=home)
    assert run_id in info.value.message
    report = rebuild_store(home)
    assert [r["run_id"] for r in report.recovered] == [run_id] and report.pointers == []
    store = MetricsStore(home / "metrics.db")
    back = store.get_run(run_id)
    assert (back["status"], back["name"], back["run_dir"]) == (COMPLETED, "on shared storage", str(folder))
    # Still a Ray run (a resume or a clone goes to the cluster), and its summary read from the folder.
    assert back["ray_address"] == ray_cluster.address
    assert back["summary"]["n_validation"] == run["summary"]["n_validation"]
    assert store.metric_keys(run_id) == keys
    for key, kept in curves.items():
        assert store.get_series(run_id, key)[SERIES].equals(kept), key
    store.close()

    # The pointer is lost too: only --also finds the run, and it leaves the pointer again.
    lose_store(home)
    pointer.unlink()
    assert rebuild_store(home).recovered == []
    lose_store(home)
    out = cli("rebuild-store", "--also", str(storage), home=home)
    assert f"recovered {run_id}: completed" in out.stdout, out.stdout
    assert f"pointer: {pointer} -> {folder}" in out.stdout and os.readlink(pointer) == str(folder)
    # A sound store that has the run: --also only gives the lost pointer back.
    pointer.unlink()
    report = rebuild_store(home, also=[storage])
    assert (report.kept, report.recovered, report.pointers) == ([run_id], [], [str(pointer)])

    launcher = Launcher(home=home)
    assert launcher.predictions(run_id) is not None  # read from the storage path
    launcher.delete(run_id)
    assert not folder.exists() and not pointer.is_symlink() and storage.is_dir()
    assert launcher.store.list_runs() == []
