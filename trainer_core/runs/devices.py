"""The devices of this machine that runs are scheduled on, and what a run asks of them.

A slot is what one run holds while it trains: one CPU slot on a machine without GPUs (or for a run that
asks for no GPU), or the GPUs it asked for. The inventory is read once from the environment and from
torch; tests build one by hand (``DeviceInventory(gpus=(0, 1))``) and the launcher hands it to every
worker it starts through two variables (``TRAINER_CORE_SLOTS``, ``TRAINER_CORE_GPUS``), so a worker,
which sees only its own GPUs through ``CUDA_VISIBLE_DEVICES``, still schedules its successors on the
whole machine.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence

from trainer_core.errors import ConfigError

SLOTS_ENV = "TRAINER_CORE_SLOTS"
GPUS_ENV = "TRAINER_CORE_GPUS"
# torch gives one training process every core (intra-op threads), so runs sharing cores slow each other
# down about in proportion (BENCHMARKS.md, "queue"): a CPU run gets this many cores, and a machine with
# fewer (this 2-core one) trains one run at a time.
CORES_PER_RUN = 4
# What a CPU run holds; a GPU run holds ``cuda:<id>`` for each GPU it was given.
CPU_SLOT = "cpu"


def gpu_device(index: int) -> str:
    return f"cuda:{index}"


@dataclasses.dataclass(frozen=True)
class DeviceInventory:
    """How many CPU runs fit at once and which GPUs this machine has.

    Args:
        cpu_slots: runs without a GPU that may train at the same time.
        gpus: the ids of this machine's GPUs (as ``CUDA_VISIBLE_DEVICES`` names them).
    """

    cpu_slots: int = 1
    gpus: tuple[int, ...] = ()

    def __post_init__(self):
        if self.cpu_slots < 1:
            raise ConfigError(SLOTS_ENV, f"must be at least 1 (got {self.cpu_slots})")

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> DeviceInventory:
        """The inventory of this machine: the two variables if set, else the cores and torch's GPUs.

        Raises:
            ConfigError: ``TRAINER_CORE_SLOTS`` or ``TRAINER_CORE_GPUS`` is not what it should be.
        """
        environ = os.environ if environ is None else environ
        slots = environ.get(SLOTS_ENV, "").strip()
        if slots:
            try:
                cpu_slots = int(slots)
            except ValueError:
                raise ConfigError(SLOTS_ENV, f"must be a whole number of runs, got {slots!r}") from None
        else:
            cpu_slots = max(1, (os.cpu_count() or 1) // CORES_PER_RUN)
        gpus = environ.get(GPUS_ENV)
        if gpus is None:
            return cls(cpu_slots=cpu_slots, gpus=_torch_gpus())
        try:
            ids = tuple(int(g) for g in gpus.replace(" ", "").split(",") if g)
        except ValueError:
            raise ConfigError(GPUS_ENV, f"must list GPU ids like 0,1 (or be empty), got {gpus!r}") from None
        return cls(cpu_slots=cpu_slots, gpus=ids)

    def to_env(self) -> dict[str, str]:
        """The variables that give a child process this same inventory."""
        return {SLOTS_ENV: str(self.cpu_slots), GPUS_ENV: ",".join(map(str, self.gpus))}

    def default_gpus(self) -> int:
        """GPUs a run asks for when it does not say: one on a GPU machine, none on a CPU-only one."""
        return 1 if self.gpus else 0

    def check_request(self, num_gpus: int | None) -> int:
        """The number of GPUs a run will ask for. Raises ConfigError (field ``num_gpus``) if it never fits."""
        if num_gpus is None:
            return self.default_gpus()
        if num_gpus < 0:
            raise ConfigError("num_gpus", f"must be 0 or more (got {num_gpus})")
        if num_gpus > len(self.gpus):
            have = f"{len(self.gpus)} GPU{'' if len(self.gpus) == 1 else 's'}" if self.gpus else "no GPU"
            raise ConfigError(
                "num_gpus",
                f"asks for {num_gpus} GPU{'' if num_gpus == 1 else 's'} but this machine has {have}: "
                f"ask for at most {len(self.gpus)}",
            )
        return num_gpus

    def fit(self, num_gpus: int, held: Sequence[Sequence[str]]) -> list[str] | None:
        """The devices a run asking ``num_gpus`` gets beside the runs holding ``held``, or None if it must wait."""
        taken = [device for devices in held for device in devices]
        if num_gpus == 0:
            return [CPU_SLOT] if taken.count(CPU_SLOT) < self.cpu_slots else None
        free = [gpu_device(g) for g in self.gpus if gpu_device(g) not in taken]
        return free[:num_gpus] if len(free) >= num_gpus else None

    def overfill(self, num_gpus: int, held: Sequence[Sequence[str]]) -> list[str]:
        """The devices of a run started at once whatever is free (``queue=False``): free GPUs first."""
        fitted = self.fit(num_gpus, held)
        if fitted is not None:
            return fitted
        if num_gpus == 0:
            return [CPU_SLOT]
        taken = {device for devices in held for device in devices}
        ordered = sorted((gpu_device(g) for g in self.gpus), key=lambda d: d in taken)
        return ordered[:num_gpus]

    def describe(self) -> str:
        gpus = f", GPUs {', '.join(map(str, self.gpus))}" if self.gpus else ""
        return f"{self.cpu_slots} CPU slot{'' if self.cpu_slots == 1 else 's'}{gpus}"


def visible_devices(devices: Sequence[str]) -> str:
    """``CUDA_VISIBLE_DEVICES`` for a worker holding ``devices`` (empty: a CPU run sees no GPU)."""
    return ",".join(d.split(":", 1)[1] for d in devices if d.startswith("cuda:"))


def _torch_gpus() -> tuple[int, ...]:
    # Counted by torch in this process, so an outer CUDA_VISIBLE_DEVICES (a shared machine giving this
    # user GPUs 2 and 3) is respected: the ids are then its positions, as the child will see them.
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if "torch" not in sys.modules and not os.path.exists("/proc/driver/nvidia/gpus"):
        return ()  # no NVIDIA driver: skip importing torch (about 1 s) in the CLI and the dashboard
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no CUDA build, no driver: a CPU machine
        count = 0
    if visible and count:
        # The child gets CUDA_VISIBLE_DEVICES=<our id>, so our ids must be the outer names.
        names = [v for v in visible.split(",") if v.strip()]
        return tuple(int(n) for n in names[:count] if n.strip().isdigit()) or tuple(range(count))
    return tuple(range(count))
