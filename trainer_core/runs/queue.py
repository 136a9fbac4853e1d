"""The run queue: which waiting run starts next, on which devices, and why the others wait.

There is no daemon. Whoever frees a slot or may find one free starts what fits: ``launch`` itself, a
worker as it ends (completed, failed, stopped), the launcher's supervisor thread when its worker dies,
and ``Launcher.reconcile`` (run by every CLI command and on the dashboard's refreshes), which also
fails the runs of workers that died unseen (SIGKILL, a machine restart) and so frees their slots.
After a restart of the machine the queue resumes at the first CLI command or dashboard visit.

The queue is strict: runs start in order (priority first, higher sooner; then launch order), and a run
that does not fit holds the ones behind it, so a run asking for two GPUs is never starved by a stream
of one-GPU runs. Every start claims its devices in one store transaction (``MetricsStore.claim_slot``).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer_core.errors import RunNotFoundError, RunStateError
from trainer_core.runs.devices import CPU_SLOT, DeviceInventory
from trainer_core.runs.ray_executor import queue_entries as ray_queue_entries
from trainer_core.tracking.status import STOPPED
from trainer_core.tracking.store import MetricsStore

logger = logging.getLogger(__name__)

MOVES = ("up", "down", "top", "bottom")


def choose_next(
    inventory: DeviceInventory,
) -> Callable[[list[dict], list[list[str]]], tuple[str, list[str]] | None]:
    """The head of the queue with the devices it gets, if it fits now (for ``claim_slot``)."""

    def choose(waiting: list[dict], held: list[list[str]]) -> tuple[str, list[str]] | None:
        if not waiting:
            return None
        head = waiting[0]
        devices = inventory.fit(_gpus_of(head, inventory), held)
        return None if devices is None else (head["id"], devices)

    return choose


def choose_now(
    inventory: DeviceInventory, run_id: str
) -> Callable[[list[dict], list[list[str]]], tuple[str, list[str]] | None]:
    """``run_id`` with devices whatever is free: today's all-at-once start (``queue=False``)."""

    def choose(waiting: list[dict], held: list[list[str]]) -> tuple[str, list[str]] | None:
        run = next((r for r in waiting if r["id"] == run_id), None)
        return None if run is None else (run_id, inventory.overfill(_gpus_of(run, inventory), held))

    return choose


def why_waiting(
    waiting: list[dict], held: list[list[str]], inventory: DeviceInventory
) -> list[dict[str, Any]]:
    """Each waiting run's place (1 = next), how many are ahead, and why it waits, in words."""
    entries = []
    for position, run in enumerate(waiting, start=1):
        if position > 1:
            reason = f"{position - 1} ahead"
        else:
            reason = _head_reason(_gpus_of(run, inventory), held, inventory)
        entries.append({**run, "position": position, "ahead": position - 1, "reason": reason})
    return entries


def _head_reason(num_gpus: int, held: list[list[str]], inventory: DeviceInventory) -> str:
    if inventory.fit(num_gpus, held) is not None:
        return "a slot is free: starts at the next check"
    taken = [d for devices in held for d in devices]
    if num_gpus == 0:
        return f"waiting for a free slot ({taken.count(CPU_SLOT)} of {inventory.cpu_slots} in use)"
    free = len(inventory.gpus) - len({d for d in taken if d != CPU_SLOT})
    if num_gpus == 1:
        return "waiting for a GPU"
    return f"waiting for {num_gpus} GPUs ({max(free, 0)} free)"


def reordered(
    waiting: list[dict], run_id: str, move: str | None = None, priority: int | None = None
) -> list[tuple[str, int]]:
    """The queue after moving ``run_id`` (``up``/``down``/``top``/``bottom``) or giving it ``priority``.

    Returns every waiting run's id and priority in the new order. A move past a run of another priority
    takes that run's priority, so the order the store sorts by (priority, then place) is the order
    the user asked for.
    """
    order = [(r["id"], int(r["priority"])) for r in waiting]
    index = next((i for i, (rid, _) in enumerate(order) if rid == run_id), None)
    if index is None:
        raise RunStateError(f"run {run_id} is not waiting in the queue (it started, ended, or was cancelled)")
    if priority is not None:
        order[index] = (run_id, int(priority))
        # Stable: among equal priorities the launch order (the current order) stays.
        return sorted(order, key=lambda item: -item[1])
    target = {"up": index - 1, "down": index + 1, "top": 0, "bottom": len(order) - 1}[move]
    target = min(max(target, 0), len(order) - 1)
    if target == index:
        return order  # already first (or last)
    order.pop(index)
    # The run passed is now right behind (moving up) or right ahead (moving down): share its priority.
    passed = order[target][1] if target < index else order[target - 1][1]
    order.insert(target, (run_id, passed))
    return order


