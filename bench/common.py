"""Helpers every benchmark shares: where things are, the machine, medians, results files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PLAIN_SCRIPT = REPO / "bench" / "plain_trainer.py"
MRPC_DIR = REPO.parent / "shared" / "data" / "mrpc"

# Nothing may reach the network; the plain script and the project's workers inherit these.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
os.environ.update(OFFLINE_ENV)
# One intra-op thread per training process, on both sides alike. On a shared 2-core machine the default
# (2 OpenMP threads) spin-waits whenever another process holds a core: a MiniLM step measured 3-7 s
# with 2 threads against 0.8-1.8 s with 1 under the same load, and the spread swamps the ratios.
# BENCH_TRAINING_THREADS overrides it on a quiet machine.
TRAINING_THREADS = os.environ.get("BENCH_TRAINING_THREADS", "1")
os.environ["OMP_NUM_THREADS"] = TRAINING_THREADS
os.environ["MKL_NUM_THREADS"] = TRAINING_THREADS


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def machine() -> dict[str, Any]:
    """What the figures were measured on, for the report (and the load, which matters on a shared box)."""
    import psutil
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "training_threads": int(TRAINING_THREADS),
        "sched_autogroup": _read_text("/proc/sys/kernel/sched_autogroup_enabled"),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gb']:.0f} GB RAM, "
        f"torch {info['torch']}, transformers {info['transformers']}"
    )


def save_result(figure: str, result: dict[str, Any]) -> Path:
    """Keep the latest result of a figure (the report reads these) and a timestamped copy.

    ``--quick`` results go to ``quick/`` instead: a smoke run must not replace a real figure.
    """
    folder = RESULTS / "quick" if result.get("quick") else RESULTS
    (folder / "history").mkdir(parents=True, exist_ok=True)
    result = {"figure": figure, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), **result}
    text = json.dumps(result, indent=1, default=str)
    (folder / f"{figure}.json").write_text(text, encoding="utf-8")
    (folder / "history" / f"{figure}-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(
        text, encoding="utf-8"
    )
    return folder / f"{figure}.json"


def load_results() -> dict[str, dict[str, Any]]:
    """The latest result of every figure measured so far."""
    out = {}
    for path in sorted(RESULTS.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
    return out


def plain_command(task: str, out: Path, settings: dict[str, Any], training: dict[str, Any]) -> list[str]:
    """The command line that runs bench/plain_trainer.py with the given data and Trainer settings."""
    cmd = [sys.executable, str(PLAIN_SCRIPT), "--task", task, "--out", str(out)]
    for flag in ("max_train_samples", "max_eval_samples", "max_length", "seed", "data_dir"):
        if settings.get(flag) is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(settings[flag])]
    for key, value in training.items():
        cmd += ["--arg", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return cmd


def run_plain(task: str, out: Path, settings: dict[str, Any], training: dict[str, Any], log: Path) -> dict:
    """Run the plain script as its own process (so it pays start-up like the project's worker does)."""
    cmd = plain_command(task, out, settings, training)
    started = time.time()
    with open(log, "wb") as fh:
        # Its own session, as when typed into a terminal, and as the project's worker is started. Linux's
        # autogroup scheduling shares the CPU between sessions first: left in this process's session, the
        # script would split one share with everything else started from here (measured: it got half the
        # CPU of a worker running beside it, and looked 2-3x slower).
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        code = proc.wait()
    exited = time.time()
    if code != 0:
        raise RuntimeError(f"plain trainer failed ({code}); see {log}")
    result = json.loads(out.read_text(encoding="utf-8"))
    result["launched_at"], result["exited_at"] = started, exited
    return result


def first_point_time(store, run_id: str, key: str = "loss") -> float | None:
    """Wall time of a run's first recorded point of ``key``."""
    frame = store.get_series(run_id, key)
    return float(frame["wall_time"].min()) if len(frame) else None


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
