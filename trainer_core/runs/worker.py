"""The worker process: one fine-tuning run, start to finish, recorded in the metrics store.

Started by the launcher as ``python -m trainer_core.runs.worker --run-id ID --run-dir DIR --store URL``
in its own session, so it outlives the dashboard or CLI that started it. ``train()`` reads top to
bottom like transformers' run_glue.py: seed, tokenizer, datasets, labels, model, Trainer, train,
evaluate, predict.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from pathlib import Path

from trainer_core.config import RunConfig, load_config
from trainer_core.config.args import _jsonable
from trainer_core.errors import ConfigError
from trainer_core.runs import distributed
from trainer_core.runs.folder import RunFolder
from trainer_core.runs.outcome import (
    TrainOutcome,
    describe_error,
    ended_status,
    print_quietly,
    record_outcome,
    start_successors,
)
from trainer_core.runs.resources import ResourceSampler, record_sample
from trainer_core.tracking.status import FAILED, RUNNING
from trainer_core.tracking.store import MetricsStore

logger = logging.getLogger("trainer_core.runs.worker")

HEARTBEAT_EVERY_S = 5.0


def train(
    config: RunConfig,
    store: MetricsStore,
    run_id: str,
    run_dir: str | os.PathLike,
    resume_from_checkpoint: str | None = None,
    stop_event=None,
    prepare_trainer=None,
) -> TrainOutcome:
    """Fine-tune, evaluate and predict as ``config`` says, streaming everything into ``store``.

    ``stop_event`` (anything with ``is_set()``) stops the run as a stop request does, checkpoint included.
    ``prepare_trainer`` (a function taking and returning the Trainer, such as Ray Train's) adapts the
    Trainer to the engine that runs it. Under torchrun or Ray Train every rank calls this; only rank 0
    writes (store, predictions, summary).
    """
    from transformers import set_seed

    from trainer_core.metrics import majority_baseline
    from trainer_core.runs.callback import StoreCallback
    from trainer_core.sweeps.pruning import trial_pruning_callback

    folder = RunFolder(run_dir)
    training_args = dataclasses.replace(
        config.training,
        output_dir=str(folder.checkpoints_dir),
        **distributed.group_training_changes(config.training),
    )
    # The seed is set before the model is built so the fresh classification head is reproducible.
    set_seed(training_args.seed)
    tokenizer, data, model = _load_data_and_model(config, store, run_id, training_args.seed)
    callback = StoreCallback(store, run_id, stop_event=stop_event)
    pruning = trial_pruning_callback(store, run_id, config)  # None unless the run is a sweep's trial
    trainer = _build_trainer(config, training_args, model, tokenizer, data, callback, pruning)
    if prepare_trainer is not None:
        trainer = prepare_trainer(trainer)
    wanted = stop_event is not None and stop_event.is_set()
    if distributed.any_rank(wanted or (distributed.is_main_process() and store.stop_requested(run_id))):
        return TrainOutcome(stopped=True, summary={"stopped_before_training": True})

    train_result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    if pruning is not None and pruning.pruned:
        return TrainOutcome(stopped=True, pruned=True, summary={"pruned": pruning.pruned})
    if callback.stopped_by_request and trainer.state.global_step < trainer.state.max_steps:
        return TrainOutcome(stopped=True, summary={"stopped_at_step": trainer.state.global_step})
    # Collective under torchrun (each call writes on rank 0 only), so every rank makes them.
    trainer.save_model(str(folder.final_model_dir))
    trainer.save_state()
    output = trainer.predict(data.validation, metric_key_prefix="eval")
    if not distributed.is_main_process():
        return TrainOutcome(stopped=False, summary={})

    report, n_rows = _save_predictions(output, data, folder, config)
    summary = {
        **{k: v for k, v in train_result.metrics.items() if isinstance(v, (int, float))},
        "final_metrics": {
            k: float(v) for k, v in (output.metrics or {}).items() if isinstance(v, (int, float))
        },
        "report": report,
        # What the scores must beat: always answering the validation split's most frequent class.
        "baseline": majority_baseline(
            output.label_ids, list(data.label_names), config.data.f1_average, config.data.pos_label
        ),
        "label_names": list(data.label_names),
        "columns": dict(data.columns),
        "n_train": len(data.train),
        "n_validation": len(data.validation),
        "global_step": trainer.state.global_step,
        "best_model_checkpoint": trainer.state.best_model_checkpoint,
        "best_metric": trainer.state.best_metric,
        "model_dir": str(folder.final_model_dir),
        "prediction_rows": n_rows,
    }
    return TrainOutcome(stopped=False, summary=_jsonable(summary))


def _load_data_and_model(config: RunConfig, store: MetricsStore, run_id: str, seed: int):
    """Tokenizer, tokenized datasets with their labels, and the model with a head for those labels."""
    from trainer_core.data.prepare import prepare_datasets
    from trainer_core.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(config.model)
    data = prepare_datasets(config.data, tokenizer, seed=seed)
    label_names = list(data.label_names)
    if distributed.is_main_process():
        store.add_event(
            run_id,
            "data_ready",
            f"{len(data.train)} training rows, {len(data.validation)} validation rows, {len(label_names)} labels",
            {"n_train": len(data.train), "n_validation": len(data.validation), "labels": label_names},
        )
    model = load_model(
        config.model,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
    )
    return tokenizer, data, model


def _build_trainer(config: RunConfig, training_args, model, tokenizer, data, callback, pruning=None):
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    from trainer_core.metrics import build_compute_metrics

    callbacks: list = [callback] + ([pruning] if pruning is not None else [])
    if config.run.early_stopping_patience is not None:
        callbacks.append(
            EarlyStoppingCallback(
                early_stopping_patience=config.run.early_stopping_patience,
                early_stopping_threshold=config.run.early_stopping_threshold,
            )
        )
    return Trainer(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=build_compute_metrics(
            list(data.label_names), config.data.f1_average, config.data.pos_label
        ),
        callbacks=callbacks,
    )


def _save_predictions(output, data, folder: RunFolder, config: RunConfig):
    """The final model's predictions on the validation split, saved for the confusion matrix and table."""
    from trainer_core.metrics import classification_report, softmax

    label_names = list(data.label_names)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    probabilities = softmax(logits)
    predicted = probabilities.argmax(axis=-1)
    report = classification_report(
        predicted, output.label_ids, label_names, config.data.f1_average, config.data.pos_label
    )
    table = data.raw_validation.to_pandas()
    table["label"] = [label_names[i] for i in output.label_ids]
    table["predicted"] = [label_names[i] for i in predicted]
    table["confidence"] = probabilities.max(axis=-1)
    table["correct"] = table["label"] == table["predicted"]
    for i, name in enumerate(label_names):
        table[f"p_{name}"] = probabilities[:, i]
    table.to_parquet(folder.predictions_file, index=False)
    return report, int(len(table))


# -- what went wrong, in words a user can act on ----------------------------------------------------


def _heartbeat_loop(store: MetricsStore, run_id: str, done: threading.Event) -> None:
    # Beats through model loading, tokenising and long evaluations too, when no training step happens.
    # Each beat also samples the run's processes (CPU, RSS, GPU memory): 2.6 ms of this thread's CPU per
    # sample and its write (median; p95 3.3 ms; torch loaded, two child processes, a shared 2-core box;
    # mostly psutil's walk of /proc for the children), so ~0.05 % of one core at one sample per beat.
    sampler = _resource_sampler()
    while not done.wait(HEARTBEAT_EVERY_S):
        try:
            store.heartbeat(run_id)
            store.checkpoint()
        except Exception:  # noqa: BLE001 - keep beating; a transient lock must not end the run
            logger.warning("heartbeat failed", exc_info=True)
        if sampler is None:
            continue
        try:
            record_sample(store, run_id, sampler.sample())
        except Exception:  # noqa: BLE001 - a missed sample costs a point on a chart, never the run
            logger.warning("resource sample failed", exc_info=True)


def _resource_sampler() -> ResourceSampler | None:
    try:
        # Under torchrun, the agent's tree: every rank of the run, not rank 0 alone.
        return ResourceSampler(distributed.agent_pid())
    except Exception:  # noqa: BLE001 - no /proc (a sandbox): the run trains without resource charts
        logger.warning("resource use will not be sampled", exc_info=True)
        return None


class _SignalFlag:
    """The stop request of a signal: set by the handler, read by the StoreCallback at its next step.

    The handler only stores the signal number. It runs on the main thread between any two bytecodes:
    inside the callback's write transaction a store write fails ("cannot start a transaction within a
    transaction"), and even ``threading.Event.set()`` is unsafe there, since its lock may be held by the
    code the signal interrupted (a storm of signals then nests handlers until RecursionError).
    """

    def __init__(self):
        self.signum: int | None = None

    def handle(self, signum, _frame) -> None:
        self.signum = signum

    def is_set(self) -> bool:
        return self.signum is not None


def _report_signals(store: MetricsStore, run_id: str, flag: _SignalFlag, done: threading.Event) -> None:
    # Writes the signal's event from this thread, on its own connection, outside any other transaction.
    while not flag.is_set():
        # A signal that arrives just before the run ends is still reported: the worker joins this thread.
        if done.wait(0.2) and not flag.is_set():
            return
    try:
        store.add_event(
            run_id, "signal", f"received {signal.Signals(flag.signum).name}; stopping at the next step"
        )
    except Exception:  # noqa: BLE001 - the stop itself does not depend on the event
        logger.warning("could not record the signal", exc_info=True)


def run_worker(
    run_id: str, run_dir: str, store_url: str, attempt: int = 0, resume_from: str | None = None
) -> int:
    """Run one attempt of a run (or one rank of it, under torchrun) and record how it ended. Returns the
    process exit code."""
    store = MetricsStore(store_url, auto_checkpoint=False)
    folder = RunFolder(run_dir)
    stop_flag = _SignalFlag()
    # SIGTERM/SIGINT become a graceful stop: checkpoint at the next step, then exit as "stopped".
    signal.signal(signal.SIGTERM, stop_flag.handle)
    signal.signal(signal.SIGINT, stop_flag.handle)
    distributed.die_with_agent()
    main = distributed.is_main_process()
    if main:
        try:
            folder.reserve_outcome(attempt)
        except OSError:
            logger.warning("could not reserve the outcome file", exc_info=True)
    # Only the attempt the launcher queued may start: a run stopped or resumed meanwhile has a new owner.
    # (Under torchrun the agent claimed it before starting any rank.)
    if not distributed.in_group() and not store.record_worker(
        run_id, attempt, os.getpid(), socket.gethostname(), status=RUNNING
    ):
        print(f"run {run_id} attempt {attempt} is no longer queued; not starting", file=sys.stderr)
        return 0
    done = threading.Event()
    reporter = None
    if main:
        threading.Thread(target=_heartbeat_loop, args=(store, run_id, done), daemon=True).start()
        reporter = threading.Thread(
            target=_report_signals, args=(store, run_id, stop_flag, done), daemon=True
        )
        reporter.start()
    config, fields, code = None, {}, 0
    try:
        config = load_config(folder.config_file)
        if main:
            where = f", resuming from {Path(resume_from).name}" if resume_from else ""
            who = f"worker {os.getpid()}" + (
                f" (rank 0 of {distributed.world_size()})" if distributed.in_group() else ""
            )
            store.add_event(
                run_id,
                "worker_start",
                f"{who} started (attempt {attempt}){where}",
                # What the queue gave this worker, as the process sees it.
                {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")},
            )
        outcome = train(
            config, store, run_id, run_dir, resume_from_checkpoint=resume_from, stop_event=stop_flag
        )
        status, fields["summary"] = ended_status(store, run_id, outcome, main), outcome.summary
    except ConfigError as exc:
        status, code = FAILED, 2
        fields.update(error=str(exc), traceback=traceback.format_exc())
        print(f"error: {exc}", file=sys.stderr)
    except BaseException as exc:  # noqa: BLE001 - record every way a run can die, then re-report
        status, code = FAILED, 1
        fields.update(error=describe_error(exc, config), traceback=traceback.format_exc())
        print_quietly(fields["traceback"])
    finally:
        done.set()
        distributed.leave_group()
    if distributed.in_group() and status == FAILED:
        # The agent records a group's failure: it sees every rank's exit and names the rank that caused
        # it (a rank that lost its peer fails too, with only "Connection reset by peer" to say).
        distributed.leave_rank_error(fields["error"], fields.get("traceback"))
        return code
    if not main:
        return code
    reporter.join(timeout=10)  # the signal's event goes in before the outcome
    code = record_outcome(store, folder, run_id, attempt, status, code, fields)
    start_successors(store_url, run_dir, run_id)
    return code


def parse_worker_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's options (the agent reads the same ones from torchrun's command line)."""
    parser = argparse.ArgumentParser(prog="python -m trainer_core.runs.worker", description=__doc__)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--store", required=True, help="metrics store URL")
    parser.add_argument("--attempt", type=int, default=0, help="the attempt the launcher claimed")
    parser.add_argument("--resume-from", help="the checkpoint folder to continue from")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_worker_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_worker(
        args.run_id, args.run_dir, args.store, attempt=args.attempt, resume_from=args.resume_from
    )


if __name__ == "__main__":
    exit_code = main()
    if distributed.in_group():
        # A rank has nothing left to write, and the interpreter's teardown of torch and transformers kept
        # it alive for 6-13 s after its last line (two CPU ranks under load), holding up the agent and,
        # when a rank failed, the run's failure. Everything it wrote is closed or committed.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
    sys.exit(exit_code)
