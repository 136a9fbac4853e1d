"""Figures 1 and 2: what running through trainer_core costs, and that it changes no result.

The same run (pretrained MiniLM-L6, 800 training rows of the built-in reviews, 64 tokens, batch 16,
1 epoch, seed 42) is done (a) by ``bench/plain_trainer.py`` in its own process and (b) through
``Launcher.launch`` (worker process, StoreCallback, SQLite store), alternated A B A B ... so that a
change in the machine's load hits both sides alike. Each pair gives a ratio; the medians are reported.

Both sides pay process start-up, evaluate on the same 200 validation rows at the end of the epoch
and once more after training (the project's final ``predict``, the script's ``evaluate``), and save
one epoch checkpoint. The project also saves the final model and writes a predictions table: that is
in its wall time, and is what "launch to finished" shows beyond training itself.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import first_point_time, log, median, run_plain

# The run of the issue; the project's own defaults (eval and save every epoch, a log every 10 steps)
# are spelled out so that the plain script gets exactly the same TrainingArguments.
DATA = {"max_train_samples": 800, "max_eval_samples": 200, "max_seq_length": 64, "seed": 42}
TRAINING = {
    "per_device_train_batch_size": 16,
    "num_train_epochs": 1,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_steps": 10,
}
COMPARED = ("eval_loss", "eval_accuracy", "eval_f1")


def _cpu_s(who: int = resource.RUSAGE_CHILDREN) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _wait_reaped(pid: int, timeout_s: float = 60.0) -> None:
    # A child's CPU time is added to RUSAGE_CHILDREN only once it is reaped (the launcher's supervisor
    # thread does that right after the worker exits).
    import psutil

    deadline = time.monotonic() + timeout_s
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def plain_once(tmp: Path, data: dict[str, Any]) -> dict[str, Any]:
    settings = {**data, "max_length": data["max_seq_length"]}
    settings.pop("max_seq_length")
    cpu_before = _cpu_s()
    out = run_plain(
        "rotten-tomatoes",
        tmp / "plain.json",
        settings,
        {**TRAINING, "output_dir": str(tmp / "plain-out")},
        tmp / "plain.log",
    )
    t0, times = out["launched_at"], out["times"]
    return {
        "train_samples_per_second": out["train_metrics"]["train_samples_per_second"],
        "train_runtime_s": out["train_metrics"]["train_runtime"],
        "wall_s": times["finished"] - t0,
        "launch_to_train_begin_s": times["train_begin"] - t0,
        "launch_to_first_step_s": times["first_step"] - t0,
        "launch_to_first_log_s": times["first_log"] - t0,
        "cpu_s": _cpu_s() - cpu_before,
        "scores": {k: out["eval_metrics"][k] for k in COMPARED},
        "train_loss": out["train_metrics"]["train_loss"],
    }


def project_once(tmp: Path, data: dict[str, Any]) -> dict[str, Any]:
    from trainer_core import Launcher

    launcher = Launcher(home=tmp / "runs")
    config = {
        "model_name_or_path": "builtin:minilm-l6",
        "dataset_name": "builtin:rotten-tomatoes",
        **data,
        **TRAINING,
    }
    cpu_before, self_before = _cpu_s(), _cpu_s(resource.RUSAGE_SELF)
    t0 = time.time()
    run_id = launcher.launch(config)
    # launch() validates the config and previews the data in this process before spawning the worker.
    launch_cpu_s = _cpu_s(resource.RUSAGE_SELF) - self_before
    run = launcher.wait(run_id, poll_s=0.2)
    if run["status"] != "completed":
        raise RuntimeError(f"project run {run_id} {run['status']}: {run.get('error')}")
    _wait_reaped(run["pid"])
    summary = run["summary"]
    return {
        "train_samples_per_second": summary["train_samples_per_second"],
        "train_runtime_s": summary["train_runtime"],
        "wall_s": run["finished_at"] - t0,
        "launch_to_train_begin_s": run["train_began_at"] - t0,
        # The store keeps no per-step timestamp before the first log; the first logged point is step 10.
        "launch_to_first_step_s": None,
        "launch_to_first_log_s": first_point_time(launcher.store, run_id) - t0,
        "worker_start_s": run["started_at"] - t0,
        "launch_cpu_s": launch_cpu_s,
        "cpu_s": _cpu_s() - cpu_before + launch_cpu_s,
        "scores": {k: summary["final_metrics"][k] for k in COMPARED},
        "train_loss": summary["train_loss"],
    }


def measure(quick: bool = False, pairs: int = 3) -> dict[str, Any]:
    data = dict(DATA)
    if quick:
        data.update(max_train_samples=160, max_eval_samples=48)
        pairs = min(pairs, 1)
    plain_runs, project_runs = [], []
    for i in range(pairs):
        for side, fn, runs in (("plain", plain_once, plain_runs), ("project", project_once, project_runs)):
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-overhead-{side}-"))
            try:
                result = fn(tmp, data)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            runs.append(result)
            log(
                f"pair {i + 1}/{pairs} {side}: {result['train_samples_per_second']} samples/s, "
                f"wall {result['wall_s']:.1f} s, first log at {result['launch_to_first_log_s']:.1f} s, "
                f"scores {result['scores']}"
            )

    def ratios(key: str) -> list[float]:
        return [b[key] / a[key] for a, b in zip(plain_runs, project_runs, strict=True)]

    def medians(runs: list[dict], keys: tuple[str, ...]) -> dict[str, float | None]:
        return {k: median([r.get(k) for r in runs]) for k in keys}

    keys = (
        "train_samples_per_second",
        "train_runtime_s",
        "wall_s",
        "launch_to_train_begin_s",
        "launch_to_first_step_s",
        "launch_to_first_log_s",
        "cpu_s",
    )
    identical = [
        a["scores"] == b["scores"] and a["train_loss"] == b["train_loss"]
        for a, b in zip(plain_runs, project_runs, strict=True)
    ]
    return {
        "quick": quick,
        "pairs": pairs,
        "data": data,
        "training": TRAINING,
        "plain_runs": plain_runs,
        "project_runs": project_runs,
        "plain_median": medians(plain_runs, keys),
        "project_median": medians(project_runs, keys),
        "samples_per_second_ratios": ratios("train_samples_per_second"),
        "wall_ratios": ratios("wall_s"),
        "cpu_ratios": ratios("cpu_s"),
        "samples_per_second_ratio_median": median(ratios("train_samples_per_second")),
        "wall_ratio_median": median(ratios("wall_s")),
        "cpu_ratio_median": median(ratios("cpu_s")),
        "identical_scores": all(identical),
        "identical_per_pair": identical,
        "scores": project_runs[0]["scores"] if project_runs else None,
    }
