"""Runs on a real Ray cluster: a head and a second node on 127.0.0.1 (tests/ray_cluster.py), tiny-bert
trained by two Ray Train workers, one on each node, through Ray Jobs.

No mocks and no skips: a machine without Ray fails these tests. The cluster is started once per session
(~15 s) and each run pays Ray's start of its driver and workers (~60 s on two busy cores), so one run
makes several checks where that stays clear.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest
import yaml

from tests.conftest import tiny_config
from tests.test_cli import cli
from tests.test_launcher import wait_for
from trainer_core.config import config_from_dict
from trainer_core.errors import ConfigError
from trainer_core.runs import ray_jobs
from trainer_core.runs.ray_driver import ray_error_text
from trainer_core.runs.ray_executor import check_cluster_reach, where_it_runs
from trainer_core.tracking.status import COMPLETED, FAILED, QUEUED, RUNNING, STOPPED


def ray_config(cluster, **overrides) -> dict:
    # 160 rows, batch 8 on each of 2 workers: 10 steps an epoch.
    config = tiny_config(max_train_samples=160, per_device_train_batch_size=8, num_train_epochs=4)
    return {**config, "executor": "ray", "ray_address": cluster.address, "num_workers": 2, **overrides}


def workers(launcher, run_id) -> list[dict]:
    """The run's Ray Train workers as their events recorded them: rank, pid, node, per attempt."""
    return [e["data"] for e in launcher.store.events(run_id) if e["kind"] == "ray_worker"]


# -- without a cluster: the config's rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"executor": "slurm"}, "executor", "one of local, ray"),
        ({"num_workers": 2}, "num_workers", "set executor: ray"),
        ({"ray_address": "http://head:8265"}, "ray_address", "set executor: ray"),
        ({"executor": "ray", "num_processes": 2}, "num_processes", "set num_workers"),
        ({"executor": "ray", "num_workers": 0}, "num_workers", "greater than 0"),
        ({"executor": "ray", "resources_per_worker": {"GPU": 1}}, "resources_per_worker", "turn use_gpu on"),
        ({"executor": "ray", "resources_per_worker": {"CPU": -1}}, "resources_per_worker", "0 or more"),
        ({"executor": "ray", "use_gpu": True, "use_cpu": True}, "use_gpu", "contradict"),
        ({"executor": "ray", "storage_path": "s3://bucket/runs"}, "storage_path", "mounted at the same path"),
        ({"executor": "ray", "storage_path": "runs"}, "storage_path", "absolute path"),
    ],
)
def test_bad_ray_configs_are_refused_naming_the_field(extra, field, words):
    with pytest.raises(ConfigError) as info:
        config_from_dict(tiny_config(**extra))
    assert info.value.field == field and words in info.value.message, info.value


def test_a_ray_run_needs_an_address_that_answers(launcher, monkeypatch):
    monkeypatch.delenv(ray_jobs.ADDRESS_ENV, raising=False)
    with pytest.raises(ConfigError) as info:
        launcher.launch(tiny_config(executor="ray"), preflight=False)
    assert info.value.field == "ray_address" and ray_jobs.ADDRESS_ENV in info.value.message
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv(ray_jobs.ADDRESS_ENV, f"127.0.0.1:{port}")
    with pytest.raises(ConfigError) as info:
        launcher.launch(tiny_config(executor="ray"), preflight=False)
    assert info.value.field == "ray_address" and f"http://127.0.0.1:{port}" in info.value.message
    assert launcher.store.list_runs() == []  # nothing recorded, nothing started


