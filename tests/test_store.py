"""The metrics store against a real SQLite file and a real PostgreSQL database: runs, points,
downsampling, concurrency, claims. Tests taking ``store``/``store_url`` run on both; the file's own
concerns (WAL checkpoints, versions in PRAGMA user_version, damaged files) on SQLite only."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from trainer_core.errors import ConfigError, RunNotFoundError, StoreDamagedError
from trainer_core.tracking import postgres, schema
from trainer_core.tracking.status import COMPLETED, FAILED, QUEUED, RUNNING, STOPPED, STOPPING
from trainer_core.tracking.store import MetricsStore

pytestmark = pytest.mark.both_stores


@pytest.fixture
def store(store_url):
    return MetricsStore(store_url)


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
    with pytest.raises(ConfigError) as info:
        MetricsStore("mysql://localhost/x")
    assert info.value.field == "TRAINER_CORE_DB" and "postgresql://" in info.value.message


def test_an_unreachable_server_is_a_config_error_without_the_password():
    began = time.monotonic()
    with pytest.raises(ConfigError) as info:
        MetricsStore("postgresql://trainer:s3cret@127.0.0.1:1/runs")
    assert info.value.field == "TRAINER_CORE_DB"
    assert "trainer:***@127.0.0.1:1/runs" in info.value.message and "s3cret" not in str(info.value)
    assert "server is running" in info.value.message
    assert time.monotonic() - began < 10


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


def test_four_concurrent_writers_and_a_reader_lose_nothing(store_url):
    url = store_url
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


_CLAIMER = textwrap.dedent(
    """
    import json, sys, time
    from trainer_core.tracking.store import MetricsStore
    store = MetricsStore(sys.argv[1])
    slots, start = int(sys.argv[2]), float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    held = []
    while True:
        ids = store.claim_runs(["queued"], "running", max_holding=slots, host=sys.argv[4])
        if not ids:
            if not store.list_runs(statuses=["queued"]):
                break
            time.sleep(0.002)
            continue
        began = time.monotonic()  # one clock for every process on this machine
        time.sleep(0.02)  # the slot is held: a second holder now would overlap this window
        held.append([ids[0], began, time.monotonic()])
        store.update_run(ids[0], status="completed")
    print(json.dumps(held))
    """
)


def test_claimers_in_four_processes_never_share_a_run_or_a_slot(store_url):
    store = MetricsStore(store_url)
    run_ids = [store.create_run(f"q{i}", {}) for i in range(24)]
    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, store_url, "2", start, f"host{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = [json.loads(p.communicate(timeout=180)[0]) for p in procs]
    claims = [c for r in results for c in r]
    assert sorted(c[0] for c in claims) == sorted(run_ids)  # each run claimed once, none lost
    # Slots in use over time: +1 at each hold's start, -1 at its end (ends first at equal times).
    changes = sorted([(began, 1) for _, began, _ in claims] + [(ended, -1) for *_, ended in claims])
    in_use = max(itertools.accumulate(change for _, change in changes))
    # Never a third holder. (Both slots are usually in use at once, but on a loaded 2-core machine the
    # claimers can run one after another: one run in three failed an "exactly 2" check at load ~17.)
    assert 1 <= in_use <= 2, in_use
    assert sum(1 for r in results if r) >= 2  # the claims really were spread over processes
    assert {r["status"] for r in store.list_runs()} == {COMPLETED}


_RESUMER = textwrap.dedent(
    """
    import sys, time
    from trainer_core.tracking.store import MetricsStore
    store = MetricsStore(sys.argv[1])
    while time.time() < float(sys.argv[2]):
        time.sleep(0.001)
    for run_id in sys.argv[3:]:
        attempt = store.claim_attempt(run_id, from_statuses=["stopped"])
        if attempt is not None:
            print(run_id, attempt, flush=True)
    """
)


def test_one_attempt_claim_wins_when_four_processes_resume_the_same_runs(store):
    run_ids = [store.create_run(f"s{i}", {}, status=STOPPED) for i in range(20)]
    start = str(time.time() + 1.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RESUMER, store.url, start, *run_ids], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    wins = [line.split() for p in procs for line in p.communicate(timeout=120)[0].splitlines()]
    assert sorted(run_id for run_id, _ in wins) == sorted(run_ids) and {a for _, a in wins} == {"1"}
    assert {(r["status"], r["attempt"]) for r in store.list_runs()} == {(QUEUED, 1)}


def test_a_claim_block_is_one_transaction(store):
    run_id = store.create_run("t", {})
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("UPDATE runs SET status = ? WHERE id = ?", (RUNNING, run_id))
        raise RuntimeError("changed my mind")
    assert store.get_run(run_id)["status"] == QUEUED  # rolled back
    with store.transaction(serialize="queue") as conn:
        (found,) = conn.execute(
            f"SELECT id FROM runs WHERE status = ?{store.lock_rows}", (QUEUED,)
        ).fetchall()
        conn.execute("UPDATE runs SET status = ? WHERE id = ?", (RUNNING, found[0]))
    assert store.get_run(run_id)["status"] == RUNNING


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


# -- schema versions and migrations ------------------------------------------------------------------

# The schema as the first release created it (tracking/store.py's _SCHEMA before versioning), copied
# here on purpose: a file written by that code must keep opening, whatever the code becomes.
V0_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL,
    created_at REAL NOT NULL, started_at REAL, finished_at REAL, pid INTEGER, host TEXT,
    heartbeat_at REAL, step INTEGER, epoch REAL, total_steps INTEGER, error TEXT, traceback TEXT,
    summary TEXT, stop_requested INTEGER NOT NULL DEFAULT 0, run_dir TEXT,
    attempt INTEGER NOT NULL DEFAULT 0, start_step INTEGER NOT NULL DEFAULT 0, train_began_at REAL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, value REAL NOT NULL,
    wall_time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_series ON metrics (run_id, key, step);
CREATE TABLE IF NOT EXISTS metric_rollups (
    run_id TEXT NOT NULL, key TEXT NOT NULL, width INTEGER NOT NULL, bucket INTEGER NOT NULL,
    n INTEGER NOT NULL, min_step INTEGER NOT NULL, min_epoch REAL, min_value REAL NOT NULL,
    min_wall REAL NOT NULL, max_step INTEGER NOT NULL, max_epoch REAL, max_value REAL NOT NULL,
    max_wall REAL NOT NULL, PRIMARY KEY (run_id, key, width, bucket)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, time REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id);
"""


