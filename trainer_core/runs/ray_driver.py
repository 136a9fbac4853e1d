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
import time
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
        # With several workers the driver records the failure: Ray names the worker that failed, while
        # rank 0 may only have seen its peer vanish ("Connection reset by peer" from gloo, which won the
        # race to the store in 2 of 3 runs of tests/test_ray.py's killed-worker test).
        if main and current and distributed.world_size() == 1:
            # Said in the project's words (out of memory: what to change); Ray's text goes to the driver.
            code = 2 if isinstance(exc, ConfigError) else 1
            fields = {"error": describe_error(exc, config), "traceback": traceback.format_exc()}
            record_outcome(store, folder, run_id, attempt, FAILED, code, fields)
        raise
    if main and current:
        status = ended_status(store, run_id, outcome)
        record_outcome(store, folder, run_id, attempt, status, 0, {"summary": outcome.summary})


# In a worker's details (an indented block Ray prints inside "Worker(...)"), what tells it apart.
_WORKER_FIELDS = (("world_rank", "rank"), ("pid", "pid"), ("node_ip", "on"))


def _worker_summary(block: list[str]) -> str:
    text = " ".join(block)
    found = [(word, re.search(rf"\b{name}=['\"]?([\w.]+)", text)) for name, word in _WORKER_FIELDS]
    return ", ".join(f"{word} {m[1]}" for word, m in found if m)


def ray_error_text(exc: BaseException, line_limit: int = 200, limit: int = 1000) -> str:
    """Ray's reason for a failed ``fit()`` in one line: its own sentences, without the tracebacks and
    the workers' details it quotes.

    Ray spreads a worker's details over indented lines inside ``Worker(...)`` (actor, node, log file:
    ~700 characters); dropping them all left ``Worker( )``, keeping them all hid the cause behind them.
    They are summed up as ``Worker(rank 1, pid 4242, on 10.0.0.2)``. Tracebacks (their frames are the
    indented lines) go; each remaining line is cut at ``line_limit`` characters, so the closing ones
    ("The actor died unexpectedly ...") stay within ``limit``.
    """
    kept: list[str] = []
    block: list[str] | None = None  # the indented lines of an open "Worker(" while they come
    for line in str(exc).strip().splitlines():
        indented = line.startswith((" ", "\t"))
        if block is not None:
            if indented:
                block.append(line.strip())
                continue
            kept[-1] += _worker_summary(block) + line.strip()  # the closing ")" and what follows it
            block = None
            continue
        if (
            indented
            or not line.strip()
            or line.startswith(("Traceback (most recent call last)", "... (Output"))
        ):
            continue
        line = " ".join(line.split())
        if line.endswith("("):
            block = []
        kept.append(line if len(line) <= line_limit else line[: line_limit - 1] + "…")
    if block is not None:
        kept[-1] += _worker_summary(block) + ")"
    reason = " ".join(kept) or type(exc).__name__
    if len(reason) > limit:
        reason = reason[: limit - 1] + "…"
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
    # The attempt's header, as the launcher writes a local worker's: rebuild-store reads a failure only
    # from the last attempt's part of the log (an earlier attempt may have failed before a resume).
    what = "resume" if args.resume_from else "start"
    os.write(
        log,
        f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} worker {what} on the Ray cluster "
        f"(attempt {args.attempt}) ===\n".encode(),
    )
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
