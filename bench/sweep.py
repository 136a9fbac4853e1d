"""The MRPC sweep (examples/mrpc-sweep.yaml, MiniLM-L6) against the course recipe on the same model.

    python -m bench.sweep --parallel 1      # about two hours on 2 CPU cores; run it in the background
    python -m bench.sweep --parallel 2      # the same sweep, two trials at a time: its makespan
    python -m bench.sweep --quick           # the tiny-BERT smoke sweep, to check this script (a minute)

Records the best trial's dev accuracy and F1 (its final model, on the whole dev set), its settings,
the wall time from creating the sweep to its last trial's end (the makespan), how many trials completed,
were pruned or failed, and each trial's duration, in ``bench/results/sweep-p<N>.json``. The recipe's
scores are BENCHMARKS.md's figure 3 (examples/mrpc.yaml through the project: the full training set).

Same seed, sampler seed and spec for both ``--parallel`` values. With two at a time TPE asks for the
second trial before the first is told, so the two sweeps may try different points after the enqueued
first one: their scores can differ, their makespans compare the cost of the same number of trials.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, log, machine, save_result

# Figure 3 of BENCHMARKS.md: the course recipe (examples/mrpc.yaml) on MiniLM-L6 through the project.
RECIPE = {"model": "builtin:minilm-l6", "eval_accuracy": 0.7892, "eval_f1": 0.8586, "wall_s": 2932}


def measure(
    parallel: int, quick: bool = False, keep: bool = False, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    # Both settings use the whole machine: one trial gets every core, two share them (bench/common.py
    # sets one thread per process for the overhead figures; a makespan must not handicap the serial run).
    threads = os.environ.get("BENCH_TRAINING_THREADS") or str(max(1, (os.cpu_count() or 1) // parallel))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads
    os.environ["TRAINER_CORE_SLOTS"] = str(parallel)  # this many trials train at once, whatever the cores
    from trainer_core import Launcher, Sweeps, load_sweep_spec

    spec = load_sweep_spec(REPO / "examples" / ("sweep-smoke.yaml" if quick else "mrpc-sweep.yaml"))
    # A smaller sweep on a busy machine (--train-rows/--epochs): recorded in the result's spec.
    spec = dataclasses.replace(spec, parallel=parallel, base={**spec.base, **(overrides or {})})
    home = Path(tempfile.mkdtemp(prefix=f"bench-sweep-p{parallel}-"))
    launcher = Launcher(home=home / "runs")
    sweeps = Sweeps(launcher)
    log(
        f"sweep {spec.name!r}: {spec.n_trials} trials, {parallel} at a time, {threads} thread(s) each, in {home}"
    )
    started = time.time()
    sweep_id = sweeps.create(spec)
    sweep = sweeps.wait(sweep_id, poll_s=5.0)
    detail = sweeps.get(sweep_id)
    runs = {r["trial_number"]: r for r in launcher.store.sweep_runs(sweep_id)}
    ended = max((r["finished_at"] or started) for r in runs.values()) if runs else time.time()
    trials = [
        {
            "number": t["number"],
            "status": t["status"],
            "params": t["params"],
            "value": t["value"],
            "duration_s": t["duration_s"],
            "epochs_evaluated": len(t["intermediate"]),
        }
        for t in detail["trials"]
    ]
    best = detail["best"]
    best_final = ((runs[best["number"]].get("summary") or {}).get("final_metrics") or {}) if best else {}
    statuses = [t["status"] for t in trials]
    result = {
        "quick": quick,
        "parallel": parallel,
        "threads_per_trial": int(threads),
        "spec": spec.to_dict(),
        "sweep_status": sweep["status"],
        "makespan_s": ended - started,
        "trials": trials,
        "completed": statuses.count("completed"),
        "pruned": statuses.count("pruned"),
        "failed": statuses.count("failed"),
        "best": {
            "trial": best["number"] if best else None,
            "params": best["params"] if best else None,
            "eval_accuracy": best_final.get("eval_accuracy"),
            "eval_f1": best_final.get("eval_f1"),
            "n_train": (runs[best["number"]].get("summary") or {}).get("n_train") if best else None,
        },
        "recipe": RECIPE,
        "machine": machine(),
    }
    log(
        f"sweep done in {result['makespan_s']:.0f} s: {result['completed']} completed, {result['pruned']} pruned, "
        f"{result['failed']} failed; best trial {result['best']['trial']} acc {result['best']['eval_accuracy']} "
        f"f1 {result['best']['eval_f1']} ({result['best']['params']}); recipe acc {RECIPE['eval_accuracy']} "
        f"f1 {RECIPE['eval_f1']}"
    )
    if not keep:
        shutil.rmtree(home, ignore_errors=True)  # every trial keeps checkpoints and a model
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parallel", type=int, choices=(1, 2), default=1, help="trials at a time")
    parser.add_argument(
        "--quick", action="store_true", help="the tiny-BERT smoke sweep instead (checks the script)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the runs folder (printed at the start)")
    parser.add_argument("--train-rows", type=int, help="each trial's training rows (max_train_samples)")
    parser.add_argument("--epochs", type=float, help="each trial's num_train_epochs")
    parser.add_argument("--eval-rows", type=int, help="each trial's dev rows (max_eval_samples)")
    args = parser.parse_args(argv)
    overrides = {
        key: value
        for key, value in (
            ("max_train_samples", args.train_rows),
            ("num_train_epochs", args.epochs),
            ("max_eval_samples", args.eval_rows),
        )
        if value is not None
    }
    result = measure(args.parallel, quick=args.quick, keep=args.keep, overrides=overrides)
    path = save_result(f"sweep-p{args.parallel}", result)
    log(f"saved {path}")
    return 0 if result["sweep_status"] == "completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
