"""The engine's device scheduling on a real GPU (issue 11): one script, run once on a lent GPU machine.

    python3 -m bench.gpu_check --out DIR [--allow-cpu] [--budget-s 270]

Trains ``builtin:tiny-bert`` for real, through the public ``Launcher`` (and the CLI for one refusal), on
whatever GPUs torch sees, and checks:

  a. inventory   the engine's device inventory is torch's GPUs (count, names, memory);
  b. queue       with every GPU taken, one more run waits "for a GPU" and starts by itself, on a freed
                 GPU, when a run ends (nobody reconciles meanwhile: the ending worker starts it);
  c. isolation   each worker saw ``CUDA_VISIBLE_DEVICES`` = exactly the GPU it was given, and the
                 Trainer trained on cuda (the run's ``train_begin`` event);
  d. refusal     a run asking for more GPUs than there are is refused before anything is recorded
                 (API and CLI), and so is one with more processes than GPUs;
  e. bf16        a bf16 run trains on the GPU with a finite loss and learns the task;
  f. speed       samples/s of the same run: fp32 and bf16 on the GPU, and on the CPU for scale.

Each check prints PASS, FAIL or SKIP with its evidence; everything goes to ``DIR/gpu_check.json`` (with
the run logs under ``DIR/logs/``). Exit 0 only if every check passed; on a machine without a GPU the GPU
parts are skipped, said so, and the exit is 0 only with ``--allow-cpu`` (a dry run). A watchdog ends the
script (and the workers it started) at ``--budget-s`` plus a margin, whatever hangs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# Offline and quiet before any Hugging Face import; the workers inherit these.
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from bench import gpu_runs  # noqa: E402
from bench.gpu_runs import (  # noqa: E402
    end_children,
    evidence,
    finish_runs,
    stop_active,
    tiny_run,
    wait_final,
    wait_started,
    write_dataset,
)

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
# Printed by the check's own process: where every package came from (the wheels under /tmp/site there).
VERSIONED = ("torch", "transformers", "accelerate", "huggingface_hub", "tokenizers", "safetensors")
VERSIONED += ("datasets", "evaluate", "sklearn", "scipy", "numpy", "pandas", "pyarrow", "fsspec")
# Beyond the budget, the watchdog's margin to write what it has and end the workers.
WATCHDOG_MARGIN_S = 30.0


class Check:
    """The results so far, printed as they come and written to ``gpu_check.json`` at the end."""

    def __init__(self, out: Path, allow_cpu: bool):
        self.out = out
        self.allow_cpu = allow_cpu
        self.report: dict[str, Any] = {"checks": [], "runs": {}}
        self.lock = threading.Lock()
        self.launcher = None  # set once there is one: the watchdog stops its runs

    def record(self, name: str, verdict: str, evidence: Any, why: str = "") -> bool:
        with self.lock:
            self.report["checks"].append({"check": name, "result": verdict, "why": why, "evidence": evidence})
        print(f"{verdict} {name}: {why}".rstrip(": "), flush=True)
        print("     evidence: " + json.dumps(evidence, default=str), flush=True)
        return verdict == PASS

    def verdict(self, name: str, conditions: dict[str, bool], evidence: Any, why: str) -> bool:
        """PASS if every named condition holds, else FAIL naming those that do not."""
        failed = [label for label, held in conditions.items() if not held]
        if failed:
            why = f"{why} -- NOT MET: {'; '.join(failed)}"
        return self.record(name, FAIL if failed else PASS, evidence, why)

    def exit_code(self) -> int:
        results = [c["result"] for c in self.report["checks"]]
        if FAIL in results or not results:
            return 1
        return 0 if SKIP not in results or self.allow_cpu else 2

    def write(self, exit_code: int | None = None) -> Path:
        with self.lock:
            self.report["exit_code"] = self.exit_code() if exit_code is None else exit_code
            path = self.out / "gpu_check.json"
            path.write_text(json.dumps(self.report, indent=1, default=str), encoding="utf-8")
        return path


def environment() -> dict[str, Any]:
    """Python, the packages (version and folder) and the variables that decide devices."""
    import importlib

    packages = {}
    for name in VERSIONED:
        try:
            module = importlib.import_module(name)
            packages[name] = {
                "version": getattr(module, "__version__", "?"),
                "at": str(Path(module.__file__).parent),
            }
        except Exception as exc:  # noqa: BLE001 - a missing package is itself the evidence
            packages[name] = {"error": f"{type(exc).__name__}: {exc}"}
    keep = ("CUDA_VISIBLE_DEVICES", "TRAINER_CORE_GPUS", "TRAINER_CORE_SLOTS", "PYTHONPATH", "HF_HOME")
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "cores": os.cpu_count(),
        "packages": packages,
        "env": {k: os.environ.get(k) for k in keep},
    }


def print_environment(env: dict[str, Any]) -> None:
    print(f"python {env['python']} at {env['executable']}, {env['cores']} cores; {env['env']}")
    for name, package in env["packages"].items():
        print(f"  {name:16} {package.get('version', ''):14} {package.get('at') or package.get('error')}")


def check_inventory(check: Check, launcher) -> tuple[int, ...]:
    """(a) The inventory the launcher schedules on, against torch's own view; returns its GPU ids."""
    import torch

    inventory = launcher.run_queue.inventory
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    gpus = [
        {
            "index": i,
            "name": p.name,
            "memory_gib": round(p.total_memory / 2**30, 1),
            "capability": f"{p.major}.{p.minor}",
        }
        for i, p in ((i, torch.cuda.get_device_properties(i)) for i in range(count))
    ]
    shown = {
        "inventory": inventory.describe(),
        "inventory_gpus": list(inventory.gpus),
        "torch_cuda": torch.version.cuda,
        "torch_device_count": count,
        "gpus": gpus,
    }
    if not count:
        check.record("a. inventory", SKIP, shown, "no GPU visible to torch: the GPU checks are skipped")
        return ()
    conditions = {"the engine's inventory has torch's GPU count": len(inventory.gpus) == count}
    check.verdict("a. inventory", conditions, shown, f"the engine sees {count} GPU(s) as torch does")
    return tuple(inventory.gpus)


