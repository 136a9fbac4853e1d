"""Figure 6: six MiniLM runs launched at once, with the queue against all at once (``queue=False``).

Both modes launch the same six runs back to back through ``Launcher.launch`` on this machine's own
inventory (1 slot on a 2-core machine, unless ``TRAINER_CORE_SLOTS`` says otherwise) and wait for all of
them. Reported per mode: the makespan (first launch to last finish), each run's own time (its worker's
start to its end: what a user waiting on that one run sees once it is running) and its time from launch
to end (queueing included).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import log, median
from trainer_core import Launcher

CONFIG = {
    "model_name_or_path": "builtin:minilm-l6",
    "dataset_name": "builtin:rotten-tomatoes",
    "max_train_samples": 400,
    "max_eval_samples": 100,
    "max_seq_length": 64,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 16,
    "save_strategy": "no",
    "seed": 42,
}
QUICK = {"max_train_samples": 32, "max_eval_samples": 16, "max_seq_length": 32}


def _one_mode(queue: bool, runs: int, config: dict[str, Any]) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"bench-queue-{'queue' if queue else 'all'}-"))
    try:
        launcher = Launcher(home=home)
        began = time.time()
        ids = [launcher.launch(config, name=f"r{i}", preflight=False, queue=queue) for i in range(runs)]
        finished = [launcher.wait(run_id) for run_id in ids]
        failed = [r["error"] for r in finished if r["status"] != "completed"]
        if failed:
            raise RuntimeError(f"{len(failed)} run(s) did not complete: {failed[0]}")
        own = [r["finished_at"] - r["started_at"] for r in finished]
        total = [r["finished_at"] - r["created_at"] for r in finished]
        return {
            "slots": launcher.run_queue.inventory.describe(),
            "makespan_s": max(r["finished_at"] for r in finished) - began,
            "own_s": own,
            "launch_to_end_s": total,
            "own_median_s": median(own),
            "launch_to_end_median_s": median(total),
            "eval_accuracy": [r["summary"]["final_metrics"].get("eval_accuracy") for r in finished],
        }
    finally:
        # The workers record their own end, then exit: let them (and the supervisor threads watching
        # them) finish before their store goes.
        psutil.wait_procs(psutil.Process().children(), timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def measure(quick: bool = False, runs: int = 6) -> dict[str, Any]:
    config = {**CONFIG, **(QUICK if quick else {})}
    if quick:
        runs = min(runs, 3)
    result: dict[str, Any] = {"quick": quick, "runs": runs, "config": config}
    # All at once first: if the machine gets busier as the figure goes, that favours the old behaviour.
    for name, queue in (("all_at_once", False), ("queue", True)):
        log(f"queue figure: {runs} runs, {name.replace('_', ' ')}")
        result[name] = _one_mode(queue, runs, config)
        log(f"queue figure: {name} makespan {result[name]['makespan_s']:.0f} s")
    result["makespan_ratio"] = result["queue"]["makespan_s"] / result["all_at_once"]["makespan_s"]
    result["own_ratio"] = result["queue"]["own_median_s"] / result["all_at_once"]["own_median_s"]
    return result
