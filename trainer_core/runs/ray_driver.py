"""The driver of a run on a Ray cluster: the entrypoint of its Ray job, training it with Ray Train.

Submitted by the launcher (``ray_jobs.submit_run``) as::

    python -m trainer_core.runs.ray_driver --run-id ID --run-dir DIR --store URL --attempt A

It starts a ``TorchTrainer`` whose every worker runs the project's own ``worker.train`` with the Trainer
passed through Ray's ``prepare_trainer``: the same callback, metrics, stop, checkpoints, predictions and
model as a run on this machine. Ray Train sets up the process group (gloo on CPUs, nccl on GPUs) and the
``RANK``/``WORLD_SIZE`` variables ``distributed`` reads, so rank 0 alone writes and every rank agrees on
a stop. Rank 0 records how the run ended; a worker that fails or is lost fails ``fit()`` here, and the
driver records Ray's error text (the first writer wins, so a clean outcome of rank 0 stays).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from trainer_core.config import load_config
from trainer_core.errors import ConfigError
from trainer_core.runs import distributed
from trainer_core.runs.folder import RunFolder
from trainer_core.runs.outcome import describe_error, ended_status, record_outcome, start_successors
from trainer_core.runs.worker import HEARTBEAT_EVERY_S, parse_worker_args, train
from trainer_core.tracking.status import ACTIVE_STATUSES, FAILED, RUNNING
from trainer_core.tracking.store import MetricsStore

logger = logging.getLogger("trainer_core.runs.ray_driver")


class _Flag:
    """A stop that is already decided (``is_set`` for ``train``'s stop_event)."""

    def __init__(self, value: bool):
        self.value = value

    def is_set(self) -> bool:
        return self.value


def train_loop_per_worker(options: dict[str, Any]) -> None:
    """One Ray Train worker: ``worker.train`` as on this machine; rank 0 records the outcome."""
    import ray
    from ray.train.huggingface.transformers import prepare_trainer

    run_id, attempt, run_dir = options["run_id"], options["attempt"], options["run_dir"]
    store = MetricsStore(options["store"], auto_checkpoint=False)
    folder = RunFolder(run_dir)
    main = distributed.is_main_process()
    node = ray.get_runtime_context().get_node_id()
    where = f"rank {distributed.rank()} of {distributed.world_size()} (pid {os.getpid()}) on node {node}"
    # One event per worker, so the run says where each trained (the only write of the other ranks).
    store.add_event(
        run_id,
        "ray_worker",
        f"Ray Train worker {where}",
        {"rank": distributed.rank(), "pid": os.getpid(), "node_id": node, "attempt": attempt},
    )
    current = True
    if main:
        # Queued until now: Ray may have waited for resources. The attempt's owner is now rank 0.
        current = store.record_worker(run_id, attempt, os.getpid(), socket.gethostname(), status=RUNNING)
    config = load_config(folder.config_file)
    try:
        outcome = train(
            config,
            store,
            run_id,
            run_dir,
            resume_from_checkpoint=options.get("resume_from"),
            # A run stopped or resumed elsewhere meanwhile: every rank leaves at train()'s first vote.
            stop_event=_Flag(not current),
            prepare_trainer=prepare_trainer,
        )
    except BaseException as exc:
        if main and current:
            # Said in the project's words (out of memory: what to change); Ray's text goes to the driver.
            code = 2 if isinstance(exc, ConfigError) else 1
            fields = {"error": describe_error(exc, config), "traceback": traceback.format_exc()}
            record_outcome(store, folder, run_id, attempt, FAILED, code, fields)
        raise
    if main and current:
        status = ended_status(store, run_id, outcome)
        record_outcome(store, folder, run_id, attempt, status, 0, {"summary": outcome.summary})


def ray_error_text(exc: BaseException, limit: int = 600) -> str:
    """Ray's reason for a failed ``fit()`` in one line, without the tracebacks it quotes.

    Ray's text mixes its reason with quoted tracebacks, and spreads the reason itself over indented
    lines (``Worker(\n    rank=1,\n    pid=...)``, an actor's ``class_name:``/``pid:`` details): dropping
    every indented line left ``Worker( )``. Only the traceback blocks go (from ``Traceback (most recent
    call last):`` up to the exception line that closes each); the rest is joined with its whitespace
    collapsed.
    """
    kept, in_traceback = [], False
    for line in str(exc).strip().splitlines():
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
            continue
        if in_traceback and (not line.strip() or line.startswith((" ", "\t"))):
            continue  # a frame ("  File ...") or its source line
        in_traceback = False
        if line.strip():
            kept.append(" ".join(line.split()))
    # "Worker( rank=1, pid=7, )" once joined: close the brackets up again.
    reason = re.sub(r",?\s*\)", ")", re.sub(r"\(\s+", "(", " ".join(kept))) or type(exc).__name__
    if len(reason) > limit:
        # Its start says what failed and its end why (a lost worker: "...died unexpectedly", "killed by
        # SIGKILL"); the middle is the worker's details (actor, node, log file path: ~700 characters).
        head = limit * 2 // 5
        reason = reason[:head].rstrip() + " … " + reason[-(limit - head - 3) :].lstrip()
    return f"the run failed on the Ray cluster: {type(exc).__name__}: {reason}"


def fit(config, options: dict[str, Any]) -> None:
    """Train the run with Ray Train's ``TorchTrainer`` on ``num_workers`` workers."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    run = config.run
    trainer = TorchTrainer(
        train_loop_per_worker=train_loop_per_worker,
        train_loop_config=options,
        scaling_config=ScalingConfig(
            num_workers=run.num_workers,
            use_gpu=run.use_gpu,
            resources_per_worker=dict(run.resources_per_worker) if run.resources_per_worker else None,
        ),
        run_config=RunConfig(
            name=f"{options['run_id']}-attempt-{options['attempt']}",
            # Ray Train's own files beside the run's: the run folder is on storage every node reaches.
            storage_path=str(Path(options["run_dir"]) / "ray"),
            # A lost worker fails the run (resume continues from its last checkpoint), as a lost rank
            # does under torchrun: retrying would replay steps the store already holds.
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    trainer.fit()


def _heartbeat(store: MetricsStore, run_id: str, done: threading.Event) -> None:
    # While Ray finds resources and the workers load, no training step beats for the run.
    while not done.wait(HEARTBEAT_EVERY_S):
        try:
            store.heartbeat(run_id)
        except Exception:  # noqa: BLE001 - keep beating; a transient lock must not end the run
            logger.warning("heartbeat failed", exc_info=True)


def run_driver(args) -> int:
    """Train one attempt on the cluster and make sure how it ended is recorded; returns the exit code."""
    store = MetricsStore(args.store, auto_checkpoint=False)
    folder = RunFolder(args.run_dir)
    # Only the attempt the launcher submitted may train: one stopped or resumed meanwhile has a new owner.
    if not store.record_worker(args.run_id, args.attempt, os.getpid(), socket.gethostname()):
        print(f"run {args.run_id} attempt {args.attempt} is no longer current; not starting", file=sys.stderr)
        return 0
    config = load_config(folder.config_file)
    store.add_event(
        args.run_id,
        "ray_driver",
        f"Ray job driver {os.getpid()} on {socket.gethostname()} (attempt {args.attempt}): asking for "
        f"{config.run.num_workers} worker(s)",
    )
    options = {
        "run_id": args.run_id,
        "run_dir": args.run_dir,
        "store": args.store,
        "attempt": args.attempt,
        "resume_from": args.resume_from,
    }
    done = threading.Event()
    threading.Thread(target=_heartbeat, args=(store, args.run_id, done), daemon=True).start()
    try:
        fit(config, options)
    except BaseException as exc:  # noqa: BLE001 - a failed or lost worker, a failed start: record Ray's text
        fields = {"error": ray_error_text(exc), "traceback": traceback.format_exc()}
        print(fields["traceback"], file=sys.stderr, flush=True)
        return record_outcome(store, folder, args.run_id, args.attempt, FAILED, 1, fields)
    finally:
        done.set()
    run = store.get_run(args.run_id)
    if run["attempt"] == args.attempt and run["status"] in ACTIVE_STATUSES:
        fields = {"error": "the Ray Train workers ended without recording an outcome"}
        return record_outcome(store, folder, args.run_id, args.attempt, FAILED, 1, fields)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_worker_args(argv)
    # The run's log is its folder's train.log, as for a run on this machine (the dashboard shows it, a
    # failure's traceback quotes it); Ray forwards its workers' output to this process, so theirs too.
    log = os.open(RunFolder(args.run_dir).log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
        os.dup2(log, stream.fileno())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = run_driver(args)
    # A sweep's trial tells its study and launches the next trials, as a local worker's end does.
    start_successors(args.store, args.run_dir, args.run_id, local=False)
    return code


if __name__ == "__main__":
    sys.exit(main())