def check_queue(
    check: Check, launcher, data: tuple[Path, Path], gpus: tuple[int, ...], deadline: float
) -> dict:
    """(b) Fill every slot, launch one more (bf16 on a GPU machine), and watch it wait, then start."""
    store = launcher.store
    fillers = [
        launcher.launch(tiny_run(*data, run_name=f"fp32-{i}"), preflight=i == 0)
        for i in range(max(len(gpus), 1))
    ]
    started = {r: wait_started(store, r, min(deadline, time.monotonic() + 30)) for r in fillers}
    last = tiny_run(*data, run_name="bf16" if gpus else "queued", **({"bf16": True} if gpus else {}))
    waiting_id = launcher.launch(last, preflight=False)
    entry = launcher.run_queue.entry(waiting_id)
    shown = {
        "started_at_once": {r: (s or {}).get("data") for r, s in started.items()},
        "queued_run": waiting_id,
        "queue_entry": {k: (entry or {}).get(k) for k in ("position", "reason")},
    }
    wanted = "waiting for a GPU" if gpus else "waiting for a free slot"
    reason = (entry or {}).get("reason") or ""
    all_started = all(started.values())
    ended = wait_final(store, [*fillers, waiting_id], deadline)
    runs = {r: evidence(store, r) for r in [*fillers, waiting_id]}
    last_run = runs[waiting_id]
    first_end = min((runs[r]["ended_at"] or float("inf")) for r in fillers)
    freed = [d for r in fillers for d in (runs[r]["devices"] or [])]
    shown |= {
        "first_filler_ended_at": first_end,
        "queued_run_slot_at": last_run["slot_at"],
        "queued_run_devices": last_run["devices"],
        "statuses": {r: e["status"] for r, e in runs.items()},
    }
    started_after = last_run["slot_at"] is not None and last_run["slot_at"] >= first_end - 1.0
    conditions = {
        f"the first {len(fillers)} run(s) got devices at launch": all_started,
        f"the next one waits: {wanted!r}": reason.startswith(wanted),
        "every run ended within the budget": ended,
        # Store times written by two processes of one machine: a second of slack for clock reads.
        "the queued run started only once a run had ended": started_after,
        "the queued run got a freed device": set(last_run["devices"] or []) <= set(freed),
        "every run completed": all(e["status"] == "completed" for e in runs.values()),
    }
    why = f"{len(fillers)} run(s) fill the slots; one more waits and starts by itself when one ends"
    if not gpus:
        why += " (CPU slots: the GPU wording is not checked here)"
    check.verdict("b. queue", conditions, shown, why)
    return {"fillers": fillers, "queued": waiting_id, "runs": runs}


