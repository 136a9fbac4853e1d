"""A worker's processes: are they alive, why did they end (for the run's error), and killing them."""

from __future__ import annotations

import contextlib
import os
import signal

from trainer_core.runs.outcome import EXIT_NO_SPACE


def exit_error(exit_code: int, who: str = "worker process") -> str:
    """The run's error for a worker (``who``: a rank of one) that exited without recording an outcome."""
    if exit_code == EXIT_NO_SPACE:
        return (
            "no space left on device: the worker could not record its outcome in the metrics store "
            "or the run folder; free some space and resume the run"
        )
    if exit_code < 0:
        name = (
            signal.Signals(-exit_code).name
            if -exit_code in signal.Signals._value2member_map_
            else f"signal {-exit_code}"
        )
        hint = " (the out-of-memory killer sends SIGKILL)" if exit_code == -signal.SIGKILL else ""
        return f"{who} was killed by {name}{hint}"
    if exit_code == 0:
        return f"{who} exited without recording an outcome"
    return f"{who} exited with code {exit_code}"


def worker_alive(pid: int, starting: bool = False) -> bool:
    """True when ``pid`` is a live trainer_core worker (``starting``: any live process, since between
    fork and exec a just-spawned worker still shows its parent's command line)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if starting:
            return True
        # A reused pid belongs to some other program: only a trainer_core worker counts.
        return any("trainer_core.runs.worker" in part for part in proc.cmdline())
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied: treat as not ours / not alive
        return False


def kill_worker(pid: int) -> None:
    """SIGKILL a worker's process group and, for a run over several processes, each rank's.

    A worker leads its own session (the launcher starts it so), so its process group id is its pid and
    killing the group also ends dataloader workers. torchrun starts every rank in a session of its own:
    those groups are found from the process tree before the agent goes. (A rank also dies with its agent,
    see ``distributed.die_with_agent``; this covers the moment before it set that up.)
    """
    try:
        import psutil

        leaders = [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied: only the worker's own group is known
        leaders = []
    for group in (pid, *leaders):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
