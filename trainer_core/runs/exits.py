"""What a worker process's exit says: is it still alive, and why did it end (for the run's error)."""

from __future__ import annotations

import signal

from trainer_core.runs.worker import EXIT_NO_SPACE


def exit_error(exit_code: int) -> str:
    """The run's error for a worker that exited without recording an outcome."""
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
        return f"worker process was killed by {name}{hint}"
    if exit_code == 0:
        return "worker process exited without recording an outcome"
    return f"worker process exited with code {exit_code}"


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
