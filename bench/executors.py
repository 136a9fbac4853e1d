"""Figure: where a run trains, side by side. One MiniLM config trained by 1 local process, by 2 torchrun
processes (``num_processes: 2``) and by 2 Ray Train workers on a 2-node Ray cluster on this machine
(``executor: ray``), each measured from ``Launcher.launch`` to its first recorded step and for its
training speed; and the idle cluster's memory (RSS of its processes).

    python -m bench.executors [--quick]       # or: python -m bench.run --only executors

MiniLM (``builtin:minilm-l6``, 22M parameters), not tiny-bert: a tiny-bert step takes ~10 ms, so its
samples/s would measure only each executor's per-step overhead (gloo's all-reduce, Ray's reporting);
MiniLM's steps are the kind of work a user moves to several processes. The cluster is the one the tests
use (``tests/ray_cluster.py``: a head and a worker node on 127.0.0.1, one CPU each, started and stopped
here). Every training process has one intra-op thread (``bench.common``), so 1 process uses one of the
2 cores and 2 processes or workers use both.

Reported per executor: ``launch_to_first_step_s`` (launch to the first loss point's wall time: the
worker's or the job's start, imports, model and data loading), ``train_samples_per_second`` (the
Trainer's own, over its whole training loop), ``steady_samples_per_second`` (between the first and
last loss points: rows per step x steps / seconds, start-up left out) and ``launch_to_end_s``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import REPO, log, machine, save_result
from trainer_core import Launcher

CONFIG = {
    "model_name_or_path": "builtin:minilm-l6",
    "dataset_name": "builtin:rotten-tomatoes",
    "max_train_samples": 640,
    "max_eval_samples": 64,
    "max_seq_length": 64,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 16,
    "logging_steps": 1,
    "save_strategy": "no",
    "seed": 42,
}
QUICK = {"max_train_samples": 64, "max_eval_samples": 16, "max_seq_length": 32}
EXECUTORS = {
    "local_1_process": {},
    "torchrun_2_processes": {"num_processes": 2},
    "ray_2_workers": {"executor": "ray", "num_workers": 2},
}


def _processes(cluster) -> list[psutil.Process]:
    out = []
    for node in cluster.nodes:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(node.pid)
            out += [root, *root.children(recursive=True)]
    return out


def cluster_memory(cluster) -> dict[str, Any]:
    """RSS of every process of the cluster's nodes (raylets, GCS, dashboard, idle workers ...)."""
    rss, names = 0, {}
    for proc in _processes(cluster):
        with contextlib.suppress(psutil.Error):
            mem = proc.memory_info().rss
            rss += mem
            name = proc.name()
            names[name] = names.get(name, 0) + mem
    top = sorted(names.items(), key=lambda item: -item[1])[:6]
    return {
        "rss_mb": rss / 2**20,
        "processes": len(_processes(cluster)),
        "top_mb": {k: v / 2**20 for k, v in top},
    }


def one_run(launcher: Launcher, config: dict[str, Any], name: str) -> dict[str, Any]:
    began = time.time()
    run_id = launcher.launch(config, name=name, preflight=False)
    run = launcher.wait(run_id, timeout=1800)
    if run["status"] != "completed":
        raise RuntimeError(f"{name} ended {run['status']}: {run['error']}\n{launcher.log_tail(run_id)}")
    loss = launcher.store.get_series(run_id, "loss")
    workers = int(config.get("num_processes") or config.get("num_workers") or 1)
    rows_per_step = config["per_device_train_batch_size"] * workers
    steps, walls = loss["step"].tolist(), loss["wall_time"].tolist()
    steady = None
    if len(steps) > 1 and walls[-1] > walls[0]:
        steady = (steps[-1] - steps[0]) * rows_per_step / (walls[-1] - walls[0])
    summary = run["summary"] or {}
    return {
        "run_id": run_id,
        "workers": workers,
        "steps": summary.get("global_step"),
        "launch_to_first_step_s": walls[0] - began if walls else None,
        "launch_to_end_s": run["finished_at"] - began,
        "train_samples_per_second": summary.get("train_samples_per_second"),
        "train_runtime_s": summary.get("train_runtime"),
        "steady_samples_per_second": steady,
        "eval_accuracy": (summary.get("final_metrics") or {}).get("eval_accuracy"),
    }


def measure(quick: bool = False) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))  # tests/ray_cluster.py: the tests' own cluster helper
    from tests.ray_cluster import ray_cluster

    config = {**CONFIG, **(QUICK if quick else {})}
    result: dict[str, Any] = {"quick": quick, "config": config, "load_average_before": list(os.getloadavg())}
    home = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    try:
        launcher = Launcher(home=home)
        for name in ("local_1_process", "torchrun_2_processes"):
            log(f"executors figure: {name}")
            result[name] = one_run(launcher, {**config, **EXECUTORS[name]}, name)
            log(f"executors figure: {name}: {json.dumps(result[name], default=str)}")
        log("executors figure: starting a 2-node Ray cluster on 127.0.0.1")
        with ray_cluster() as cluster:
            os.environ.update(cluster.env)
            result["ray_cluster_start_s"] = cluster.started_in_s
            time.sleep(5)  # let the nodes' dashboards and agents finish starting before measuring them
            result["ray_idle_memory"] = cluster_memory(cluster)
            ray = {**config, **EXECUTORS["ray_2_workers"], "ray_address": cluster.address}
            log("executors figure: ray_2_workers")
            result["ray_2_workers"] = one_run(launcher, ray, "ray_2_workers")
            log(f"executors figure: ray_2_workers: {json.dumps(result['ray_2_workers'], default=str)}")
            result["ray_memory_after_a_run"] = cluster_memory(cluster)  # idle again, its workers kept
        result["load_average_after"] = list(os.getloadavg())
        return result
    finally:
        psutil.wait_procs(psutil.Process().children(), timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.executors", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: checks the figure, not its numbers"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    result = {"machine": machine(), **measure(quick=args.quick)}
    result["duration_s"] = time.monotonic() - started
    result["command"] = "python -m bench.executors" + (" --quick" if args.quick else "")
    path = save_result("executors", result)
    print(json.dumps(result, indent=1, default=str))
    log(f"raw numbers in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