def check_isolation(check: Check, runs: dict[str, dict], gpus: tuple[int, ...]) -> None:
    """(c) Each worker saw only its own GPU and the Trainer put the model on cuda."""
    rows, conditions = {}, {}
    expected_device = "cuda" if gpus else "cpu"
    for run_id, ev in runs.items():
        given = [d.split(":", 1)[1] for d in ev["devices"] or [] if d.startswith("cuda:")]
        name = ev["name"]
        conditions[f"{name}: CUDA_VISIBLE_DEVICES is {','.join(given)!r}"] = (
            ev["cuda_visible_devices"] or ""
        ) == ",".join(given)
        conditions[f"{name}: trained on {expected_device}"] = (ev["device"] or "").startswith(expected_device)
        if gpus:
            conditions[f"{name}: given exactly one GPU"] = len(given) == 1
        rows[run_id] = {k: ev[k] for k in ("name", "devices", "cuda_visible_devices", "device", "precision")}
        rows[run_id]["gpu_memory_series"] = ev["gpu_memory_series"]
    why = "CUDA_VISIBLE_DEVICES is the given GPU and the Trainer trained on cuda"
    if not gpus:
        why = "CPU runs: CUDA_VISIBLE_DEVICES empty and the Trainer on cpu (the GPU side is not checked here)"
    check.verdict("c. isolation", conditions, rows, why)


def check_refusal(
    check: Check, launcher, data: tuple[Path, Path], gpus: tuple[int, ...], scratch: Path
) -> None:
    """(d) Too many GPUs (API, CLI) or processes: refused with the field named, nothing recorded."""
    from trainer_core import ConfigError

    store, home = launcher.store, launcher.home
    before = (len(store.list_runs()), sorted(p.name for p in home.iterdir()))
    too_many = len(gpus) + 1
    shown: dict[str, Any] = {"asked_gpus": too_many}
    refusals = {}
    attempts = [("api --gpus", tiny_run(*data), too_many)]
    if gpus:  # on the CPU, processes are checked against the cores instead
        attempts.append(("api num_processes", tiny_run(*data, num_processes=too_many), None))
    for label, config, num_gpus in attempts:
        try:
            launcher.launch(config, num_gpus=num_gpus)
            shown[label] = "accepted"
            refusals[f"{label} refused"] = False
        except ConfigError as exc:
            shown[label] = {"field": exc.field, "message": exc.message}
            named = exc.field in ("num_gpus", "num_processes") and str(too_many) in exc.message
            refusals[f"{label} refused, naming the field and the count"] = named
    config_file = scratch / "too-many-gpus.json"
    config_file.write_text(json.dumps(tiny_run(*data)), encoding="utf-8")
    cli = [sys.executable, "-m", "trainer_core", "--home", str(home), "launch", str(config_file)]
    proc = subprocess.run([*cli, "--gpus", str(too_many)], capture_output=True, text=True, timeout=120)
    shown["cli --gpus"] = {"exit_code": proc.returncode, "stderr": proc.stderr.strip()[-400:]}
    refusals["cli --gpus exits 2 naming num_gpus"] = proc.returncode == 2 and "num_gpus" in proc.stderr
    after = (len(store.list_runs()), sorted(p.name for p in home.iterdir()))
    shown["runs_and_folders_unchanged"] = before == after
    why = f"asking for {too_many} GPUs on a machine with {len(gpus)} is refused before anything starts"
    refusals["no run or folder was left behind"] = before == after
    check.verdict("d. refusal", refusals, shown, why)


