"""The metrics store against a real SQLite file: runs, points, downsampling, concurrency."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from trainer_core.errors import RunNotFoundError
from trainer_core.tracking.status import COMPLETED, FAILED, RUNNING, STOPPING
from trainer_core.tracking.store import MetricsStore


@pytest.fixture
def store(tmp_path):
    return MetricsStore(f"sqlite:///{tmp_path / 'metrics.db'}")


def test_run_lifecycle(store):
    run_id = store.create_run("first", {"learning_rate": 2e-5}, run_dir="/tmp/x")
    run = store.get_run(run_id)
    assert run["name"] == "first" and run["status"] == "queued" and run["config"] == {"learning_rate": 2e-5}
    store.update_run(run_id, status=RUNNING, pid=123, summary={"a": 1})
    store.heartbeat(run_id, step=5, epoch=0.5)
    run = store.get_run(run_id)
    assert (run["status"], run["pid"], run["step"], run["epoch"], run["summary"]) == (
        RUNNING,
        123,
        5,
        0.5,
        {"a": 1},
    )
    store.request_stop(run_id)
    assert store.stop_requested(run_id) and store.get_run(run_id)["status"] == STOPPING
    assert store.finish_run_if_active(run_id, COMPLETED)
    # The first recorded outcome wins: a late supervisor cannot overwrite it.
    assert not store.finish_run_if_active(run_id, FAILED, error="late")
    assert store.get_run(run_id)["status"] == COMPLETED
    store.rename_run(run_id, "renamed")
    assert [r["name"] for r in store.list_runs()] == ["renamed"]
    assert store.list_runs(statuses=[RUNNING]) == []
    store.delete_run(run_id)
    with pytest.raises(RunNotFoundError):
        store.get_run(run_id)


def test_url_forms(tmp_path):
    MetricsStore(str(tmp_path / "plain.db"))
    MetricsStore(f"sqlite:///{tmp_path / 'url.db'}")
    with pytest.raises(ValueError, match="unsupported"):
        MetricsStore("mysql://localhost/x")


def test_points_keys_last_and_best(store):
    run_id = store.create_run("r", {})
    store.log_metrics(
        run_id, {"loss": 0.9, "learning_rate": 1e-5, "note": "text", "nan": float("nan")}, step=10, epoch=0.1
    )
    store.log_metrics(run_id, {"loss": 0.5}, step=20, epoch=0.2)
    store.log_metrics(run_id, {"eval_loss": 0.6, "eval_accuracy": 0.7}, step=20, epoch=1.0)
    store.log_metrics(run_id, {"eval_loss": 0.4, "eval_accuracy": 0.65}, step=40, epoch=2.0)
    assert store.metric_keys(run_id) == ["eval_accuracy", "eval_loss", "learning_rate", "loss"]
    assert store.get_run(run_id)["step"] is None  # plain writes leave the run row alone
    store.log_metrics(run_id, {"loss": 0.45}, step=41, epoch=2.05, touch_run=True)
    run = store.get_run(run_id)
    assert (run["step"], run["epoch"]) == (41, 2.05) and run["heartbeat_at"] is not None
    series = store.get_series(run_id, "loss")
    assert series["step"].tolist() == [10, 20, 41] and series["value"].tolist() == [0.9, 0.5, 0.45]
    assert store.last_metrics(run_id)["eval_accuracy"]["value"] == 0.65
    best = store.best_metrics(run_id)
    assert best["eval_accuracy"] == {"value": 0.7, "step": 20, "epoch": 1.0}
    assert best["eval_loss"]["value"] == 0.4  # lower is better for losses
    long = store.get_metrics([run_id], keys=["loss", "eval_loss"])
    assert set(long.columns) >= {"run_id", "key", "step", "value"} and len(long) == 5


def test_downsampling_keeps_each_buckets_extremes(store):
    run_id = store.create_run("long", {})
    rng = np.random.default_rng(0)
    values = rng.normal(size=100_000)
    values[31_337] = 50.0  # a spike that naive striding would drop
    values[77_777] = -50.0
    now = time.time()
    store.log_points([(run_id, "loss", i, i / 1000, float(v), now + i) for i, v in enumerate(values)])
    for max_points in (1000, 300):
        down = store.get_series(run_id, "loss", max_points=max_points)
        assert len(down) <= max_points
        assert down["value"].max() == 50.0 and down["value"].min() == -50.0
        assert down["step"].is_monotonic_increasing
        assert down["step"].iloc[0] < 1000 and down["step"].iloc[-1] > 99_000
    # Few points: returned as they are.
    assert len(store.get_series(run_id, "loss", max_points=200_000)) == 100_000
    assert store.get_series(run_id, "loss", after_step=99_990)["step"].tolist() == list(
        range(99_991, 100_000)
    )


def test_downsampling_stays_exact_after_rewinding(store):
    run_id = store.create_run("rewind", {})
    now = time.time()
    store.log_points([(run_id, "loss", i, None, float(i % 97), now) for i in range(20_000)])
    store.log_points([(run_id, "loss", 15_000, None, 1000.0, now)])  # a spike in the replayed part
    assert store.delete_points_after(run_id, 12_000) == 8000
    down = store.get_series(run_id, "loss", max_points=500)
    assert down["step"].max() <= 12_000 and down["value"].max() == 96.0
    assert store.count_points(run_id, "loss") == 12_001


_WRITER = textwrap.dedent(
    """
    import sys
    from trainer_core.tracking.store import MetricsStore
    store = MetricsStore(sys.argv[1], busy_timeout_s=30)
    run_id, n = sys.argv[2], int(sys.argv[3])
    for step in range(n):
        store.log_metrics(run_id, {"loss": step * 0.001, "learning_rate": 1e-5}, step=step, epoch=step / n)
        if step % 50 == 0:
            store.heartbeat(run_id, step=step)
    """
)


def test_four_concurrent_writers_and_a_reader_lose_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    store = MetricsStore(url)
    run_ids = [store.create_run(f"w{i}", {}) for i in range(4)]
    n = 600
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, url, rid, str(n)]) for rid in run_ids]
    reads = 0
    last_counts = dict.fromkeys(run_ids, 0)
    while any(w.poll() is None for w in writers):
        for rid in run_ids:
            count = len(store.get_series(rid, "loss"))
            assert count >= last_counts[rid]  # readers see a growing prefix, never a torn write
            last_counts[rid] = count
            store.get_series(rid, "loss", max_points=100)
            reads += 1
    assert [w.returncode for w in writers] == [0, 0, 0, 0]
    assert reads > 4
    for rid in run_ids:
        series = store.get_series(rid, "loss")
        assert series["step"].tolist() == list(range(n))
        assert store.count_points(rid) == 2 * n


def test_events(store):
    run_id = store.create_run("e", {})
    store.add_event(run_id, "launched", "hello", {"x": 1})
    store.add_event(run_id, "stop_requested", "bye")
    events = store.events(run_id)
    assert [e["kind"] for e in events] == ["launched", "stop_requested"] and events[0]["data"] == {"x": 1}


def test_checkpointing_moved_off_the_writers_path(tmp_path):
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    writer = MetricsStore(url, auto_checkpoint=False)
    run_id = writer.create_run("w", {})
    now = time.time()
    for step in range(300):
        writer.log_points([(run_id, "loss", step, None, float(step), now)] * 1)
    wal = tmp_path / "metrics.db-wal"
    grown = wal.stat().st_size
    assert grown > 0
    writer.checkpoint()
    # A passive checkpoint copies the log into the database; the next write starts the log over.
    writer.log_points([(run_id, "loss", 300, None, 1.0, now)])
    assert wal.stat().st_size <= grown
    assert MetricsStore(url).count_points(run_id) == 301
