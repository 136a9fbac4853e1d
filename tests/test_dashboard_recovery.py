"""The dashboard says plainly what went wrong with the runs folder or the store, and offers the fix:
a damaged store is rebuilt from the run folders, an unusable home is named, and a resume whose
checkpoints are gone asks before it restarts from step 0. Real files, a real store, AppTest pages.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_dashboard_app import button, open_page, populate, texts
from trainer_core.config import config_from_dict, save_config
from trainer_core.runs.folder import CHECKPOINT_EVENT, CONFIG_FILE, LOG_FILE
from trainer_core.tracking.status import STOPPED
from trainer_core.tracking.store import MetricsStore


def test_a_damaged_store_is_named_and_rebuilt_from_the_run_folders(runs_home, tiny_run_config):
    folder = runs_home / "20260101-000000-abcdef"
    folder.mkdir(parents=True)
    save_config(config_from_dict(tiny_run_config()), folder / CONFIG_FILE)
    (folder / LOG_FILE).write_text("=== worker start ===\n")
    (runs_home / "metrics.db").write_bytes(b"this is not a database" * 100)

    at = open_page()
    message = texts(at.error)
    assert "metrics.db" in message and "rebuild-store" in message
    button(at, "store.rebuild").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Recovered 1 runs" in texts(at.success)
    assert any(p.name.startswith("metrics.db.damaged-") for p in runs_home.iterdir())

    at = open_page()
    assert not at.error
    assert len(at.dataframe[0].value) == 1  # the recovered run, listed again


def test_an_unusable_runs_folder_is_named_not_a_traceback(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TRAINER_CORE_HOME", str(blocker / "runs"))
    monkeypatch.delenv("TRAINER_CORE_DB", raising=False)
    at = open_page()
    assert "TRAINER_CORE_HOME" in texts(at.error)


def test_resume_asks_before_restarting_when_the_checkpoints_are_gone(runs_home):
    ids = populate(runs_home)
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    store.add_event(ids[STOPPED], CHECKPOINT_EVENT, "saved checkpoint-100")
    store.close()
    run_dir = Path(store.get_run(ids[STOPPED])["run_dir"] or runs_home / ids[STOPPED])
    assert not (run_dir / "checkpoints").exists()

    at = open_page("views/run.py", run=ids[STOPPED])
    assert "none is left" in texts(at.warning)
    assert button(at, "run.resume").disabled
    at.checkbox(key="run.resume_from_scratch").check().run()
    assert not button(at, "run.resume").disabled
