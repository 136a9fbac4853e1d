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
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from trainer_core.config import RunConfig, load_config
from trainer_core.errors import ConfigError
from trainer_core.runs.folder import CHECKPOINTS, CONFIG_FILE, MODEL, PREDICTIONS, latest_checkpoint
from trainer_core.tracking.status import COMPLETED, FAILED, RUNNING, STOPPED
from trainer_core.tracking.store import MetricsStore

logger = logging.getLogger("trainer_core.runs.worker")

HEARTBEAT_EVERY_S = 5.0


@dataclasses.dataclass
class TrainOutcome:
    stopped: bool
    summary: dict[str, Any]


def train(
    config: RunConfig,
    store: MetricsStore,
    run_id: str,
    run_dir: str | os.PathLike,
    resume_from_checkpoint: str | None = None,
    stop_event: threading.Event | None = None,
) -> TrainOutcome:
    """Fine-tune, evaluate and predict as ``config`` says, streaming everything into ``store``."""
    import pandas as pd
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, set_seed

    from trainer_core.runs.callback import StoreCallback
    from trainer_core.data.prepare import prepare_datasets
    from trainer_core.metrics import build_compute_metrics, classification_report, softmax
    from trainer_core.models import load_model, load_tokenizer

    run_dir = Path(run_dir)
    training_args = dataclasses.replace(config.training, output_dir=str(run_dir / CHECKPOINTS))

    # The seed is set before the model is built so the fresh classification head is reproducible.
    set_seed(training_args.seed)
    tokenizer = load_tokenizer(config.model)
    data = prepare_datasets(config.data, tokenizer, seed=training_args.seed)
    label_names = list(data.label_names)
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

    callback = StoreCallback(store, run_id)
    callbacks: list = [callback]
    if config.run.early_stopping_patience is not None:
        callbacks.append(
            EarlyStoppingCallback(
                early_stopping_patience=config.run.early_stopping_patience,
                early_stopping_threshold=config.run.early_stopping_threshold,
            )
        )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=build_compute_metrics(label_names),
        callbacks=callbacks,
    )
    if stop_event is not None:
        _watch_external_stop(stop_event, callback)
    if store.stop_requested(run_id):
        return TrainOutcome(stopped=True, summary={"stopped_before_training": True})

    train_result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    if callback.stopped_by_request and trainer.state.global_step < trainer.state.max_steps:
        return TrainOutcome(stopped=True, summary={"stopped_at_step": trainer.state.global_step})

    trainer.save_model(str(run_dir / MODEL))
    trainer.save_state()

    # Predictions of the final model on the validation split, for the confusion matrix and the table.
    output = trainer.predict(data.validation, metric_key_prefix="eval")
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    probabilities = softmax(logits)
    predicted = probabilities.argmax(axis=-1)
    report = classification_report(predicted, output.label_ids, label_names)
    table = data.raw_validation.to_pandas()
    table["label"] = [label_names[i] for i in output.label_ids]
    table["predicted"] = [label_names[i] for i in predicted]
    table["confidence"] = probabilities.max(axis=-1)
    table["correct"] = table["label"] == table["predicted"]
    for i, name in enumerate(label_names):
        table[f"p_{name}"] = probabilities[:, i]
    table.to_parquet(run_dir / PREDICTIONS, index=False)

    summary = {
        **{k: v for k, v in train_result.metrics.items() if isinstance(v, (int, float))},
        "final_metrics": {
            k: float(v) for k, v in (output.metrics or {}).items() if isinstance(v, (int, float))
        },
        "report": report,
        "label_names": label_names,
        "columns": dict(data.columns),
        "n_train": len(data.train),
        "n_validation": len(data.validation),
        "global_step": trainer.state.global_step,
        "best_model_checkpoint": trainer.state.best_model_checkpoint,
        "best_metric": trainer.state.best_metric,
        "model_dir": str(run_dir / MODEL),
        "data_stats": getattr(data, "stats", None),
        "prediction_rows": int(len(pd.DataFrame(table))),
    }
    return TrainOutcome(stopped=False, summary=_jsonable(summary))


def _watch_external_stop(stop_event: threading.Event, callback) -> None:
    def watch():
        stop_event.wait()
        callback.external_stop = True

    threading.Thread(target=watch, daemon=True, name="external-stop").start()


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _heartbeat_loop(store: MetricsStore, run_id: str, done: threading.Event) -> None:
    # Beats through model loading, tokenising and long evaluations too, when no training step happens.
    while not done.wait(HEARTBEAT_EVERY_S):
        try:
            store.heartbeat(run_id)
            store.checkpoint()
        except Exception:  # noqa: BLE001 - keep beating; a transient lock must not end the run
            logger.warning("heartbeat failed", exc_info=True)


def run_worker(run_id: str, run_dir: str, store_url: str, resume: bool = False) -> int:
    """Run one attempt of a run and record how it ended. Returns the process exit code."""
    store = MetricsStore(store_url, auto_checkpoint=False)
    stop_event = threading.Event()

    def on_signal(signum, _frame):
        # SIGTERM/SIGINT become a graceful stop: checkpoint at the next step, then exit as "stopped".
        store.add_event(
            run_id, "signal", f"received {signal.Signals(signum).name}; stopping at the next step"
        )
        stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    done = threading.Event()
    # A resumed run keeps its first start time: its duration spans every attempt.
    started_at = store.get_run(run_id).get("started_at") or time.time()
    store.update_run(run_id, status=RUNNING, pid=os.getpid(), started_at=started_at, heartbeat_at=time.time())
    threading.Thread(
        target=_heartbeat_loop, args=(store, run_id, done), daemon=True, name="heartbeat"
    ).start()
    checkpoint = None
    try:
        config = load_config(Path(run_dir) / CONFIG_FILE)
        if resume:
            found = latest_checkpoint(run_dir)
            checkpoint = str(found) if found else None
        store.add_event(
            run_id,
            "worker_start",
            f"worker {os.getpid()} started"
            + (f", resuming from {Path(checkpoint).name}" if checkpoint else ""),
        )
        outcome = train(
            config, store, run_id, run_dir, resume_from_checkpoint=checkpoint, stop_event=stop_event
        )
    except ConfigError as exc:
        _finish(store, run_id, FAILED, error=str(exc), traceback=traceback.format_exc())
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:  # noqa: BLE001 - record every way a run can die, then re-report
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, flush=True)
        _finish(store, run_id, FAILED, error=f"{type(exc).__name__}: {exc}", traceback=tb)
        return 1
    finally:
        done.set()
    if outcome.stopped:
        _finish(store, run_id, STOPPED, summary=outcome.summary)
    else:
        _finish(store, run_id, COMPLETED, summary=outcome.summary)
    return 0


def _finish(store: MetricsStore, run_id: str, status: str, **fields: Any) -> None:
    store.finish_run_if_active(run_id, status, stop_requested=0, **fields)
    message = fields.get("error") or status
    store.add_event(run_id, status, f"run {status}" if status != FAILED else f"run failed: {message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer_core.runs.worker", description=__doc__)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--store", required=True, help="metrics store URL")
    parser.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_worker(args.run_id, args.run_dir, args.store, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