def _gpus_of(run: dict, inventory: DeviceInventory) -> int:
    return inventory.default_gpus() if run.get("num_gpus") is None else int(run["num_gpus"])


class RunQueue:
    """This host's queue in a store: start what fits, list it, move and cancel its runs.

    Args:
        store: the metrics store the runs are recorded in.
        inventory: this machine's devices.
        host: the machine whose queue this is (default: this one).
    """

    def __init__(self, store: MetricsStore, inventory: DeviceInventory, host: str | None = None):
        self.store = store
        self.inventory = inventory
        self.host = host or socket.gethostname()

    def start_what_fits(self, spawn: Callable[[dict[str, Any]], None]) -> list[str]:
        """Claim devices for waiting runs in order while they fit; ``spawn(run)`` starts each worker.

        Returns the ids started.
        """
        started = []
        while (run := self.store.claim_slot(self.host, choose_next(self.inventory))) is not None:
            spawn(run)
            started.append(run["id"])
        return started

    def start_now(self, run_id: str, spawn: Callable[[dict[str, Any]], None]) -> bool:
        """Start a waiting run at once, over-filling its devices if need be (today's behaviour)."""
        run = self.store.claim_slot(self.host, choose_now(self.inventory, run_id))
        if run is not None:
            spawn(run)
        return run is not None

    def entries(self) -> list[dict[str, Any]]:
        """The waiting runs in the order they start: id, name, priority, position, ahead, reason; then
        the queued Ray runs, which wait for the cluster, not for this machine (position None)."""
        return why_waiting(*self.store.queue_state(self.host), self.inventory) + ray_queue_entries(self.store)

    def entry(self, run_id: str) -> dict[str, Any] | None:
        """One waiting run's entry, or None when it is not waiting."""
        return next((e for e in self.entries() if e["id"] == run_id), None)

    def forecast(self, num_gpus: int | None = None) -> str:
        """When a run launched now would start: ``"starts now"`` or why it would wait."""
        waiting, held = self.store.queue_state(self.host)
        gpus = self.inventory.check_request(num_gpus)
        if not waiting and self.inventory.fit(gpus, held) is not None:
            return "starts now"
        probe = {"id": "", "name": "", "priority": 0, "num_gpus": gpus}
        if not waiting:
            return "queued: " + _head_reason(gpus, held, self.inventory)
        return f"queued: {len(waiting)} ahead, " + _head_reason(
            _gpus_of({**probe, **waiting[0]}, self.inventory), held, self.inventory
        )

    def move(self, run_id: str, move: str | None = None, priority: int | None = None) -> None:
        """Move a waiting run ``up``/``down``/``top``/``bottom``, or give it ``priority`` (higher sooner).

        Raises:
            RunStateError: the run is not waiting (it started, ended, or is queued on another host).
        """
        if move is None and priority is None:
            raise ValueError("give a move or a priority")
        if move is not None and move not in MOVES:
            raise ValueError(f"move must be one of {', '.join(MOVES)}, not {move!r}")
        self.store.reorder_queue(self.host, lambda waiting: reordered(waiting, run_id, move, priority))

    def cancel(self, run_id: str) -> None:
        """Take a waiting run out of the queue; it is recorded as stopped and can be resumed later.

        Raises:
            RunStateError: it is not waiting (started meanwhile: stop it instead).
            RunNotFoundError: no such run.
        """
        if not self.store.leave_queue(run_id, STOPPED, "removed from the queue before it started"):
            if not self.store.has_run(run_id):
                raise RunNotFoundError(run_id)
            raise RunStateError(f"run {run_id} is not waiting in the queue; stop it instead")


class QueueScheduling:
    """The launcher's side of the queue (mixed into ``Launcher``: uses its ``store``, ``_inventory``
    and ``_spawn``): when a worker starts, and on which devices."""

    @property
    def run_queue(self) -> RunQueue:
        """This machine's queue: its entries, when a new run would start, moving and cancelling runs."""
        if self._inventory is None:
            self._inventory = DeviceInventory.detect()  # on first use: it may import torch
        return RunQueue(self.store, self._inventory)

    def start_queued(self) -> list[str]:
        """Start the waiting runs that fit in the free slots, in queue order; returns their ids."""
        return self.run_queue.start_what_fits(self._spawn_claimed)

    def _start_queued_quietly(self) -> None:
        # After a run ended: a store that refuses writes now leaves the queue to the next reconcile.
        try:
            self.start_queued()
        except Exception:  # noqa: BLE001 - sqlite3.Error, a damaged store, an unusable inventory
            logger.warning("could not start the next queued runs", exc_info=True)

    def _spawn_claimed(self, run: dict[str, Any]) -> None:
        """Start the worker of a run that was just given its devices by the queue."""
        checkpoint = Path(run["resume_from"]) if run.get("resume_from") else None
        self._spawn(run["id"], run["attempt"], checkpoint, devices=run["devices"])
