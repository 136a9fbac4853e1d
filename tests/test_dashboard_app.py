"""Every dashboard page rendered with Streamlit's AppTest, against a real store in a temporary folder.

The runs are written straight into a real MetricsStore, one per status, with metric points, a summary,
predictions and a tiny saved model, exactly as a worker leaves them; no training happens here except
the one test that presses Start (its worker is killed at once).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from trainer_core.tracking.status import COMPLETED, FAILED, QUEUED, RUNNING, STOPPED, STOPPING
from trainer_core.tracking.store import MetricsStore

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGE_FILES = {  # a page link's url_path -> the file AppTest.switch_page takes
    "new": "views/new_run.py",
    "run": "views/run.py",
    "compare": "views/compare.py",
}
# The first run in a process imports transformers (config validation, the data preview): seconds.
TIMEOUT = 60
LABELS = ["fresh", "rotten"]
CONFIG = {
    "model_name_or_path": "builtin:tiny-bert",
    "dataset_name": "builtin:rotten-tomatoes",
    "text_column": "text",
    "label_column": "category",
    "learning_rate": 5e-5,
    "num_train_epochs": 3.0,
    "per_device_train_batch_size": 8,
    "seed": 42,
}


# --------------------------------------------------------------------------------------------------
# a store with one run per status
# --------------------------------------------------------------------------------------------------


def _log_training(
    store: MetricsStore, run_id: str, steps: int, start: float, total: int = 300, shift: float = 0.0
) -> None:
    """Loss and learning rate every step up to ``steps`` of ``total``, evaluation at each epoch's end."""
    rng = np.random.default_rng(0)
    per_epoch = total // 3
    rows = []
    for step in range(1, steps + 1):
        epoch, wall = step / per_epoch, start + step * 0.05
        rows.append(
            (run_id, "loss", step, epoch, float(0.7 * np.exp(-step / total) + 0.05 * rng.random()), wall)
        )
        rows.append((run_id, "learning_rate", step, epoch, 5e-5 * (1 - step / (total + 1)), wall))
    for e in range(1, steps // per_epoch + 1):
        acc = (0.71, 0.83, 0.79)[e - 1] + shift
        for key, value in (("eval_loss", 0.6 - 0.1 * e), ("eval_accuracy", acc), ("eval_f1", acc - 0.02)):
            rows.append((run_id, key, e * per_epoch, float(e), value, start + e * per_epoch * 0.05))
    store.log_points(rows)


def _save_tiny_model(folder: Path) -> None:
    from transformers import AutoTokenizer

    from trainer_core.assets import build_tiny_bert, minilm_path

    build_tiny_bert(2, dict(enumerate(LABELS)), {n: i for i, n in enumerate(LABELS)}).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)