def check_bf16(
    check: Check, launcher, data: tuple[Path, Path], run: dict | None, gpus: tuple[int, ...]
) -> None:
    """(e) The bf16 run of the queue check: on cuda, finite loss, learned; without a GPU: refused."""
    from trainer_core import ConfigError

    if not gpus:
        try:
            launcher.launch(tiny_run(*data, bf16=True))
            shown: Any = "accepted without a GPU"
        except ConfigError as exc:
            shown = {"field": exc.field, "message": exc.message}
        refused = isinstance(shown, dict) and shown["field"] == "bf16"
        verdict = SKIP if refused else FAIL
        why = "no GPU: bf16 training not checked; the engine refused bf16 here before start, as it should"
        check.record("e. bf16", verdict, shown, why)
        return
    keys = ("status", "error", "device", "precision", "loss_points", "loss_first_last", "loss_finite")
    shown = {k: run.get(k) for k in (*keys, "eval_loss", "eval_accuracy")} if run else None
    run = run or {}
    eval_loss = run.get("eval_loss")
    conditions = {
        "completed": run.get("status") == "completed",
        "trained in bf16": run.get("precision") == "bf16",
        "on cuda": (run.get("device") or "").startswith("cuda"),
        "every logged loss finite": bool(run.get("loss_finite")),
        "eval loss finite": isinstance(eval_loss, (int, float)) and math.isfinite(eval_loss),
        # The two classes are told apart by their words: fp32 reaches 1.0 on the CPU.
        "eval accuracy >= 0.9": (run.get("eval_accuracy") or 0) >= 0.9,
    }
    check.verdict("e. bf16", conditions, shown, "a bf16 run on the GPU trains and learns")


def check_speed(check: Check, launcher, data, queue: dict, gpus: tuple[int, ...], deadline: float) -> None:
    """(f) samples/s of the same run: fp32 and bf16 on the GPU, and the CPU's for scale."""
    runs = queue["runs"]
    fp32 = runs[queue["fillers"][0]]
    if not gpus:
        shown = {
            "cpu_fp32_samples_per_s": fp32["train_samples_per_second"],
            "cpu_runtime_s": fp32["train_runtime_s"],
        }
        check.record("f. speed", SKIP, shown, "no GPU: only the CPU's samples/s")
        return
    cpu_id = launcher.launch(
        tiny_run(*data, run_name="cpu-reference", use_cpu=True), num_gpus=0, preflight=False
    )
    wait_final(launcher.store, [cpu_id], deadline)
    cpu = evidence(launcher.store, cpu_id)
    queue["runs"][cpu_id] = cpu
    bf16 = runs[queue["queued"]]
    figures = {
        "gpu_fp32_samples_per_s": fp32["train_samples_per_second"],
        "gpu_bf16_samples_per_s": bf16["train_samples_per_second"],
        "cpu_fp32_samples_per_s": cpu["train_samples_per_second"],
    }
    shown = {
        **figures,
        "runtimes_s": {
            "gpu_fp32": fp32["train_runtime_s"],
            "gpu_bf16": bf16["train_runtime_s"],
            "cpu": cpu["train_runtime_s"],
        },
        "cpu_device": cpu["device"],
        "rows": gpu_runs.TRAIN_ROWS,
        "epochs": tiny_run(*data)["num_train_epochs"],
    }
    if figures["cpu_fp32_samples_per_s"] and figures["gpu_fp32_samples_per_s"]:
        shown["gpu_fp32_over_cpu"] = round(
            figures["gpu_fp32_samples_per_s"] / figures["cpu_fp32_samples_per_s"], 2
        )
    conditions = {f"{k} measured": isinstance(v, (int, float)) and v > 0 for k, v in figures.items()}
    conditions["the reference trained on cpu"] = cpu["device"] == "cpu"
    check.verdict("f. speed", conditions, shown, "the Trainer's train_samples_per_second of each run")


