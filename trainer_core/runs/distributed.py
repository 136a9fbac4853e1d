"""Runs over several processes: the command line that starts them, which rank a process is, and what
all ranks must decide together.

A run with ``num_processes: N`` above 1 starts torchrun's agent (``agent.py``) instead of the worker; the
agent starts N workers ("ranks") on this machine. Only rank 0 writes to the store and the run folder;
a stop request is read by rank 0 and agreed on by every rank at the same step (:func:`any_rank`); a
rank that fails is recorded by the agent, which is the one process that sees every rank's exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WORKER_MODULE = "trainer_core.runs.worker"
AGENT_MODULE = "trainer_core.runs.agent"
# Set by the agent for its ranks: each rank dies with the agent (see die_with_agent).
AGENT_PID_ENV = "TRAINER_CORE_AGENT_PID"
# Where torchrun's agent tells each rank to leave its error (it reads the file back into the failure).
ERROR_FILE_ENV = "TORCHELASTIC_ERROR_FILE"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def world_size() -> int:
    """How many processes train this run (torchrun's ``WORLD_SIZE``; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank in the run (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def in_group() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    """True for the one process that writes the store, the outcome file, predictions and the model."""
    return rank() == 0


def worker_command(
    worker_args: Sequence[str], config: dict[str, Any], devices: Sequence[int] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The command line that starts a run's training, and what it adds to the environment.

    Args:
        worker_args: the worker's own options (``--run-id ... --run-dir ... --store ... --attempt ...``).
        config: the run's flat config; its ``num_processes`` (1: the worker itself; more: torchrun's
            agent with that many ranks on this machine) and ``use_cpu``.
        devices: the GPU ids the run was given; its processes see exactly those (``CUDA_VISIBLE_DEVICES``;
            an empty list hides every GPU). None: whatever this process sees.
    Returns:
        (argv, environment additions).
    Raises:
        ConfigError: (field ``num_processes``) more processes than the GPUs in ``devices``.
    """
    from trainer_core.config.environment import check_num_processes

    num_processes = int(config.get("num_processes") or 1)
    if devices is not None:
        check_num_processes(num_processes, use_cpu=bool(config.get("use_cpu")), devices=devices)
    env: dict[str, str] = {}
    if devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(int(d)) for d in devices)
    if num_processes <= 1:
        return [sys.executable, "-m", WORKER_MODULE, *worker_args], env
    torchrun = [
        # A rendezvous on localhost at a free port (two runs at once never collide on 29500).
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(num_processes),
        # A restarted group would replay steps the store already holds; a failed rank fails the run, and
        # resume continues it from its checkpoint.
        "--max-restarts",
        "0",
        "--module",
        WORKER_MODULE,
    ]
    return [sys.executable, "-m", AGENT_MODULE, *torchrun, *worker_args], env


def group_training_changes(training: Any) -> dict[str, Any]:
    """The TrainingArguments fields a rank of a group needs changed (none outside a group).

    Measured with transformers 5.24 and accelerate 1.15 on a CPU-only machine under torchrun:
    - without ``use_cpu`` each rank trains alone on all the data (parallel_mode NOT_PARALLEL, the step
      count does not halve): accelerate picks its multi-CPU mode only when told to use the CPU;
    - ``ddp_backend="gloo"`` makes that choice explicit (accelerate would take MPI where torch has it),
      but raises when TrainingArguments is built outside torchrun, so it is set here and never saved
      in a run's config;
    - with ``average_tokens_across_devices`` (on by default) the Trainer multiplies the loss by the number
      of processes because the model's forward takes ``**kwargs``; a sequence classifier's loss is
      already a batch mean, so the logged loss came out N times too large and the gradient N times
      too strong. Off, the loss matches a single process's for the same global batch.

    The TrainingArguments built with these must be the last one built in the rank before the Trainer:
    each build resets accelerate's shared state to its own settings.
    """
    if not in_group():
        return {}
    changes: dict[str, Any] = {"average_tokens_across_devices": False}
    if training.use_cpu or not _cuda_available():
        changes.update(use_cpu=True, ddp_backend="gloo")
    return changes


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any rank (one all-reduce); ``flag`` outside a group.

    Every rank must call it at the same point. A failure (a rank gone) is not caught: the ranks cannot
    go on without agreeing, and the agent records which rank failed.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    import torch

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def leave_group() -> None:
    """Destroy this rank's process group, if it has one, before the process exits.

    Left to the interpreter's exit, its teardown kept each rank alive ~13 s after its last line ran
    (two CPU ranks on gloo, measured under load), and the run's agent with it.
    """
    if not in_group():
        return  # a lone worker has no group, and may not have imported torch yet
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def die_with_agent() -> None:
    """Have the kernel SIGKILL this rank when its agent dies.

    torchrun starts each rank in a session of its own, so killing the agent's process group (a forced
    stop) does not reach the ranks, and a SIGKILL of the agent cannot be passed on: without this the
    ranks of a killed agent went on training, orphaned.
    """
    agent = os.environ.get(AGENT_PID_ENV)
    if not agent or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if os.getppid() != int(agent):  # the agent died before the line above took effect
        os.kill(os.getpid(), signal.SIGKILL)


def leave_rank_error(message: str, traceback_text: str | None) -> None:
    """Leave this rank's error where the agent reads it back (torchrun's error file, if it set one)."""
    path = os.environ.get(ERROR_FILE_ENV)
    if not path:
        return
    # torchrun's own format for a message given as text, with the traceback beside it.
    data = {"message": message, "timestamp": int(time.time()), "traceback": traceback_text}
    with contextlib.suppress(OSError):
        Path(path).write_text(json.dumps(data), encoding="utf-8")


def agent_pid() -> int | None:
    """The pid of torchrun's agent when this process is a rank of a group, else None."""
    pid = os.environ.get(AGENT_PID_ENV)
    return int(pid) if pid and in_group() else None