def populate(
    home: Path, with_model: bool = False, steps: int = 300, store_url: str | None = None
) -> dict[str, str]:
    """One run per status under ``home`` (the completed one with its outcome), recorded in
    ``<home>/metrics.db`` or the store at ``store_url``; returns status -> id."""
    store = MetricsStore(store_url or f"sqlite:///{home / 'metrics.db'}")
    now = time.time()
    ids: dict[str, str] = {}

    def add(status: str, **fields) -> str:
        run_dir = home / f"run-{status}"
        run_dir.mkdir(parents=True, exist_ok=True)
        config = {**CONFIG, **fields.pop("config", {})}
        run_id = store.create_run(f"{status}-run", config, run_dir=str(run_dir), status=status)
        store.update_run(run_id, **fields)
        store.add_event(run_id, "launched", f"run {status}-run launched")
        (run_dir / "train.log").write_text(f"log of the {status} run\n")
        ids[status] = run_id
        return run_id

    # A heartbeat in the future keeps reconcile() from failing the active runs, whose workers are fiction.
    add(QUEUED, heartbeat_at=now + 3600)
    running = add(
        RUNNING,
        started_at=now - 60,
        heartbeat_at=now + 3600,
        step=150,
        epoch=1.5,
        total_steps=steps,
        train_began_at=now - 55,
        config={"learning_rate": 3e-5},
    )
    _log_training(store, running, 150, now - 60, shift=0.05)  # one epoch in, 0.76 so far
    done = add(
        COMPLETED, started_at=now - 600, finished_at=now - 300, step=steps, epoch=3.0, total_steps=steps
    )
    _log_training(store, done, steps, now - 600)  # best eval accuracy 0.83, at epoch 2
    failed = add(
        FAILED,
        started_at=now - 900,
        finished_at=now - 880,
        step=5,
        total_steps=steps,
        error="RuntimeError: out of memory (simulated)",
        traceback='Traceback (most recent call last):\n  File "worker.py"\nRuntimeError: simulated',
    )
    _log_training(store, failed, 5, now - 900)  # no evaluation yet
    stopped = add(
        STOPPED, started_at=now - 1200, finished_at=now - 1100, step=200, epoch=2.0, total_steps=steps
    )
    _log_training(store, stopped, 200, now - 1200, shift=-0.1)  # 0.73 at epoch 2

    done_dir = home / "run-completed"
    label = [LABELS[i % 2] for i in range(40)]
    predicted = [lab if i % 5 else LABELS[1 - LABELS.index(lab)] for i, lab in enumerate(label)]  # 8 mistakes
    pd.DataFrame(
        {
            "text": [f"review {i} {'great' if i % 2 == 0 else 'dull'}" for i in range(40)],
            "category": label,
            "label": label,
            "predicted": predicted,
            "confidence": np.linspace(0.5, 1.0, 40),
            "correct": [a == b for a, b in zip(label, predicted, strict=True)],
        }
    ).to_parquet(done_dir / "predictions.parquet", index=False)
    (done_dir / "checkpoints" / f"checkpoint-{steps}").mkdir(parents=True)
    (done_dir / "checkpoints" / f"checkpoint-{steps}" / "trainer_state.json").write_text("{}")
    if with_model:
        _save_tiny_model(done_dir / "model")
    store.update_run(
        done,
        summary={
            "train_runtime": 300.0,
            "train_samples_per_second": 42.5,
            "train_loss": 0.31,
            "final_metrics": {"eval_accuracy": 0.83, "eval_f1": 0.81, "eval_loss": 0.4},
            "report": {
                "labels": LABELS,
                "accuracy": 0.8,
                "per_class": [
                    {"label": "fresh", "precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 20},
                    {"label": "rotten", "precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 20},
                ],
                "confusion_matrix": [[16, 4], [4, 16]],
            },
            "baseline": {"label": LABELS[0], "label_id": 0, "accuracy": 0.5, "f1": 0.0},
            "label_names": LABELS,
            "n_train": 400,
            "n_validation": 40,
            "model_dir": str(done_dir / "model"),
        },
    )
    store.close()
    return ids


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A populated runs folder (with a real tiny model) for the tests that only read."""
    home = tmp_path_factory.mktemp("dashboard") / "runs"
    return home, populate(home, with_model=True)


@pytest.fixture
def populated(shared_home, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("TRAINER_CORE_HOME", str(shared_home[0]))
    monkeypatch.delenv("TRAINER_CORE_DB", raising=False)
    return shared_home[1]


@pytest.fixture
def own_runs(runs_home) -> dict[str, str]:
    """A populated runs folder of this test's own, for tests that change runs."""
    return populate(runs_home)


def open_page(page: str | None = None, run: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if run:
        at.query_params["run"] = run
    if page:
        # AppTest maps a page file to its st.Page (url_path "new" for new_run.py) only once st.navigation
        # has run: open the default page first, as a visitor's first request does.
        at.run()
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def follow(at: AppTest, label: str) -> AppTest:
    """Click the page link labelled ``label``: its page, at its query, in the same session."""
    link = next(e for e in at.get("page_link") if e.proto.label == label)
    at.query_params.clear()
    at.query_params.update(parse_qsl(link.proto.query_string))
    return at.switch_page(PAGE_FILES[link.proto.page]).run()


# --------------------------------------------------------------------------------------------------
# empty state
# --------------------------------------------------------------------------------------------------


def test_every_page_renders_without_runs(runs_home):
    at = open_page()
    assert at.title[0].value == "Runs"
    assert "No runs yet" in texts(at.info)
    assert "Engine" in texts(at.sidebar.caption)
    for page, title in (("views/run.py", "Run"), ("views/compare.py", "Compare runs")):
        at = open_page(page)
        assert at.title[0].value == title and at.info, page
    at = open_page("views/new_run.py")
    assert at.title[0].value == "New run"
    assert at.selectbox(key="new.model_builtin").value == "builtin:minilm-l6"
    assert at.selectbox(key="new.data_builtin").value == "builtin:rotten-tomatoes"
    # The preview guessed the built-in dataset's columns and counted its rows before anything started.
    assert at.selectbox(key="new.text_column").value == "text"
    assert at.selectbox(key="new.label_column").value == "category"
    assert {m.label for m in at.metric} >= {"Training rows", "Validation rows"}
    assert "MiniLM" in at.selectbox(key="new.model_builtin").format_func("builtin:minilm-l6")
    assert "Token lengths" in texts(at.caption) and "BertModel" in texts(at.caption)
    assert not button(at, "new.start").disabled
    assert "python -m trainer_core run config.yaml" in texts(at.code)


# --------------------------------------------------------------------------------------------------
# with runs
# --------------------------------------------------------------------------------------------------


def test_runs_page_lists_every_run_with_progress_and_best_metrics(populated):
    at = open_page()
    table = at.dataframe[0].value
    assert sorted(table["Name"]) == sorted(f"{s}-run" for s in populated)
    completed = table[table["Name"] == "completed-run"].iloc[0]
    assert completed["Progress"] == 1.0 and completed["Best acc"] == pytest.approx(0.83)
    running = table[table["Name"] == "running-run"].iloc[0]
    assert running["Progress"] == pytest.approx(0.5) and running["ETA"].startswith("~")
    at.multiselect(key="runs.status").set_value(["failed"]).run()
    assert at.dataframe[0].value["Name"].tolist() == ["failed-run"]
    at.multiselect(key="runs.status").set_value([]).run()
    at.text_input(key="runs.search").input("no-such-run").run()
    assert "No run matches" in texts(at.info)


def test_no_pages_folder_beside_the_entry_file():
    # Streamlit routes the first script run of a server by a pages/ folder beside the entry file (the
    # old multipage layout): a first visit to /new then showed "Page not found" (its file is new_run.py).
    assert not (Path(APP).parent / "pages").exists()


def _latest_loss(run_id: str) -> float:
    """The last point of a run's loss series, read straight from the store the fixture wrote."""
    store = MetricsStore(f"sqlite:///{Path(os.environ['TRAINER_CORE_HOME']) / 'metrics.db'}")
    return float(store.get_series(run_id, "loss")["value"].iloc[-1])


def test_run_page_for_each_status(populated):
    running = open_page("views/run.py", run=populated[RUNNING])
    assert running.title[0].value == "running-run"
    keys = {b.key for b in running.button}
    assert "run.stop" in keys and "run.resume" not in keys  # only the actions that fit the state
    assert "ETA" in running.get("progress")[0].proto.text
    assert len(running.get("plotly_chart")) == 3  # loss, evaluation, learning rate

    failed = open_page("views/run.py", run=populated[FAILED])
    assert "out of memory (simulated)" in texts(failed.error)
    assert "RuntimeError: simulated" in texts(failed.code)  # the traceback
    assert "run.resume" in {b.key for b in failed.button}

    stopped = open_page("views/run.py", run=populated[STOPPED])
    assert "Resume" in texts(stopped.info)

    done = open_page("views/run.py", run=populated[COMPLETED])
    metrics = {m.label: m.value for m in done.metric}
    assert metrics["Accuracy"] == "0.8300" and metrics["Best eval accuracy"] == "0.8300"
    # "Train loss" is where the loss chart ends, the latest logged point; Trainer's summary train_loss
    # (0.31 in the fixture) is the run's average and is labelled so.
    assert metrics["Train loss"] == f"{_latest_loss(populated[COMPLETED]):.4f}" != "0.3100"
    assert metrics["Avg train loss"] == "0.3100"
    # The scores beside what always answering the majority class gets, and F1 said for what it is.
    deltas = {m.label: m.proto.delta for m in done.metric}
    assert deltas["Accuracy"] == "+0.3300 vs baseline" and deltas["F1"] == "+0.8100 vs baseline"
    assert f"always answering '{LABELS[0]}' scores accuracy 0.5000" in texts(done.caption)
    assert f"F1 of class '{LABELS[1]}'" in next(m for m in done.metric if m.label == "F1").proto.help
    running_metrics = {m.label: m.value for m in running.metric}
    assert running_metrics["Train loss"] == f"{_latest_loss(populated[RUNNING]):.4f}"
    assert [t.label for t in done.tabs] == [
        "Confusion matrix",
        "Predictions",
        "Try the model",
        "Checkpoints & download",
    ]
    assert len(done.get("plotly_chart")) == 4  # + the confusion matrix
    assert done.get("download_button")[0].proto.label == "Download model (.zip)"
    frames = [d.value for d in done.dataframe]
    assert any("checkpoint-300" in str(f) for f in frames)
    # The fixture's checkpoint holds only an empty trainer_state.json: listed, and said not resumable.
    resumable = [f["resumable"].tolist() for f in frames if "resumable" in getattr(f, "columns", [])]
    assert resumable and resumable[0][0].startswith("no: "), resumable
    assert any(list(f.columns) == ["text", "label", "predicted", "confidence", "correct"] for f in frames)


def test_live_run_page_progress_eta_and_unchanged_charts(own_runs, runs_home):
    import streamlit as st

    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    running = own_runs[RUNNING]
    # The heartbeat wrote step 140, the loss chart already has step 150: the bar follows the chart.
    store.update_run(running, step=140)
    at = open_page("views/run.py", run=running)
    assert "step 150 / 300" in at.get("progress")[0].proto.text
    kept = {k: fig for k, (_, fig) in at.session_state["run._figures"].items()}
    assert set(kept) == {"run.loss_chart", "run.eval_chart", "run.lr_chart"}
    at.run()
    # Nothing new was logged: the same figures are sent again, not rebuilt.
    assert all(at.session_state["run._figures"][k][1] is fig for k, fig in kept.items())
    store.log_points([(running, "loss", 151, 1.51, 0.3, time.time())])
    st.cache_data.clear()
    at.run()
    figures = at.session_state["run._figures"]
    assert figures["run.loss_chart"][1] is not kept["run.loss_chart"]  # new point, new figure
    assert figures["run.eval_chart"][1] is kept["run.eval_chart"]
    # Just resumed at step 148: three steps are too few for an ETA.
    store.update_run(running, start_step=148, step=151)
    st.cache_data.clear()
    at.run()
    assert "ETA estimating…" in at.get("progress")[0].proto.text
    assert {m.label: m.value for m in at.metric}["ETA"] == "estimating…"


def test_a_run_page_asks_the_store_for_its_run_version_once_per_script_run(own_runs, runs_home, monkeypatch):
    # Every part of a Run page (the watcher, the status line, each chart, the log, the actions) draws from
    # the run's version; one script run asks the store once and the parts share the answer, so that they
    # agree and a watching server does not re-read the store's pages once per part.
    import streamlit as st

    from dashboard import live_data

    asked: list[str] = []
    real = MetricsStore.run_version

    def counted(self, run_id):
        asked.append(run_id)
        return real(self, run_id)

    monkeypatch.setattr(MetricsStore, "run_version", counted)
    running = own_runs[RUNNING]
    at = open_page("views/run.py", run=running)
    assert asked.count(running) == 1, asked
    assert len(at.session_state["run._figures"]) == 3  # the parts were drawn from that answer
    # The next script run asks again, and sees what was logged meanwhile.
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    store.log_points([(running, "loss", 151, 1.51, 0.25, time.time())])
    st.cache_data.clear()
    asked.clear()
    at.run()
    assert asked.count(running) == 1, asked
    assert {m.label: m.value for m in at.metric}["Train loss"] == "0.2500"
    # Outside a script run (the version route's threads) nothing is kept: every call asks.
    asked.clear()
    for _ in range(3):
        assert live_data.run_version(running)["series"]["loss"][1] == 151
    assert len(asked) == 3


# Opens the watching pages in a fresh process and prints which heavy training libraries got imported.
WATCHING_PAGES = """
import json, sys
from streamlit.testing.v1 import AppTest
app, ids = sys.argv[1], json.loads(sys.argv[2])
visits = [("views/runs.py", {})] + [("views/run.py", {"run": i}) for i in ids.values()]
visits += [("views/compare.py", {"runs": ",".join(ids.values())}), ("views/sweep.py", {})]
for page, params in visits:
    at = AppTest.from_file(app, default_timeout=120)
    at.run()
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page(page)
    at.run()
    assert not at.exception, (page, [e.value for e in at.exception])
print(json.dumps(sorted(m for m in ("torch", "transformers", "accelerate", "datasets") if m in sys.modules)))
"""


def test_watching_pages_do_not_load_the_training_stack(populated):
    """Runs, every status's Run page, Compare and Sweeps need no torch: importing transformers' trainer for
    a checkpoint's file names once put ~340 MB into the dashboard's server as a stopped run was shown."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", WATCHING_PAGES, APP, json.dumps(populated)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(Path(APP).parents[1])},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_fine_tune_further_opens_the_form_on_the_runs_model(populated):
    at = follow(open_page("views/run.py", run=populated[COMPLETED]), "Fine-tune further")
    assert at.title[0].value == "New run"
    assert at.radio(key="new.model_source").value == "Finished run"
    assert at.selectbox(key="new.model_run").value.endswith("run-completed/model")
    assert "BertForSequenceClassification" in texts(at.caption)  # inspected: it already has a head
    assert not button(at, "new.start").disabled


def test_run_page_predictions_filter_to_mistakes(populated):
    at = open_page("views/run.py", run=populated[COMPLETED])
    at.toggle(key="run.only_mistakes").set_value(True).run()
    table = next(d.value for d in at.dataframe if "predicted" in getattr(d.value, "columns", []))
    assert len(table) == 8 and not table["correct"].any()
    assert table["confidence"].is_monotonic_decreasing  # the most confident mistakes first


def test_run_page_tries_the_model_on_typed_text(populated):
    at = open_page("views/run.py", run=populated[COMPLETED])
    at.text_area(key="run.try_text").input("a gripping film\na dull film")
    button(at, "run.try_submit").click().run()
    assert not at.exception
    answers = [m.value for m in at.markdown if " — a " in m.value]
    assert [a.split(" — ")[1] for a in answers] == ["a gripping film", "a dull film"]
    assert all(a.split("**")[1] in LABELS for a in answers)  # the predicted label, then its probability


def test_run_page_unknown_or_missing_run(populated):
    at = open_page("views/run.py", run="no-such-run")
    assert "There is no run `no-such-run`" in texts(at.warning)
    at = open_page("views/run.py")
    assert "Choose a run" in texts(at.info)


def test_compare_page_overlays_ranks_and_diffs(populated):
    at = open_page("views/compare.py")
    at.multiselect(key="compare.runs").set_value(
        [populated[COMPLETED], populated[RUNNING], populated[STOPPED]]
    ).run()
    assert not at.exception
    chart = at.get("plotly_chart")[0]
    assert "completed-run" in chart.proto.spec and "running-run" in chart.proto.spec
    at.radio(key="compare.x").set_value("relative").run()
    assert not at.exception
    ranking = next(d.value for d in at.dataframe if "Rank" in d.value.columns)
    assert ranking["Run"].tolist() == ["completed-run", "running-run", "stopped-run"]
    assert ranking["eval_accuracy"].tolist() == pytest.approx([0.83, 0.76, 0.73])
    diff = next(d.value for d in at.dataframe if "Rank" not in d.value.columns)
    assert list(diff.index) == ["learning_rate"]  # the running run used 3e-5: the only difference


def test_every_watching_page_renders_on_a_postgresql_store(tmp_path, monkeypatch, pg_server):
    # The pages' reads on the other dialect: the live Run page's change check once used SQLite's JSON
    # functions, and a team's shared PostgreSQL store got an error where the run should have been.
    home, url = tmp_path / "runs", pg_server.new_database()
    ids = populate(home, store_url=url)
    monkeypatch.setenv("TRAINER_CORE_HOME", str(home))
    monkeypatch.setenv("TRAINER_CORE_DB", url)
    table = open_page().dataframe[0].value
    assert sorted(table["Name"]) == sorted(f"{s}-run" for s in ids)
    for status, run_id in ids.items():
        at = open_page("views/run.py", run=run_id)
        assert at.title[0].value == f"{status}-run", status
    assert len(open_page("views/run.py", run=ids[RUNNING]).get("plotly_chart")) == 3
    at = open_page("views/compare.py")
    at.multiselect(key="compare.runs").set_value([ids[COMPLETED], ids[RUNNING]]).run()
    assert not at.exception and "running-run" in at.get("plotly_chart")[0].proto.spec
    assert open_page("views/sweep.py").title[0].value == "Sweeps"


# --------------------------------------------------------------------------------------------------
# actions
# --------------------------------------------------------------------------------------------------


def test_runs_page_actions_rename_stop_delete(own_runs, runs_home):
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    at = open_page()
    at.selectbox(key="runs.selected").set_value(own_runs[STOPPED]).run()
    at.text_input(key=f"runs.rename_to.{own_runs[STOPPED]}").input("renamed-run")
    button(at, "runs.rename_save").click().run()
    assert store.get_run(own_runs[STOPPED])["name"] == "renamed-run"

    at.selectbox(key="runs.selected").set_value(own_runs[RUNNING]).run()
    button(at, "runs.stop").click().run()
    assert store.get_run(own_runs[RUNNING])["status"] == STOPPING

    at.selectbox(key="runs.selected").set_value(own_runs[FAILED]).run()
    button(at, "runs.delete").click().run()
    assert "cannot be undone" in texts(at.warning) and store.has_run(own_runs[FAILED])
    button(at, "runs.delete_confirm").click().run()
    assert not store.has_run(own_runs[FAILED])
    assert not at.exception


def test_note_and_tags_saved_on_the_run_page_are_found_by_the_runs_search(own_runs, runs_home):
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    run_id = own_runs[STOPPED]
    at = open_page("views/run.py", run=run_id)
    at.text_input(key=f"run.tags.{run_id}").input("x" * 41)
    button(at, "run.annotate").click().run()
    assert "at most 40" in texts(at.error) and store.get_run(run_id)["tags"] == []

    at.text_area(key=f"run.note.{run_id}").input("Stopped early: the LR was too high")
    at.text_input(key=f"run.tags.{run_id}").input(" LR-sweep, baseline,, lr-sweep ")
    button(at, "run.annotate").click().run()
    assert not at.exception
    saved = store.get_run(run_id)
    assert (saved["note"], saved["tags"]) == ("Stopped early: the LR was too high", ["LR-sweep", "baseline"])

    at.switch_page("views/runs.py").run()
    at.text_input(key="runs.search").input("lr-sweep").run()
    table = next(d.value for d in at.dataframe if "Tags" in d.value.columns)
    assert table.index.tolist() == [run_id] and table.loc[run_id, "Tags"] == "LR-sweep, baseline"
    at.text_input(key="runs.search").input("too high").run()
    assert next(d.value for d in at.dataframe if "Tags" in d.value.columns).index.tolist() == [run_id]


def test_clone_prefills_the_new_run_form(own_runs):
    at = open_page()
    at.selectbox(key="runs.selected").set_value(own_runs[RUNNING]).run()
    follow(at, "Clone")
    assert at.title[0].value == "New run"
    assert at.text_input(key="new.run_name").value == "running-run-copy"
    assert at.text_input(key="new.learning_rate").value == "3e-05"
    assert at.selectbox(key="new.model_builtin").value == "builtin:tiny-bert"
    assert "Pre-filled from run" in texts(at.info)


# --------------------------------------------------------------------------------------------------
# the New run form
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def csv_form(runs_home, tmp_path) -> AppTest:
    """The New run form on a small CSV whose column names say nothing (the values do), with the tiny checkpoint."""
    path = tmp_path / "data.csv"
    pd.DataFrame({"foo": [f"text number {i}" for i in range(40)], "bar": ["a", "b"] * 20}).to_csv(
        path, index=False
    )
    at = open_page("views/new_run.py")
    at.selectbox(key="new.model_builtin").set_value("builtin:tiny-bert").run()
    at.radio(key="new.data_source").set_value("File on this machine").run()
    at.text_input(key="new.train_file").input(str(path)).run()
    assert not at.exception
    return at


def test_form_shows_errors_next_to_fields_and_disables_start(csv_form, tmp_path):
    at = csv_form
    # Neither column name says what it holds; the values do, and the boxes show the columns guessed.
    assert at.selectbox(key="new.text_column").value == "foo"
    assert at.selectbox(key="new.label_column").value == "bar"
    assert not at.error and not button(at, "new.start").disabled
    # Columns that neither names nor values decide: the preview says so at the text column, Start is off.
    unclear = tmp_path / "unclear.csv"
    pd.DataFrame({"a": range(40), "b": [f"id{i}" for i in range(40)]}).to_csv(unclear, index=False)
    at.text_input(key="new.train_file").input(str(unclear)).run()
    assert "could not tell which column holds the text" in texts(at.error)
    assert button(at, "new.start").disabled
    at.text_input(key="new.train_file").input(str(tmp_path / "data.csv")).run()
    assert at.selectbox(key="new.text_column").value == "foo"
    assert not at.error and not button(at, "new.start").disabled
    assert {m.label: m.value for m in at.metric}["Labels"] == "2"

    at.text_input(key="new.learning_rate").input("fast").run()
    assert "expected a number such as 0.1 or 2e-5, got 'fast'" in texts(at.error)
    assert button(at, "new.start").disabled
    at.text_input(key="new.learning_rate").input("3e-5").run()
    assert not at.error and "learning_rate: 3.0e-05" in texts(at.code)

    at.text_area(key="new.advanced_json").input('{"max_grad_norm": -1}').run()
    assert "max_grad_norm: must be zero or more" in texts(at.error)
    assert button(at, "new.start").disabled


def test_start_launches_and_opens_the_run_page(csv_form, runs_home):
    from trainer_core.runs.launcher import Launcher

    at = csv_form
    at.selectbox(key="new.text_column").set_value("foo").run()
    at.selectbox(key="new.label_column").set_value("bar").run()
    at.text_input(key="new.run_name").input("from-the-form").run()
    button(at, "new.start").click().run()
    launcher = Launcher(home=runs_home)
    try:
        (run,) = launcher.store.list_runs()
        assert run["name"] == "from-the-form" and run["config"]["text_column"] == "foo"
        assert at.title[0].value == "from-the-form"  # now on the run's page
        assert at.query_params["run"] == run["id"]
    finally:
        for r in launcher.store.list_runs():
            launcher.delete(r["id"])  # kills the worker before it trains


# --------------------------------------------------------------------------------------------------
# what F1 is: chosen on the form, named where the number is shown
# --------------------------------------------------------------------------------------------------


def test_form_offers_the_f1_choice_from_the_labels_and_records_it(csv_form, runs_home, tmp_path):
    from trainer_core.runs.launcher import Launcher

    at = csv_form  # labels 'a' and 'b'
    average, positive = at.selectbox(key="new.f1_average"), at.selectbox(key="new.pos_label")
    assert average.options == ["default (class 'b')", "binary", "macro", "weighted"]
    assert positive.options == ["a", "b"] and not positive.disabled
    positive.set_value("a").run()
    assert not at.error and "pos_label: a" in texts(at.code)
    # An average over every class has no positive class: the choice is cleared and the box disabled.
    at.selectbox(key="new.f1_average").set_value("macro").run()
    assert at.selectbox(key="new.pos_label").value is None and at.selectbox(key="new.pos_label").disabled
    assert "f1_average: macro" in texts(at.code) and "pos_label" not in texts(at.code)
    # Three classes: 'binary' cannot be, said under the field before anything starts.
    three = tmp_path / "three.csv"
    pd.DataFrame({"foo": [f"text number {i}" for i in range(60)], "bar": list("xyz") * 20}).to_csv(
        three, index=False
    )
    at.text_input(key="new.train_file").input(str(three)).run()
    at.selectbox(key="new.f1_average").set_value("binary").run()
    assert "'binary' scores one class of two, but this data has 3 classes ('x', 'y', 'z')" in texts(at.error)
    assert button(at, "new.start").disabled and at.selectbox(key="new.pos_label").disabled
    at.selectbox(key="new.f1_average").set_value("weighted").run()
    assert not at.error and not button(at, "new.start").disabled
    button(at, "new.start").click().run()
    launcher = Launcher(home=runs_home)
    try:
        (run,) = launcher.store.list_runs()
        assert run["config"]["f1_average"] == "weighted" and run["config"]["pos_label"] is None
    finally:
        for r in launcher.store.list_runs():
            launcher.delete(r["id"])  # kills the worker before it trains


def _completed_run(store: MetricsStore, home: Path, name: str, config: dict) -> str:
    run_dir = home / name
    run_dir.mkdir(parents=True)
    now = time.time()
    run_id = store.create_run(name, {**CONFIG, **config}, run_dir=str(run_dir), status=COMPLETED)
    store.update_run(
        run_id,
        started_at=now - 600,
        finished_at=now - 300,
        step=300,
        epoch=3.0,
        total_steps=300,
        summary={"label_names": LABELS, "final_metrics": {"eval_accuracy": 0.8, "eval_f1": 0.7}},
    )
    _log_training(store, run_id, 300, now - 600)
    return run_id


def test_clone_restores_the_f1_choice(runs_home):
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    run_id = _completed_run(store, runs_home, "fresh-f1", {"f1_average": "binary", "pos_label": "fresh"})
    at = follow(open_page("views/run.py", run=run_id), "Clone")
    assert at.title[0].value == "New run"
    assert at.selectbox(key="new.f1_average").value == "binary"
    assert at.selectbox(key="new.pos_label").value == "fresh"
    assert "pos_label: fresh" in texts(at.code) and not at.error


def test_run_card_and_compare_ranking_say_what_each_runs_f1_is(runs_home):
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    default = _completed_run(store, runs_home, "default-f1", {})
    macro = _completed_run(store, runs_home, "macro-f1", {"f1_average": "macro"})
    at = open_page("views/run.py", run=macro)
    labels = {m.label for m in at.metric}
    assert "Best eval F1 (macro, 2 classes)" in labels
    assert "macro-averaged F1 over 2 classes" in next(m for m in at.metric if m.label == "F1").proto.help
    legend = at.get("plotly_chart")[1].proto.spec
    assert "f1 (macro, 2 classes)" in legend
    assert "Best eval F1 (class 'rotten')" in {m.label for m in open_page("views/run.py", run=default).metric}

    at = open_page("views/compare.py")
    at.multiselect(key="compare.runs").set_value([default, macro]).run()
    at.selectbox(key="compare.rank_metric").set_value("eval_f1").run()
    assert not at.exception
    ranking = next(d.value for d in at.dataframe if "Rank" in d.value.columns)
    assert dict(zip(ranking["Run"], ranking["F1 is"], strict=True)) == {
        "default-f1": "F1 of class 'rotten'",
        "macro-f1": "macro-averaged F1 over 2 classes",
    }
    assert "different scores" in texts(at.warning)