def start_watchdog(check: Check, budget_s: float) -> threading.Timer:
    def fire() -> None:
        check.record("watchdog", FAIL, {"budget_s": budget_s}, "the check ran past its budget; ending it")
        if check.launcher is not None:
            # By the store's pids: a queued run's worker is started by the worker before it, so it is
            # no child of this process.
            stop_active(check.launcher)
        end_children()
        check.write(exit_code=3)
        os._exit(3)

    timer = threading.Timer(budget_s + WATCHDOG_MARGIN_S, fire)
    timer.daemon = True
    timer.start()
    return timer


def prepare_environment(scratch: Path) -> bool:
    """The variables the engine reads, set for a clean check; returns whether torch sees a GPU."""
    import torch

    for name in ("TRAINER_CORE_DB", "TRAINER_CORE_HOME", "TRAINER_CORE_GPUS", "TRAINER_CORE_SLOTS"):
        os.environ.pop(name, None)  # the check is of what the engine finds by itself
    os.environ.setdefault("HF_HOME", str(scratch / "hf-home"))  # evaluate's module cache, writable
    has_gpu = torch.cuda.is_available() and torch.cuda.device_count() > 0
    if not has_gpu:
        # A CPU machine gets one run per 4 cores; one slot makes the second run of (b) wait here too.
        os.environ["TRAINER_CORE_SLOTS"] = "1"
    return has_gpu


def run_checks(check: Check, scratch: Path, deadline: float) -> None:
    from trainer_core import Launcher

    data = write_dataset(scratch / "data")
    launcher = check.launcher = Launcher(home=scratch / "runs")
    try:
        gpus = _step(check, "a. inventory", lambda: check_inventory(check, launcher)) or ()
        queue = _step(check, "b. queue", lambda: check_queue(check, launcher, data, gpus, deadline))
        if queue:
            check.report["runs"].update(queue["runs"])
            _step(check, "c. isolation", lambda: check_isolation(check, queue["runs"], gpus))
        _step(check, "d. refusal", lambda: check_refusal(check, launcher, data, gpus, scratch))
        bf16 = queue["runs"][queue["queued"]] if queue else None
        _step(check, "e. bf16", lambda: check_bf16(check, launcher, data, bf16, gpus))
        if queue:
            _step(check, "f. speed", lambda: check_speed(check, launcher, data, queue, gpus, deadline))
    finally:
        finish_runs(launcher, check.report, check.out)


def _step(check: Check, name: str, body):
    """Run one check; an exception is that check's failure, and the next ones still run."""
    import traceback

    try:
        return body()
    except Exception as exc:  # noqa: BLE001 - reported with its traceback, then on to the next check
        check.record(name, FAIL, traceback.format_exc()[-2000:], f"{type(exc).__name__}: {exc}")
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and the run logs")
    parser.add_argument("--allow-cpu", action="store_true", help="exit 0 without a GPU (a dry run)")
    parser.add_argument("--budget-s", type=float, default=270.0, help="time for every run to end")
    parser.add_argument("--keep", action="store_true", help="keep the runs folder (printed at the end)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    check = Check(args.out, args.allow_cpu)
    watchdog = start_watchdog(check, args.budget_s)
    scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        has_gpu = prepare_environment(scratch)
        check.report["environment"] = environment()
        print_environment(check.report["environment"])
        if not has_gpu:
            print(
                "NO GPU: torch sees no CUDA device. Skipped: the GPU side of a (inventory), c (cuda), e (bf16"
                " training) and f (GPU samples/s); b, c and d run on CPU slots instead.",
                flush=True,
            )
        run_checks(check, scratch, began + args.budget_s)
    finally:
        watchdog.cancel()
        check.report["elapsed_s"] = round(time.monotonic() - began, 1)
        path = check.write()
        if args.keep:
            print(f"runs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({c["check"]: c["result"] for c in check.report["checks"]}, indent=1))
    code = check.exit_code()
    print(f"written {path}; {check.report['elapsed_s']} s; exit {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
