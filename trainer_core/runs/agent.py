"""torchrun's agent for a run over several processes, recording the run as failed when a rank fails.

Started by the launcher (see ``distributed.worker_command``) as::

    python -m trainer_core.runs.agent --standalone --nproc-per-node N --max-restarts 0 \\
        --module trainer_core.runs.worker --run-id ID --run-dir DIR --store URL --attempt A

The options are torchrun's own, parsed and run by ``torch.distributed.run``. Two things are added:
the agent claims the attempt (its pid is the one the launcher watches and kills, and a run stopped
meanwhile starts no rank), and when a rank fails it records the run's error naming that rank.
torchrun reports a failed rank only as a table in its log, and rank 0 cannot tell: it sees a
"Connection reset by peer" in its next collective.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

from trainer_core.runs.distributed import AGENT_PID_ENV
from trainer_core.runs.exits import exit_error
from trainer_core.runs.folder import RunFolder
from trainer_core.runs.outcome import record_outcome, start_successors
from trainer_core.runs.worker import parse_worker_args
from trainer_core.tracking.status import FAILED, RUNNING
from trainer_core.tracking.store import MetricsStore


def first_failed_rank(failures: dict[int, Any]) -> int:
    """The rank whose failure ended the group, from torchrun's ``{rank: ProcessFailure}``.

    A rank killed by a signal (SIGKILL by a user or the out-of-memory killer) is the cause: the other
    ranks only fail afterwards, at their next collective. The agent's own SIGTERM to the survivors
    does not count. Otherwise the failure torchrun observed first (ties keep its observation order).
    """
    killed = {r: f for r, f in failures.items() if f.exitcode < 0 and f.exitcode != -signal.SIGTERM}
    pool = killed or failures
    return min(pool, key=lambda r: pool[r].timestamp)


def describe_failure(rank: int, failure: Any, world_size: int) -> str:
    """The run's error for a group that failed because of ``rank``."""
    who = f"rank {rank} of {world_size} (pid {failure.pid})"
    # A rank that raised left its error in torchrun's error file (distributed.leave_rank_error); one killed
    # by a signal wrote nothing, and torchrun puts a placeholder there.
    left = (failure.error_file_data or {}).get("traceback") is not None
    if failure.exitcode > 0 and left:
        what = f"{who} failed: {failure.error_file_data['message']}"
    else:
        what = exit_error(failure.exitcode, who=who)
    others = world_size - 1
    return f"{what}; the other {others} rank{'s were' if others > 1 else ' was'} stopped"


def record_group_failure(store: MetricsStore, worker: Any, failures: dict[int, Any], world_size: int) -> int:
    """Record the attempt as failed, naming the rank that caused it; returns the agent's exit code.

    Only an attempt still active is changed (``finish_attempt``'s rule): a rank failing after rank 0
    recorded completed or stopped changes nothing.
    """
    rank = first_failed_rank(failures)
    failure = failures[rank]
    traceback_text = (failure.error_file_data or {}).get("traceback")
    folder = RunFolder(worker.run_dir)
    fields = {
        "error": describe_failure(rank, failure, world_size),
        "traceback": traceback_text or folder.log_tail(60),
    }
    print(f"error: {fields['error']}", file=sys.stderr, flush=True)
    code = failure.exitcode if failure.exitcode > 0 else 1
    return record_outcome(store, folder, worker.run_id, worker.attempt, FAILED, code, fields)


def main(argv: list[str] | None = None) -> int:
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = torchrun.parse_args(argv)
    worker = parse_worker_args(args.training_script_args)
    store = MetricsStore(worker.store, auto_checkpoint=False)
    # Only the attempt the launcher queued may start: a run stopped or resumed meanwhile has a new owner.
    if not store.record_worker(
        worker.run_id, worker.attempt, os.getpid(), socket.gethostname(), status=RUNNING
    ):
        print(
            f"run {worker.run_id} attempt {worker.attempt} is no longer queued; not starting", file=sys.stderr
        )
        return 0
    os.environ[AGENT_PID_ENV] = str(os.getpid())
    try:
        torchrun.run(args)
    except ChildFailedError as exc:
        code = record_group_failure(store, worker, exc.failures, int(args.nproc_per_node))
        start_successors(worker.store, worker.run_dir, worker.run_id)  # the run's slot is free
        return code
    except SignalException as exc:
        # SIGTERM/SIGINT: torchrun passed it to the ranks, which stop at their next step as on a stop
        # request, and rank 0 recorded that; anything else is the launcher's to judge from this code.
        return 128 + int(exc.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
