"""The store's connections across threads and processes (``tracking/connections.py``), on a real SQLite
file and a real PostgreSQL database: a thread that ends hands its connection to the next one, two live
threads never share one, one left inside a transaction is not handed on, a forked child opens its own."""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from trainer_core.tracking.store import MetricsStore

pytestmark = pytest.mark.both_stores


@pytest.fixture
def store(store_url):
    s = MetricsStore(store_url)
    yield s
    s.close()


COUNTER = "test-connection-count"  # the application name of open_connections' own session


def open_connections(store: MetricsStore) -> int:
    """Connections open on the store right now, counted where they live: this process's handles on the
    SQLite file, or the server's sessions on the database (other than the one counting)."""
    if store.dialect == "sqlite":
        db = Path(store.path).resolve()
        fds = Path("/proc/self/fd")
        count = 0
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
                count += Path(os.readlink(fd)) == db
        return count
    import psycopg

    # The store's client sessions only: neither an autovacuum worker visiting the database nor an earlier
    # count's session whose backend is still exiting (a CI run under load once counted a third connection).
    with psycopg.connect(store.url, autocommit=True, application_name=COUNTER) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND application_name <> %s",
            (COUNTER,),
        ).fetchone()[0]


def in_thread(fn, *args):
    out = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)))
    thread.start()
    thread.join()
    return out[0]


def test_threads_that_end_hand_their_connection_to_the_next(store):
    run_id = store.create_run("r", {"a": 1})
    before = open_connections(store)
    # As a page refresh does (a new thread each time), without a garbage collection in between: before
    # the connections were handed on, each thread's stayed open until the collector found it (40 here).
    gc.disable()
    try:
        for _ in range(40):
            assert in_thread(store.get_run, run_id)["name"] == "r"
        assert open_connections(store) <= before + 1
    finally:
        gc.enable()
    assert store.get_run(run_id)["name"] == "r"


def test_threads_alive_together_never_share_a_connection(store):
    run_id = store.create_run("r", {"a": 1})
    barrier = threading.Barrier(4)
    seen, errors = [], []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            seen.append(id(store._conn()))
            barrier.wait(timeout=30)  # every thread holds its connection before any writes
            now = time.time()
            for step in range(1, 51):
                store.log_points([(run_id, f"k{i}", step, step / 50, float(step), now)])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(seen)) == 4
    assert all(store.count_points(run_id, f"k{i}") == 50 for i in range(4))


def test_a_connection_left_inside_a_transaction_is_not_handed_on(store):
    run_id = store.create_run("r", {"a": 1})

    def begin_and_end_thread():
        conn = store._conn()
        conn.execute("BEGIN")
        conn.execute("UPDATE runs SET note = ? WHERE id = ?", ("uncommitted", run_id))
        return conn

    # The object itself, not its id: the store closes that connection, and a new one could be given the
    # freed one's address (a CI run saw equal ids).
    left = in_thread(begin_and_end_thread)
    gc.collect()
    assert in_thread(store._conn) is not left
    # Its transaction was never committed: the update is not seen, and writers are not blocked by it.
    assert store.get_run(run_id).get("note") in (None, "")
    store.update_run(run_id, note="committed")
    assert store.get_run(run_id)["note"] == "committed"


def _child(store: MetricsStore, run_id: str, queue) -> None:
    try:
        store.update_run(run_id, note="from the child")
        queue.put(store.get_run(run_id)["note"])
    except BaseException as exc:  # noqa: BLE001 - sent back to the parent
        queue.put(repr(exc))


def test_a_forked_child_opens_its_own_connection(store):
    run_id = store.create_run("r", {"a": 1})
    parent_conn = store._conn()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(store, run_id, queue))
    child.start()
    assert queue.get(timeout=60) == "from the child"
    child.join(timeout=60)
    assert child.exitcode == 0
    # The parent's connection was neither used nor closed by the child.
    assert store._conn() is parent_conn
    assert store.get_run(run_id)["note"] == "from the child"


def test_every_sqlite_connection_keeps_a_small_page_cache(tmp_path):
    # The first connection, one a new thread opens and one a forked child opens all take the store's
    # setting (tracking/schema.py: a watching dashboard's readers re-read their pages after every commit of
    # the training, so a big cache only meant more allocations).
    from trainer_core.tracking.schema import PAGE_CACHE_KIB

    store = MetricsStore(f"sqlite:///{tmp_path / 'metrics.db'}")

    def page_cache() -> int:
        return store._conn().execute("PRAGMA cache_size").fetchone()[0]

    assert page_cache() == -PAGE_CACHE_KIB
    assert in_thread(page_cache) == -PAGE_CACHE_KIB
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=lambda: queue.put(page_cache()))
    child.start()
    assert queue.get(timeout=60) == -PAGE_CACHE_KIB
    child.join(timeout=60)
    store.close()


