"""How a run's attempt ends: its final status, the outcome written to the run folder and the store, and
what its end sets going (queued runs, a sweep's next trials).

Shared by the three processes that end runs: the local worker (``worker.py``), the torchrun agent when a
rank fails (``agent.py``) and the Ray job's driver (``ray_driver.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import sqlite3
import sys
from pathlib import Path
from typing import Any

from trainer_core.config import RunConfig
from trainer_core.runs.folder import RunFolder
from trainer_core.tracking.status import COMPLETED, FAILED, PRUNED, STOPPED
from trainer_core.tracking.store import MetricsStore

logger = logging.getLogger("trainer_core.runs.worker")

# The exit code of a worker that could record its outcome neither in the store nor in its run folder
# because the disk is full (errno ENOSPC): the launcher's supervisor turns it into that cause.
EXIT_NO_SPACE = errno.ENOSPC


@dataclasses.dataclass
class TrainOutcome:
    stopped: bool
    summary: dict[str, Any]
    pruned: bool = False  # a sweep's trial its pruner ended (stopped is True too)


def ended_status(store: MetricsStore, run_id: str, outcome: TrainOutcome, main: bool = True) -> str:
    """The final status of an attempt whose training returned (rank 0 records why a trial was pruned)."""
    if outcome.pruned and main:
        pruned = outcome.summary["pruned"]
        scores = ", ".join(f"{k} {v:.4g}" for k, v in pruned.items() if k.startswith("eval_"))
        store.add_event(run_id, "pruned", f"the sweep's pruner ended it at step {pruned['step']} ({scores})")
    return PRUNED if outcome.pruned else STOPPED if outcome.stopped else COMPLETED


_OOM_MESSAGES = ("DefaultCPUAllocator: can't allocate memory", "CUDA out of memory", "out of memory")
_DISK_FULL_MESSAGES = ("database or disk is full", "No space left on device", "file write failed")


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an allocator failure: MemoryError, torch.OutOfMemoryError, the CPU/CUDA allocator messages."""
    for e in _chain(exc):
        if isinstance(e, MemoryError) or any(c.__name__ == "OutOfMemoryError" for c in type(e).__mro__):
            return True
        if isinstance(e, RuntimeError) and any(m in str(e) for m in _OOM_MESSAGES):
            return True
    return False


def is_disk_full(exc: BaseException) -> bool:
    """True when a write failed for lack of space (ENOSPC/EDQUOT, SQLite's "disk is full", torch.save's)."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, (sqlite3.Error, RuntimeError, OSError)) and any(
            m in str(e) for m in _DISK_FULL_MESSAGES
        ):
            return True
    return False


def describe_error(exc: BaseException, config: RunConfig | None = None) -> str:
    """The run's error: the exception, and for running out of memory or disk, what to do about it."""
    message = f"{type(exc).__name__}: {exc}"
    if is_out_of_memory(exc):
        return f"{message}\n{_out_of_memory_hint(config)}"
    if is_disk_full(exc):
        return (
            f"{message}\nNo space left on device under the run folder or the metrics store: free some "
            "space (old checkpoints, or save_total_limit for fewer), then resume the run."
        )
    return message


def _out_of_memory_hint(config: RunConfig | None) -> str:
    if config is None:
        return "Out of memory: lower per_device_train_batch_size or max_seq_length."
    batch = int(config.training.per_device_train_batch_size)
    accumulation = int(config.training.gradient_accumulation_steps or 1)
    used = (
        f"per_device_train_batch_size={batch}, max_seq_length={config.data.max_seq_length}, "
        f"gradient_accumulation_steps={accumulation}"
    )
    if batch > 1:
        smaller = max(1, batch // 2)
        return (
            f"Out of memory with {used}: lower per_device_train_batch_size (e.g. {smaller}) and raise "
            f"gradient_accumulation_steps to {accumulation * batch // smaller} to keep the effective batch "
            f"of {batch * accumulation}, or lower max_seq_length."
        )
    return f"Out of memory with {used}: lower max_seq_length, or use a smaller checkpoint."


# -- the process ------------------------------------------------------------------------------------


def _sweep_of(store: MetricsStore, run_id: str) -> str | None:
    try:
        return store.get_run(run_id).get("sweep_id")
    except Exception:  # noqa: BLE001 - deleted meanwhile, or the store refuses reads: nothing to advance
        return None


# How long a trial's worker waits for another process advancing its sweep (two trials ending together):
# the other may have read the trials before this one's outcome, so this one tells it after.
SWEEP_WAIT_S = 60.0


def start_successors(store_url: str, run_dir: str, run_id: str | None = None, local: bool = True) -> None:
    """Start the queued runs that fit now that this run's slot is free, and for a sweep's trial, tell
    the study and launch the sweep's next trials: no daemon has to (``local`` False: the sweep only)."""
    from trainer_core.runs.launcher import Launcher  # the launcher imports this module

    try:
        # Runs live in <home>/<run id>; the inventory comes from the launcher's environment variables.
        launcher = Launcher(home=Path(run_dir).parent, store_url=store_url)
        sweep_id = _sweep_of(launcher.store, run_id) if run_id else None
        if sweep_id is not None:
            launcher.advance_sweeps(sweep_id, wait_s=SWEEP_WAIT_S)
        if local:  # a Ray job's driver runs on a cluster node: this machine's queue is not its to start
            launcher.start_queued()
    except Exception:  # noqa: BLE001 - the next reconcile starts them; this run's outcome is recorded
        logger.warning("could not start the next queued runs", exc_info=True)


def record_outcome(
    store: MetricsStore, folder: RunFolder, run_id: str, attempt: int, status: str, code: int, fields: dict
) -> int:
    # The outcome file first: if the store refuses the write below (its disk is full), the launcher's
    # supervisor or a later reconcile reads it once the store takes writes again.
    saved = folder.write_outcome(attempt, status, fields.get("error"))
    message = f"run failed: {fields['error']}" if status == FAILED else f"run {status}"
    try:
        store.finish_attempt(run_id, attempt, status, status, message, stop_requested=0, **fields)
    except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError: database or disk is full
        print_quietly(f"could not record the outcome ({status}) in the store: {exc}")
        if not saved and is_disk_full(exc):
            return EXIT_NO_SPACE
        return code or 1
    return code


def print_quietly(text: str) -> None:
    # The log is in the run folder: on a full disk, writing to it fails too.
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)