def test_a_cluster_of_other_machines_needs_a_shared_store_and_folder():
    status = {
        "address": "http://head:8265",
        "this_machine": False,
        "nodes": [{"ip": "127.0.0.1", "alive": True}, {"ip": "203.0.113.7", "alive": True}],
    }
    config = config_from_dict(tiny_config(executor="ray", ray_address="http://head:8265"))
    with pytest.raises(ConfigError) as info:
        check_cluster_reach(status, "sqlite:////tmp/x/metrics.db", "/tmp/x/metrics.db", config)
    assert info.value.field == "TRAINER_CORE_DB" and "203.0.113.7" in info.value.message
    assert "PostgreSQL" in info.value.message
    with pytest.raises(ConfigError) as info:
        check_cluster_reach(status, "postgresql://u@db/runs", "db", config)
    assert info.value.field == "storage_path"
    shared = config_from_dict(tiny_config(executor="ray", storage_path="/mnt/shared/runs"))
    check_cluster_reach(status, "postgresql://u@db/runs", "db", shared)  # both reachable: accepted
    check_cluster_reach({**status, "this_machine": True}, "sqlite:////tmp/x.db", "/tmp/x.db", config)


# -- on the cluster ---------------------------------------------------------------------------------------


def test_cluster_status_shows_both_nodes(ray_cluster):
    status = ray_jobs.cluster_status(ray_cluster.address)
    assert len(status["nodes"]) == 2 and sum(n["is_head"] for n in status["nodes"]) == 1
    assert status["cpus"] == 2 and status["gpus"] == 0 and status["this_machine"]
    assert 0 <= status["free_cpus"] <= 2
    assert status["memory"] > 0 and 0 <= status["free_memory"] <= status["memory"]
    assert status["memory"] == sum(n["memory"] for n in status["nodes"])


def test_rays_error_text_keeps_its_reason_and_drops_its_tracebacks():
    # The shape of Ray Train's error for a lost worker (Ray 2.60, as seen in the killed-worker test):
    # rank 0's snippet (its traceback cut by Ray), then the lost worker's details and why it died.
    error = RuntimeError(
        "Training failed due to worker errors:\n"
        "[Rank 0 Error Snippet]:\n"
        "... (Output truncated. See individual worker logs for full details) ...\n"
        '  File "torch/autograd/graph.py", line 979, in _engine_run_backward\n'
        "    return Variable._execution_engine.run_backward(\n"
        "RuntimeError: [gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer.\n"
        "[Rank 1 Error Snippet]: A worker health check failed. Worker info: Worker(\n"
        "    actor=Actor(RayTrainWorker, ee54e2),\n"
        "    metadata=ActorMetadata(hostname='vm', node_ip='10.0.0.2', pid=12712),\n"
        "    distributed_context=DistributedContext(world_rank=1, world_size=2),\n"
        f"    log_file_path='/tmp/ray/session/logs/train/{'w' * 120}.log',\n"
        ")\n"
        "The actor died unexpectedly before finishing this task.\n"
        "\tclass_name: RayTrainWorker\n"
        "\tpid: 12712\n"
        f"The actor is dead because its worker process has died. {'Some common causes ... ' * 40}\n"
    )
    text = ray_error_text(error)
    assert "Worker(rank 1, pid 12712, on 10.0.0.2)" in text, text
    assert "The actor died unexpectedly before finishing this task." in text, text
    assert "The actor is dead because its worker process has died" in text, text
    assert "Connection reset by peer" in text and "File " not in text and "log_file_path" not in text
    assert "\n" not in text and len(text) < 1100, text
    assert len(ray_error_text(RuntimeError("x" * 5000))) < 1100


