"""Resuming a stopped or failed run: which checkpoint it continues from, and the new attempt.

A mixin of :class:`~trainer_core.runs.launcher.Launcher` (it uses the launcher's store, run folders,
queue and Ray submission).
"""

from __future__ import annotations

from typing import Any

from trainer_core.errors import RunStateError
from trainer_core.runs.folder import CHECKPOINT_EVENT
from trainer_core.runs.ray_executor import is_ray_run
from trainer_core.tracking.queue_rows import is_waiting
from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED, PRUNED, RESUMABLE_STATUSES


class Resuming:
    """``resume_plan`` and ``resume`` of the launcher."""

    def resume_plan(self, run_id: str) -> dict[str, Any]:
        """What :meth:`resume` would do, for a confirmation dialog.

        Returns:
            ``{"checkpoint": name or None, "step": int, "skipped": [{"name", "problem"}],
            "checkpoints_lost": bool, "message": str}``; ``checkpoints_lost`` is True when the run saved
            checkpoints but none is left, so resuming means starting again from step 0 (and clearing
            its curves), which :meth:`resume` does only with ``restart_from_scratch=True``.
        Raises:
            RunStateError: the run is active or completed.
        """
        run = self.store.get_run(run_id)
        if is_waiting(run):
            raise RunStateError(
                f"run {run_id} is waiting in the queue; it starts by itself when a slot frees"
            )
        if run["status"] in ACTIVE_STATUSES:
            raise RunStateError(f"run {run_id} is {run['status']}; stop it before resuming")
        if run["status"] == COMPLETED:
            raise RunStateError(f"run {run_id} already completed; clone it to train further")
        if run["status"] == PRUNED:
            raise RunStateError(f"run {run_id} is a sweep trial its pruner ended early; clone it to train it")
        checkpoint, skipped = self.folder(run_id).latest_checkpoint()
        skipped = [{"name": path.name, "problem": problem} for path, problem in skipped]
        saved_before = self.store.has_event(run_id, CHECKPOINT_EVENT)
        lost = checkpoint is None and (saved_before or bool(skipped))
        if checkpoint is not None:
            message = f"resuming from {checkpoint.name}"
        elif lost:
            message = (
                "restarting from step 0: the run saved checkpoints, but none is left that can be resumed"
            )
        else:
            message = "restarting from the beginning (no checkpoint was saved)"
        if skipped:
            message += "; skipped incomplete " + ", ".join(f"{s['name']} ({s['problem']})" for s in skipped)
        return {
            "checkpoint": checkpoint.name if checkpoint else None,
            "path": checkpoint,
            "step": int(checkpoint.name.split("-")[-1]) if checkpoint else 0,
            "skipped": skipped,
            "checkpoints_lost": lost,
            "message": message,
        }

    def resume(self, run_id: str, restart_from_scratch: bool = False) -> str:
        """Continue a stopped or failed run from its newest complete checkpoint; steps and series carry on.

        Checkpoints cut off mid-write are skipped (an event says which and why). Without a checkpoint (a
        run stopped or failed before its first save) the run starts again from step 0 and its earlier
        points are cleared; if it did save checkpoints and they are gone, that needs
        ``restart_from_scratch=True``.

        Raises:
            RunStateError: the run is active or completed, its checkpoints are gone and
                ``restart_from_scratch`` is False, or another launcher resumed it meanwhile.
        """
        plan = self.resume_plan(run_id)
        if plan["checkpoints_lost"] and not restart_from_scratch:
            raise RunStateError(
                f"run {run_id} saved checkpoints, but none is left that can be resumed"
                + (f" ({plan['message'].split('; ', 1)[1]})" if plan["skipped"] else "")
                + "; resuming would start again from step 0 and clear its curves. "
                "Confirm with restart_from_scratch=True (CLI: resume --from-scratch)."
            )
        step = plan["step"]
        on_ray = is_ray_run(self.store.get_run(run_id))
        attempt = self.store.claim_attempt(
            run_id,
            from_statuses=RESUMABLE_STATUSES,
            stop_requested=0,
            error=None,
            traceback=None,
            finished_at=None,
            summary=None,
            step=step,
            resume_from=str(plan["path"]) if plan["path"] else None,
            # A Ray run holds no local slot, and its previous job's end must not end this attempt.
            **({"devices": [], "ray_job_id": None} if on_ray else {}),
        )
        if attempt is None:
            raise RunStateError(f"run {run_id} was resumed or changed by someone else meanwhile")
        # Points logged after the checkpoint belong to a timeline the resumed run replays.
        self.store.delete_points_after(run_id, step)
        for skipped in plan["skipped"]:
            self.store.add_event(
                run_id,
                "checkpoint_skipped",
                f"skipped {skipped['name']}: {skipped['problem']} (cut off while being written)",
                skipped,
            )
        self.store.add_event(run_id, "resumed", plan["message"])
        if on_ray:
            self._submit_to_ray(run_id, attempt, plan["path"])
        else:
            self.start_queued()  # back in the queue: it starts now if a slot is free
        return run_id
