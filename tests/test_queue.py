"""The run queue: real worker processes on a real store, slots from a given inventory, no daemon."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from tests.conftest import REPO, tiny_config
from tests.test_cli import cli
from tests.test_launcher import wait_for
from trainer_core.errors import ConfigError, RunStateError
from trainer_core.runs.devices import DeviceInventory, visible_devices
from trainer_core.runs.launcher import Launcher
from trainer_core.runs.queue import reordered, why_waiting
from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED, FAILED, QUEUED, RUNNING, STOPPED
from trainer_core.tracking.store import MetricsStore

# A few steps: the worker's start (imports, data, model) is most of a run's time.
SHORT = {"max_train_samples": 32, "max_eval_samples": 16, "num_train_epochs": 1}
LONG = {"num_train_epochs": 200}  # trains until stopped or deleted


def holders(store: MetricsStore) -> list[str]:
    """Ids of the active runs that hold devices (their slot is taken)."""
    return [r["id"] for r in store.list_runs(statuses=ACTIVE_STATUSES) if r["devices"] is not None]


def waiting_ids(launcher: Launcher) -> list[str]:
    return [e["id"] for e in launcher.run_queue.entries()]


# -- the rules, without processes --------------------------------------------------------------------


def test_slots_come_from_the_inventory():
    cpu = DeviceInventory(cpu_slots=2)
    assert (
        cpu.fit(0, []) == ["cpu"]
        and cpu.fit(0, [["cpu"]]) == ["cpu"]
        and cpu.fit(0, [["cpu"], ["cpu"]]) is None
    )
    gpus = DeviceInventory(cpu_slots=1, gpus=(0, 1))
    assert gpus.default_gpus() == 1 and cpu.default_gpus() == 0
    assert gpus.fit(1, [["cuda:0"]]) == ["cuda:1"] and gpus.fit(2, [["cuda:0"]]) is None
    assert gpus.fit(2, []) == ["cuda:0", "cuda:1"] and visible_devices(["cuda:0", "cuda:1"]) == "0,1"
    assert visible_devices(["cpu"]) == ""  # a CPU run on a GPU machine sees no GPU
    # All at once (queue=False) over-fills, preferring a free GPU.
    assert gpus.overfill(1, [["cuda:0"]]) == ["cuda:1"] and gpus.overfill(1, [["cuda:0"], ["cuda:1"]]) == [
        "cuda:0"
    ]
    with pytest.raises(ConfigError) as info:
        gpus.check_request(3)
    assert info.value.field == "num_gpus" and "has 2 GPUs" in info.value.message
    with pytest.raises(ConfigError, match="no GPU"):
        cpu.check_request(1)


def test_inventory_from_the_environment():
    assert DeviceInventory.detect({"TRAINER_CORE_SLOTS": "3", "TRAINER_CORE_GPUS": "0,2"}) == DeviceInventory(
        3, (0, 2)
    )
    derived = DeviceInventory.detect({"TRAINER_CORE_GPUS": ""})
    assert derived.gpus == () and derived.cpu_slots == max(1, os.cpu_count() // 4)
    for env, field in (
        ({"TRAINER_CORE_SLOTS": "two"}, "TRAINER_CORE_SLOTS"),
        ({"TRAINER_CORE_SLOTS": "0"}, "TRAINER_CORE_SLOTS"),
        ({"TRAINER_CORE_GPUS": "a,b"}, "TRAINER_CORE_GPUS"),
    ):
        with pytest.raises(ConfigError) as info:
            DeviceInventory.detect({"TRAINER_CORE_GPUS": "", **env})
        assert info.value.field == field
    inventory = DeviceInventory(2, (0, 1))
    assert DeviceInventory.detect(inventory.to_env()) == inventory  # what a worker inherits


def test_moves_and_priorities_reorder_the_queue():
    waiting = [{"id": i, "priority": p} for i, p in (("a", 5), ("b", 0), ("c", 0), ("d", 0))]
    ids = lambda order: [i for i, _ in order]  # noqa: E731
    assert ids(reordered(waiting, "c", "up")) == ["a", "c", "b", "d"]
    assert reordered(waiting, "b", "top")[0] == ("b", 5)  # past a higher priority: takes it
    assert ids(reordered(waiting, "a", "down")) == ["b", "a", "c", "d"] and reordered(waiting, "a", "down")[
        1
    ] == ("a", 0)
    assert ids(reordered(waiting, "b", "bottom")) == ["a", "c", "d", "b"]
    assert ids(reordered(waiting, "d", priority=9)) == ["d", "a", "b", "c"]
    assert reordered(waiting, "a", "up") == [(r["id"], r["priority"]) for r in waiting]
    with pytest.raises(RunStateError, match="not waiting"):
        reordered(waiting, "zz", "up")
    entries = why_waiting(
        [{"id": "x", "num_gpus": 1}, {"id": "y", "num_gpus": 2}, {"id": "z", "num_gpus": 1}],
        [["cuda:0"]],
        DeviceInventory(1, (0,)),
    )
    assert [(e["position"], e["reason"]) for e in entries] == [
        (1, "waiting for a GPU"),
        (2, "1 ahead"),
        (3, "2 ahead"),
    ]


@pytest.mark.both_stores
def test_claims_from_many_processes_never_overfill(store_url):
    # Six processes, each queueing a run and claiming slots at the same moment, against 2 slots.
    url = store_url
    MetricsStore(url).close()
    script = (
        "import sys, time\n"
        "from trainer_core.runs.devices import DeviceInventory\n"
        "from trainer_core.runs.queue import RunQueue\n"
        "from trainer_core.tracking.store import MetricsStore\n"
        "store = MetricsStore(sys.argv[1])\n"
        "store.create_run(sys.argv[2], {}, queue={'priority': 0, 'num_gpus': 0})\n"
        "while time.time() < float(sys.argv[3]): time.sleep(0.001)\n"
        "print(len(RunQueue(store, DeviceInventory(cpu_slots=2)).start_what_fits(lambda run: None)))\n"
    )
    start = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, f"r{i}", str(start)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    store = MetricsStore(url)
    assert len(holders(store)) == 2 and sum(int(o) for o in outputs) == 2, outputs
    assert len(store.queue_state(socket.gethostname())[0]) == 4


# -- real workers --------------------------------------------------------------------------------


def write_config(path, **overrides):
    path.write_text(yaml.safe_dump(tiny_config(**overrides)))
    return str(path)


def launch_and_exit(home, *configs) -> list[str]:
    """Launch runs from a process that exits at once (as the CLI does): it leaves no supervisor."""
    script = (
        "import json, sys\n"
        "from trainer_core.runs.launcher import Launcher\n"
        "launcher = Launcher(home=sys.argv[1])\n"
        "print(' '.join(launcher.launch(c, preflight=False) for c in json.loads(sys.argv[2])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(home), json.dumps(configs)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.split()


def test_one_slot_queues_in_order_and_each_end_starts_the_next(runs_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINER_CORE_SLOTS", "1")
    monkeypatch.setenv("TRAINER_CORE_GPUS", "")
    first, q0, q1 = launch_and_exit(
        runs_home, tiny_config(**LONG), tiny_config(**SHORT), tiny_config(**SHORT)
    )
    q2 = cli(
        "launch", write_config(tmp_path / "c.yaml", **SHORT), "--priority", "5", home=runs_home
    ).stdout.strip()
    launcher = Launcher(home=runs_home)
    assert holders(launcher.store) == [first] and waiting_ids(launcher) == [q2, q0, q1]
    launcher.run_queue.move(q0, "down")
    listing = cli("queue", home=runs_home).stdout
    assert waiting_ids(launcher) == [q2, q1, q0]
    assert "waiting for a free slot (1 of 1 in use)" in listing and "2 ahead" in listing, listing
    cli("queue", "cancel", q1, home=runs_home)
    assert launcher.store.get_run(q1)["status"] == STOPPED and waiting_ids(launcher) == [q2, q0]
    with pytest.raises(RunStateError, match="waiting in the queue"):
        launcher.resume(q0)
    launcher.resume(q1)  # a cancelled run goes back in, at the end
    assert waiting_ids(launcher) == [q2, q0, q1]
    launcher.delete(q1)

    wait_for(lambda: launcher.store.get_run(first)["status"] == RUNNING, what="the first run to train")
    MetricsStore(launcher.store_url).request_stop(first)  # as another process would; no launcher acts
    # From here the store alone is watched (the Launcher above started no worker): workers start each other.
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    order, seen = [q2, q0], []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        held = holders(store)
        assert len(held) <= 1, held
        seen += [h for h in held if h not in seen]
        if all(store.get_run(i)["status"] not in ACTIVE_STATUSES for i in order):
            break
        time.sleep(0.05)
    assert store.get_run(first)["status"] == STOPPED
    assert [store.get_run(i)["status"] for i in order] == [COMPLETED] * 2, [
        store.get_run(i)["error"] for i in order
    ]
    assert seen == [first, *order] or seen == order  # the first may have been seen before the loop


@pytest.mark.both_stores
def test_stop_and_delete_of_a_queued_run(runs_home):
    launcher = Launcher(home=runs_home, inventory=DeviceInventory(cpu_slots=1))
    busy = launcher.launch(tiny_config(**LONG), preflight=False)
    stopped, deleted = (launcher.launch(tiny_config(**SHORT), preflight=False) for _ in range(2))
    launcher.stop(stopped)  # never started: out of the queue at once, no worker involved
    run = launcher.store.get_run(stopped)
    assert run["status"] == STOPPED and run["pid"] is None and launcher.resume_plan(stopped)["step"] == 0
    launcher.delete(deleted)
    assert not launcher.store.has_run(deleted) and waiting_ids(launcher) == []
    launcher.delete(busy)


def test_a_sigkilled_worker_frees_its_slot_for_a_new_launcher(runs_home, tmp_path, monkeypatch):
    # CLI launches leave no supervisor; the worker is killed without a word; a new Launcher (a
    # dashboard opened after a restart) finds the dead run, fails it and starts the next one.
    monkeypatch.setenv("TRAINER_CORE_SLOTS", "1")
    monkeypatch.setenv("TRAINER_CORE_GPUS", "")
    victim, heir = launch_and_exit(runs_home, tiny_config(**LONG), tiny_config(**LONG))
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    pid = wait_for(
        lambda: store.get_run(victim)["status"] == RUNNING and store.get_run(victim)["pid"], what="start"
    )
    os.killpg(pid, signal.SIGKILL)
    time.sleep(1)
    assert (
        store.get_run(heir)["status"] == QUEUED and store.get_run(heir)["devices"] is None
    )  # nobody knows yet
    launcher = Launcher(home=runs_home)
    assert launcher.reconcile() == [victim]
    assert store.get_run(victim)["status"] == FAILED and holders(store) == [heir]
    wait_for(lambda: store.get_run(heir)["status"] == RUNNING, what="the next run's worker")
    launcher.delete(heir)


def test_gpus_asked_and_given_reach_the_worker(runs_home):
    # A fake 2-GPU machine: the worker gets CUDA_VISIBLE_DEVICES as on a real one, and trains on the CPU.
    launcher = Launcher(home=runs_home, inventory=DeviceInventory(cpu_slots=1, gpus=(0, 1)))
    both = launcher.launch(tiny_config(**LONG), preflight=False, num_gpus=2)
    one = launcher.launch(tiny_config(**LONG), preflight=False)  # asks 1 by default on a GPU machine
    assert launcher.run_queue.entry(one)["reason"] == "waiting for a GPU"
    assert launcher.run_queue.forecast(num_gpus=0) == "queued: 1 ahead, waiting for a GPU"
    with pytest.raises(ConfigError, match="num_gpus"):
        launcher.launch(tiny_config(), preflight=False, num_gpus=3)

    def seen_by_worker(run_id):
        return next((e["data"] for e in launcher.store.events(run_id) if e["kind"] == "worker_start"), None)

    assert wait_for(lambda: seen_by_worker(both), what="worker start") == {"CUDA_VISIBLE_DEVICES": "0,1"}
    launcher.delete(both)
    assert launcher.store.get_run(one)["devices"] == ["cuda:0"]
    assert wait_for(lambda: seen_by_worker(one), what="worker start") == {"CUDA_VISIBLE_DEVICES": "0"}
    launcher.delete(one)


# -- the dashboard ---------------------------------------------------------------------------------


def test_dashboard_shows_the_queue_and_moves_a_run(runs_home, monkeypatch):
    from tests.test_dashboard_app import button, open_page, texts

    monkeypatch.setenv("TRAINER_CORE_SLOTS", "1")
    monkeypatch.setenv("TRAINER_CORE_GPUS", "")
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    # One run holds the only slot (its worker is fiction: a heartbeat in the future keeps it alive).
    busy = store.create_run("busy", tiny_config(), run_dir=str(runs_home / "busy"), status=RUNNING)
    store.update_run(busy, devices=["cpu"], heartbeat_at=time.time() + 3600)
    (runs_home / "busy").mkdir()
    (runs_home / "busy" / "train.log").write_text("")
    a, b = (
        store.create_run(n, tiny_config(), queue={"priority": 0, "num_gpus": 0}) for n in ("alpha", "beta")
    )

    at = open_page()
    assert "1** training · 2 queued" in texts(at.sidebar.caption)
    shown = texts(at.markdown) + texts(at.caption)
    assert "**#2**" in shown and "waiting for a free slot (1 of 1 in use)" in shown and "1 ahead" in shown
    button(at, f"queue.up.{b}").click().run()
    assert [e["id"] for e in Launcher(home=runs_home).run_queue.entries()] == [b, a]
    button(at, f"queue.cancel.{a}").click().run()
    assert store.get_run(a)["status"] == STOPPED
    at = open_page("views/new_run.py")
    assert "Queued: 1 ahead, waiting for a free slot (1 of 1 in use)." in texts(at.caption)