def write_v0_store(path) -> None:
    """A store as the unversioned release left it: one completed run, 3000 loss points, two events."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(V0_SCHEMA)
    conn.execute(
        "INSERT INTO runs (id, name, status, config, created_at, step, total_steps, summary, attempt) "
        "VALUES ('r0', 'old run', 'completed', ?, 1000.0, 3000, 3000, ?, 1)",
        (json.dumps({"learning_rate": 2e-5}), json.dumps({"train_loss": 0.25})),
    )
    conn.executemany(
        "INSERT INTO metrics VALUES ('r0', 'loss', ?, ?, ?, ?)",
        [(step, step / 1000, 1.0 / (step + 1), 1000.0 + step) for step in range(3000)],
    )
    conn.execute("INSERT INTO metrics VALUES ('r0', 'eval_f1', 3000, 3.0, 0.8, 5000.0)")
    conn.executemany(
        "INSERT INTO events (run_id, time, kind, message, data) VALUES ('r0', ?, ?, ?, ?)",
        [
            (1000.0, "launched", "run 'old run' launched", None),
            (5000.0, "completed", "run completed", '{"a": 1}'),
        ],
    )
    conn.commit()
    conn.close()


def test_a_store_written_before_versioning_upgrades_in_place(tmp_path):
    path = tmp_path / "metrics.db"
    write_v0_store(path)
    store = MetricsStore(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS) >= 1
    run = store.get_run("r0")
    assert (run["name"], run["status"], run["config"], run["summary"], run["attempt"]) == (
        "old run",
        COMPLETED,
        {"learning_rate": 2e-5},
        {"train_loss": 0.25},
        1,
    )
    loss = store.get_series("r0", "loss")
    assert loss["step"].tolist() == list(range(3000)) and loss["value"].iloc[9] == 0.1
    assert store.metric_keys("r0") == ["eval_f1", "loss"]
    assert store.best_metrics("r0", ["eval_f1"])["eval_f1"] == {"value": 0.8, "step": 3000, "epoch": 3.0}
    events = store.events("r0")
    assert [(e["kind"], e["data"]) for e in events] == [("launched", None), ("completed", {"a": 1})]
    # Still an ordinary store: new runs and points go in beside the old ones.
    new = store.create_run("new", {})
    store.log_metrics(new, {"loss": 0.5}, step=1)
    assert [r["id"] for r in MetricsStore(path).list_runs()] == [new, "r0"]


def test_a_version_1_store_gains_notes_and_tags_and_keeps_its_runs(tmp_path):
    path = str(tmp_path / "metrics.db")
    schema.open_database(path, 5.0, migrations=schema.MIGRATIONS[:1]).close()  # as version 1 left it
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO runs (id, name, status, config, created_at) VALUES ('r1', 'v1 run', 'completed', '{}', 1.0)"
        )
    store = MetricsStore(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS) >= 2
    run = store.get_run("r1")
    assert (run["name"], run["status"], run["note"], run["tags"]) == ("v1 run", COMPLETED, None, [])
    store.update_run("r1", note="a note", tags=["baseline", "lr-sweep"])
    run = MetricsStore(path).get_run("r1")
    assert (run["note"], run["tags"]) == ("a note", ["baseline", "lr-sweep"])


def test_note_and_tags_round_trip(store):
    run_id = store.create_run("first", {})
    assert (store.get_run(run_id)["note"], store.get_run(run_id)["tags"]) == (None, [])
    store.update_run(run_id, note="héllo\nsecond line", tags=["Ünïcode", "b"])
    assert [(r["note"], r["tags"]) for r in store.list_runs()] == [("héllo\nsecond line", ["Ünïcode", "b"])]
    store.update_run(run_id, tags=[])
    assert store.get_run(run_id)["tags"] == []


def test_migrations_run_once_each_in_order_and_a_failing_one_changes_nothing(tmp_path):
    path = str(tmp_path / "metrics.db")
    write_v0_store(path)
    calls = []

    def next_owner(conn):  # what the next schema change will look like: one function appended
        calls.append("next")
        conn.execute("ALTER TABLE runs ADD COLUMN owner TEXT")

    def then_broken(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration bug")

    migrations = (*schema.MIGRATIONS, next_owner)
    schema.open_database(path, 5.0, migrations=migrations).close()
    schema.open_database(path, 5.0, migrations=migrations).close()
    assert calls == ["next"]
    with pytest.raises(RuntimeError, match="migration bug"):
        schema.open_database(path, 5.0, migrations=(*migrations, then_broken))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations)
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchall()
        assert conn.execute("SELECT owner FROM runs WHERE id = 'r0'").fetchone() == (None,)


_OPENER = textwrap.dedent(
    """
    import sys, time
    from trainer_core.tracking.store import MetricsStore
    while time.time() < float(sys.argv[2]):
        time.sleep(0.001)
    store = MetricsStore(sys.argv[1])
    store.create_run(sys.argv[3], {})
    """
)


def stored_version(url: str) -> int:
    """The schema version a database records (PRAGMA user_version, or PostgreSQL's version table)."""
    if postgres.is_postgres_url(url):
        conn = postgres.connect(url)
        try:
            return postgres.schema_version(conn)
        finally:
            conn.close()
    with sqlite3.connect(schema.sqlite_path(url)) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_many_processes_creating_one_store_at_once(store_url, store_backend, tmp_path):
    # Workers starting together on a new store: each migration must be applied once, and none may fail.
    url = store_url if store_backend == "postgresql" else f"sqlite:///{tmp_path / 'new' / 'metrics.db'}"
    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", _OPENER, url, start, f"p{i}"]) for i in range(6)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    store = MetricsStore(url)
    assert sorted(r["name"] for r in store.list_runs()) == [f"p{i}" for i in range(6)]
    assert stored_version(url) == len(schema.MIGRATIONS)


def test_postgres_migrations_apply_once_roll_back_whole_and_refuse_newer(pg_server):
    url = pg_server.new_database()
    conn = postgres.open_database(url, schema.MIGRATIONS[:1])  # a database as version 1 left it
    conn.execute(
        "INSERT INTO runs (id, name, status, config, created_at) VALUES ('r1', 'v1 run', 'completed', '{}', 1.0)"
    )
    conn.close()
    run = MetricsStore(url).get_run("r1")  # gains note and tags, keeps its run
    assert (run["name"], run["note"], run["tags"]) == ("v1 run", None, [])
    assert stored_version(url) == len(schema.MIGRATIONS)
    calls = []

    def next_owner(c):
        calls.append("next")
        c.execute("ALTER TABLE runs ADD COLUMN owner TEXT")

    def then_broken(c):
        c.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration bug")

    migrations = (*schema.MIGRATIONS, next_owner)
    postgres.open_database(url, migrations).close()
    postgres.open_database(url, migrations).close()
    assert calls == ["next"]
    with pytest.raises(RuntimeError, match="migration bug"):
        postgres.open_database(url, (*migrations, then_broken))
    conn = postgres.connect(url)
    # DDL is transactional on PostgreSQL: the failed step left neither its table nor a version bump.
    assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
    assert conn.execute("SELECT owner FROM runs WHERE id = 'r1'").fetchone() == (None,)
    conn.close()
    assert stored_version(url) == len(migrations)
    with pytest.raises(ConfigError, match="newer") as info:
        MetricsStore(url)  # this code knows one version less than the database has
    assert "postgres@127.0.0.1" in str(info.value)


def test_values_and_keys_read_back_the_same_on_both_backends(store):
    run_id = store.create_run("exact", {})
    keys = ["eval_Z", "_private", "B", "a", "eval_accuracy", "Ünïcode"]
    store.log_metrics(run_id, dict.fromkeys(keys, 1 / 3), step=2**31 - 1, epoch=1 / 7)
    # Byte order, as Python sorts: the server's locale must not reorder keys (or break their index scan).
    assert store.metric_keys(run_id) == sorted(keys)
    point = store.get_series(run_id, "B").iloc[0]
    assert (point["value"], point["epoch"], point["step"]) == (1 / 3, 1 / 7, 2**31 - 1)  # 8-byte floats


def test_downsampling_without_rollups_keeps_the_extremes(store):
    # 1500 points into 1000: too few for any rollup width, so the dialect's own min/max query runs.
    run_id = store.create_run("scan", {})
    values = [float((i * 37) % 101) for i in range(1500)]
    values[700], values[701] = 1000.0, -1000.0
    store.log_points([(run_id, "loss", i, None, v, float(i)) for i, v in enumerate(values)])
    down = store.get_series(run_id, "loss", max_points=1000)
    assert 500 <= len(down) <= 1000 and down["step"].is_monotonic_increasing
    assert {1000.0, -1000.0} <= set(down["value"]) and set(down["value"]) <= set(values)
    assert down["step"].iloc[0] == 0 and down["step"].iloc[-1] >= 1497


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "metrics.db"
    MetricsStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigError, match="newer"):
        MetricsStore(path)