# --------------------------------------------------------------------------------------------------
# every read answers the same on both dialects (the live Run page's change check once spoke SQLite only)
# --------------------------------------------------------------------------------------------------


def _record(store: MetricsStore) -> dict[str, str]:
    """One history written the same way into a store: fixed ids and times, so answers can be compared."""
    t0 = 1_700_000_000.0
    main = store.create_run("main", {"lr": 2e-5}, run_id="run-main", created_at=t0)
    store.update_run(main, status="running", attempt=1, step=3000, epoch=1.5, started_at=t0 + 1,
                     train_began_at=t0 + 2, total_steps=6000, devices=json.dumps(["cpu"]))  # fmt: skip
    store.log_points(
        [(main, "loss", s, s / 2000, 1 / s, t0 + s) for s in range(1, 3001)]
        + [(main, "eval_f1", s, s / 2000, 0.5 + s / 10_000, t0 + s) for s in range(500, 3001, 500)]
        + [(main, "system/cpu_percent", s, None, 90.0 + s % 3, t0 + s) for s in range(10, 3001, 10)]
    )  # fmt: skip
    store.add_event(main, "launched", "started", {"pid": 1})
    store.request_stop(main)
    waiting = store.create_run("waiting", {}, run_id="run-waiting", created_at=t0 + 5, queue={"priority": 1})
    import optuna

    from trainer_core.sweeps.study import storage

    study = optuna.create_study(study_name="study", storage=storage(store.url), direction="maximize")
    study.enqueue_trial({"x": 1.0})
    study.tell(study.ask(), 0.5)  # one finished trial, as a sweep's driver records it
    store.create_sweep("sw-1", "sweep", "study", {"n": 2}, "running", parallel=1, n_trials=2)
    trial = store.create_run("trial", {}, run_id="run-trial", created_at=t0 + 6, trial=("sw-1", 0))
    return {"main": main, "waiting": waiting, "trial": trial}


def _answers(store: MetricsStore, ids: dict[str, str]) -> dict[str, object]:
    import socket

    main = ids["main"]

    def frame(df):
        return df.round(12).to_dict("list")

    def plain(value):
        # Times the store stamps itself (event and heartbeat times) differ between the two writes.
        drop = {"time", "created_at", "heartbeat_at", "last_event", "id"}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k not in drop}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {
        "get_run": plain(store.get_run(main)),
        "list_runs": [r["id"] for r in store.list_runs()],
        "runs_version": [row[:2] for row in store.runs_version()],
        "run_version": plain(store.run_version(main)),
        "series": frame(store.get_series(main, "loss")),
        "series_downsampled": frame(store.get_series(main, "loss", max_points=100)),
        "series_after": frame(store.get_series(main, "loss", after_step=2990)),
        "metrics": frame(store.get_metrics([main], ["loss", "eval_f1"], max_points=50)),
        "keys": (store.metric_keys(main), store.metric_keys(main, system=True)),
        "count": (store.count_points(main), store.count_points(main, "eval_f1")),
        "last": store.last_metrics(main),
        "best": store.best_metrics(main),
        "events": [(e["kind"], e["message"]) for e in store.events(main)],
        "has": (store.has_event(main, "launched"), store.has_run(main), store.has_any_run()),
        "stop_requested": store.stop_requested(main),
        "queue_state": plain(store.queue_state(socket.gethostname())),
        "sweeps": ([s["id"] for s in store.list_sweeps()], [row[:2] for row in store.sweeps_version()]),
        "sweep": (plain(store.get_sweep("sw-1")), [r["id"] for r in store.sweep_runs("sw-1")]),
        "sweep_counts": store.sweep_run_counts("sw-1"),
        "sweep_version": plain(store.sweep_version("sw-1")),
    }


def test_every_read_answers_the_same_on_sqlite_and_postgresql(tmp_path, pg_server):
    lite_store, pg_store = MetricsStore(tmp_path / "m.db"), MetricsStore(pg_server.new_database())
    try:
        lite, pg = _answers(lite_store, _record(lite_store)), _answers(pg_store, _record(pg_store))
    finally:
        lite_store.close()
        pg_store.close()
    for name in lite:
        assert lite[name] == pg[name], name
