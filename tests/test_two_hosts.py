"""Two "hosts" on one PostgreSQL store: two launchers with different runs folders, real workers.

Each host keeps its own run folders; the runs, their live progress and stop requests go through the
shared store, so either host lists, shows and stops the other's runs, and claims from one queue never
hand one slot to both.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.conftest import tiny_config
from tests.test_cli import cli
from tests.test_launcher import wait_for
from trainer_core.runs.launcher import Launcher
from trainer_core.tracking.status import COMPLETED, QUEUED, RUNNING, STOPPED

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def _training(launcher: Launcher, run_id: str) -> bool:
    run = launcher.store.get_run(run_id)
    return run["status"] == RUNNING and (run["step"] or 0) >= 2


def test_two_launchers_with_their_own_homes_share_one_postgresql_store(pg_server, tmp_path, monkeypatch):
    url = pg_server.new_database()
    monkeypatch.setenv("TRAINER_CORE_DB", url)  # what the CLI and the dashboard below read
    homes = {"a": tmp_path / "host-a" / "runs", "b": tmp_path / "host-b" / "runs"}
    hosts = {name: Launcher(home=home, store_url=url) for name, home in homes.items()}
    config = tiny_config(num_train_epochs=40, max_train_samples=160, per_device_train_batch_size=8)
    runs = {name: launcher.launch(config, name=f"from-{name}") for name, launcher in hosts.items()}
    for name, run_id in runs.items():
        wait_for(
            lambda n=name, r=run_id: _training(hosts[n], r), timeout=180, what=f"host {name}'s run to train"
        )
    # Each run folder lives on the host that launched it.
    assert (homes["a"] / runs["a"]).is_dir() and not (homes["b"] / runs["a"]).exists()
    assert (homes["b"] / runs["b"]).is_dir() and not (homes["a"] / runs["b"]).exists()

    # Either host lists both runs, live, and neither host's reconcile takes the other's run for dead.
    for home in homes.values():
        listed = cli("list", home=home).stdout.splitlines()
        for run_id in runs.values():
            (line,) = [x for x in listed if x.startswith(run_id)]
            assert " running " in line, line
    assert hosts["a"].reconcile() == [] and hosts["b"].reconcile() == []
    step_before = hosts["b"].store.get_run(runs["a"])["step"]
    wait_for(lambda: hosts["b"].store.get_run(runs["a"])["step"] > step_before, what="live steps from a")

    # The dashboard on host b shows both hosts' runs.
    monkeypatch.setenv("TRAINER_CORE_HOME", str(homes["b"]))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(at.dataframe[0].value["Name"]) == ["from-a", "from-b"]

    # Host b stops host a's run: the request reaches a's worker through the store; it checkpoints.
    hosts["b"].stop(runs["a"])
    hosts["a"].stop(runs["b"])
    for name, run_id in runs.items():
        run = hosts[name].wait(run_id, timeout=120)
        assert run["status"] == STOPPED, run["error"]
        assert hosts[name].checkpoints(run_id), name

    # One queue, one slot, both hosts claiming at once: never two holders.
    store_a, store_b = hosts["a"].store, hosts["b"].store
    queue = [store_a.create_run(f"queued-{i}", {}, status=QUEUED) for i in range(10)]
    held: list[tuple[str, str, float, float]] = []

    def claim_all(host: str, store) -> None:
        while store.list_runs(statuses=[QUEUED]):
            ids = store.claim_runs([QUEUED], "claimed", max_holding=1)
            if ids:
                began = time.monotonic()
                time.sleep(0.02)
                held.append((host, ids[0], began, time.monotonic()))
                store.update_run(ids[0], status=COMPLETED)

    threads = [threading.Thread(target=claim_all, args=(h, s)) for h, s in (("a", store_a), ("b", store_b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(run_id for _, run_id, _, _ in held) == sorted(queue)
    spans = sorted((began, ended) for *_, began, ended in held)
    assert all(prev_end <= began for (_, prev_end), (began, _) in zip(spans, spans[1:], strict=False))
    assert {host for host, *_ in held} == {"a", "b"}  # both hosts got slots