# -- damaged files -----------------------------------------------------------------------------------


def damage(path, how: str) -> None:
    """Damage a store file the ways disks, copies and editors do."""
    if how == "junk header":
        with open(path, "r+b") as fh:
            fh.write(b"this is not a database at all")
    elif how == "truncated":
        os.truncate(path, os.path.getsize(path) // 3)
    elif how == "junk pages":
        with open(path, "r+b") as fh:
            fh.seek(os.path.getsize(path) // 2)
            fh.write(b"\xa5" * 8192)
    else:
        raise ValueError(how)


RUN = "20260101-000000-aaaaaa"


def store_with_points(path):
    """A closed store file of 20,000 points, every page written back from the WAL."""
    store = MetricsStore(path)
    run_id = store.create_run("r", {}, run_id=RUN)
    store.log_points([(run_id, "loss", i, None, float(i), 0.0) for i in range(20_000)])
    store.checkpoint()
    store.close()
    return path


@pytest.mark.parametrize("how", ["junk header", "truncated", "junk pages"])
def test_a_damaged_file_is_reported_by_name_with_what_to_do(tmp_path, how):
    path = store_with_points(tmp_path / "metrics.db")
    damage(path, how)
    with pytest.raises(StoreDamagedError) as info:
        MetricsStore(path)
    assert str(path) in str(info.value) and "rebuild-store" in str(info.value)
    assert isinstance(info.value, ConfigError)  # shown like every other user-fixable problem


def test_damage_found_after_open_is_reported_the_same_way(tmp_path):
    # Past the quick_check size limit, damage inside the file surfaces at the first query that meets it.
    path = store_with_points(tmp_path / "metrics.db")
    damage(path, "junk pages")
    big_file_store = MetricsStore(path, quick_check_max_bytes=0)
    with pytest.raises(StoreDamagedError):
        big_file_store.get_series(RUN, "loss")


def test_an_empty_file_is_a_new_store(tmp_path):
    path = tmp_path / "metrics.db"
    path.write_bytes(b"")
    assert MetricsStore(path).list_runs() == []