def test_two_workers_on_two_nodes_stop_and_resume(ray_cluster, launcher):
    began = time.monotonic()
    run_id = launcher.launch(ray_config(ray_cluster))
    run = launcher.store.get_run(run_id)
    assert run["ray_address"] == ray_cluster.address and run["ray_job_id"] == f"trainer-core-{run_id}-0"
    assert where_it_runs(run) == f"Ray cluster at {ray_cluster.address} · job trainer-core-{run_id}-0"
    # The run went to the cluster, not to this machine's queue: it holds no local slot and never waits.
    entries = launcher.run_queue.entries()
    assert [e for e in entries if e["position"] is not None] == [] and launcher.start_queued() == []
    if run["status"] == QUEUED:
        assert launcher.ray_wait_reason(run)
        # Listed with the queue (by the CLI's `queue` and the Runs page), as waiting for the cluster.
        (entry,) = [e for e in entries if e["id"] == run_id] or [launcher.run_queue.entry(run_id)]
        assert entry["on_ray"] and f"on the Ray cluster at {ray_cluster.address}" in entry["reason"]

    wait_for(
        lambda: (r := launcher.store.get_run(run_id))["status"] == RUNNING and (r["step"] or 0) >= 3,
        timeout=240,
        what="the Ray run to train",
    )
    first_steps_s = time.monotonic() - began
    placed = workers(launcher, run_id)
    assert sorted(w["rank"] for w in placed) == [0, 1]
    assert len({w["node_id"] for w in placed}) == 2, placed  # one worker on each node
    assert launcher.reconcile() == []  # a live Ray job is left alone

    # A graceful stop through the store: every rank leaves at one step, with one checkpoint.
    launcher.stop(run_id)
    run = launcher.wait(run_id, timeout=120)
    assert run["status"] == STOPPED, (run["error"], launcher.log_tail(run_id))
    stopped_at = max(c["step"] for c in launcher.checkpoints(run_id))
    assert 3 <= stopped_at < 40

    launcher.resume(run_id)
    run = launcher.store.get_run(run_id)
    assert run["attempt"] == 1 and run["ray_job_id"] == f"trainer-core-{run_id}-1"
    run = launcher.wait(run_id, timeout=300)
    assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id))
    steps = launcher.store.get_series(run_id, "loss")["step"].tolist()
    assert steps == list(range(1, 41))  # each step once: none lost, none repeated across the resume
    assert run["start_step"] == stopped_at
    assert launcher.store.get_series(run_id, "eval_accuracy")["epoch"].tolist() == [1.0, 2, 3, 4]
    # The files a local run leaves, in the run's folder: predictions and a loadable model.
    predictions = launcher.predictions(run_id)
    assert len(predictions) == run["summary"]["n_validation"] and set(predictions["label"]) <= {
        "fresh",
        "rotten",
    }
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(launcher.model_dir(run_id))
    assert model.config.num_labels == 2
    print(
        f"\nRay run: launch to step 3 in {first_steps_s:.1f} s, whole test {time.monotonic() - began:.1f} s"
    )


def test_a_killed_worker_fails_the_run_with_rays_reason(ray_cluster, runs_home, tmp_path):
    # Launched from the CLI, which exits at once: the run goes on in the cluster without it.
    config_file = tmp_path / "ray.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config(num_train_epochs=40)))
    out = cli(
        "launch",
        str(config_file),
        "--executor",
        "ray",
        "--ray-address",
        ray_cluster.address,
        "--num-workers",
        "2",
        home=runs_home,
    )
    run_id = out.stdout.strip()
    from trainer_core.runs.launcher import Launcher

    launcher = Launcher(home=runs_home)
    wait_for(
        lambda: (r := launcher.store.get_run(run_id))["status"] == RUNNING and (r["step"] or 0) >= 2,
        timeout=240,
        what="the Ray run to train",
    )
    head = next(n["node_id"] for n in ray_jobs.cluster_status(ray_cluster.address)["nodes"] if n["is_head"])
    (victim,) = [w for w in workers(launcher, run_id) if w["node_id"] != head]
    killed_at = time.monotonic()
    os.kill(victim["pid"], signal.SIGKILL)
    run = launcher.wait(run_id, timeout=60)
    took = time.monotonic() - killed_at
    assert run["status"] == FAILED, run
    assert "Ray" in run["error"] and ("died" in run["error"] or "SIGKILL" in run["error"]), (
        run["error"],
        (run["traceback"] or "")[-6000:],
    )
    assert took < 30, took
    # Ray's reason in one line, its indented parts kept (they once came out as "Worker( )").
    assert "( )" not in run["error"] and "Traceback" not in run["error"], run["error"]
    print(f"\nkilled worker -> failed run in {took:.1f} s: {run['error'][:300]}")
    shown = json.loads(cli("show", run_id, "--json", home=runs_home).stdout)
    assert shown["status"] == FAILED
