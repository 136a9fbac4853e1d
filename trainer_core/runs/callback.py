"""The TrainerCallback that streams a run into the metrics store and obeys stop requests."""

from __future__ import annotations

import logging
import time

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainer_core.runs.distributed import any_rank
from trainer_core.runs.folder import CHECKPOINT_EVENT
from trainer_core.tracking.store import MetricsStore

logger = logging.getLogger(__name__)


class StoreCallback(TrainerCallback):
    """Records every logged number with its step and epoch, keeps a heartbeat, and stops on request.

    Only the main process writes (``state.is_world_process_zero``), so the callback is correct under
    ``torchrun``. A stop request is read by every process at the same steps and, under distributed
    training, agreed on with an all-reduce, so that all ranks stop at one step and save one checkpoint.

    Args:
        store: where to write.
        run_id: the run being trained.
        heartbeat_every_s: how often the heartbeat (and the run's step/epoch) is refreshed.
        stop_check_every_steps: how often the store is asked whether a stop was requested.
        stop_event: anything with ``is_set()`` (the worker's signal flag): once set, stop as a stop request does.
    """

    def __init__(
        self,
        store: MetricsStore,
        run_id: str,
        heartbeat_every_s: float = 2.0,
        stop_check_every_steps: int = 1,
        stop_event=None,
    ):
        self.store = store
        self.run_id = run_id
        self.heartbeat_every_s = heartbeat_every_s
        self.stop_check_every_steps = max(1, stop_check_every_steps)
        self.stopped_by_request = False
        self.stop_event = stop_event
        self._last_heartbeat = 0.0

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if not state.is_world_process_zero:
            return
        self.store.update_run(
            self.run_id,
            total_steps=int(state.max_steps),
            start_step=int(state.global_step),
            train_began_at=time.time(),
            step=int(state.global_step),
        )
        # Where the Trainer put the model, as it sees it (a GPU run sees only its own GPUs, so "cuda:0"),
        # and its precision: what a user checks first when a run is slower than expected.
        device = str(args.device)
        precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
        self.store.add_event(
            self.run_id,
            "train_begin",
            f"training from step {state.global_step} of {state.max_steps} on {device} ({precision})",
            {
                "max_steps": state.max_steps,
                "num_train_epochs": state.num_train_epochs,
                "device": device,
                "precision": precision,
            },
        )
        self._beat(state, force=True)

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs=None, **kwargs
    ):
        if not state.is_world_process_zero or not logs:
            return
        values = {k: v for k, v in logs.items() if k != "epoch"}
        self.store.log_metrics(
            self.run_id, values, step=int(state.global_step), epoch=state.epoch, touch_run=True
        )
        self._last_heartbeat = time.monotonic()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if state.is_world_process_zero:
            self._beat(state)
        if state.global_step % self.stop_check_every_steps:
            return
        if self._stop_agreed(state):
            self.stopped_by_request = True
            # should_save makes the Trainer write a checkpoint at this very step before it leaves the loop,
            # so a resume continues exactly here.
            control.should_save = True
            control.should_training_stop = True

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if self.stopped_by_request:
            # Leaving mid-epoch still ends the epoch loop; skip its evaluation so eval points stay one per
            # finished epoch and the stop is quick. The resumed run evaluates this epoch when it ends.
            control.should_evaluate = False

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        # Called once the checkpoint folder is written: a later resume that finds none left knows from this
        # event that they were deleted, not never saved.
        if state.is_world_process_zero:
            self.store.add_event(
                self.run_id,
                CHECKPOINT_EVENT,
                f"saved checkpoint-{state.global_step}",
                {"step": int(state.global_step)},
            )

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs):
        if state.is_world_process_zero:
            self._beat(state, force=True)

    def _stop_agreed(self, state: TrainerState) -> bool:
        # Rank 0 asks the store, every rank its own signal flag; one all-reduce makes it one answer, so all
        # ranks leave at the same step and save one checkpoint (a rank left behind would wait forever in
        # its next collective). Measured: ~1 ms per all-reduce for two CPU ranks on gloo, on 2 cores with
        # a load average of 20, against hundreds of ms for a tiny-bert step there.
        wanted = self.stop_event is not None and self.stop_event.is_set()
        if not wanted and state.is_world_process_zero:
            wanted = self.store.stop_requested(self.run_id)
        return any_rank(wanted)

    def _beat(self, state: TrainerState, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_heartbeat < self.heartbeat_every_s:
            return
        self._last_heartbeat = now
        try:
            self.store.heartbeat(self.run_id, step=int(state.global_step), epoch=state.epoch)
        except Exception:  # noqa: BLE001 - a missed heartbeat must never stop training
            logger.warning("heartbeat write failed", exc_info=True)
