"""What a run's processes use: CPU, memory and GPU memory, sampled by the worker's heartbeat thread.

A sample covers the worker and every process below it (dataloader workers, and the ranks of a later
``torchrun`` launch). It is stored as ordinary metric points under the store's reserved ``system/``
prefix (``is_system_series``), at the run's current step and the sample's wall time, so the rollups,
downsampling and the delete of a resume apply to it unchanged and no schema change was needed.

The series, and what each one means (the Run page's legend and captions read it from here):

- ``system/cpu_percent``: CPU use summed over the process tree, in percent of one core (200 = two
  cores busy), averaged since the previous sample;
- ``system/rss_mb``: resident memory summed over the tree (pages a forked child still shares with its
  parent are counted in both, as ``top`` does);
- ``system/gpu<i>_{allocated,reserved,peak}_mb``: on each CUDA device the worker uses, the memory its
  tensors hold, what PyTorch's caching allocator holds, and the allocator's peak so far. Only the worker's
  own allocations: per-process GPU memory of its children needs NVML, which is not installed.
"""

from __future__ import annotations

import sys
from typing import Any

from trainer_core.tracking.status import SYSTEM_PREFIX, is_system_series
from trainer_core.tracking.store import MetricsStore

CPU_PERCENT = SYSTEM_PREFIX + "cpu_percent"
RSS_MB = SYSTEM_PREFIX + "rss_mb"
_GPU_KINDS = {"allocated": "allocated", "reserved": "reserved", "peak": "peak allocated"}
_MB = 1024 * 1024


def gpu_key(device: int, kind: str) -> str:
    """The series of one CUDA device's memory: ``kind`` is allocated, reserved or peak."""
    return f"{SYSTEM_PREFIX}gpu{device}_{kind}_mb"


def describe_system_series(key: str) -> tuple[str, str]:
    """(label, unit) of a resource series, for legends and captions; unit is ``%`` or ``MB``."""
    name = key.removeprefix(SYSTEM_PREFIX)
    # Short, for a legend; every series is a sum over the worker and its children, said once by the page.
    if key == CPU_PERCENT:
        return "CPU, % of one core", "%"
    if key == RSS_MB:
        return "RSS", "MB"
    if name.startswith("gpu") and name.endswith("_mb"):
        device, _, kind = name[3 : -len("_mb")].partition("_")
        if device.isdigit() and kind in _GPU_KINDS:
            return f"GPU {device} {_GPU_KINDS[kind]}", "MB"
    return name, "MB" if name.endswith("_mb") else ""


class ResourceSampler:
    """Samples one process tree; keep one per worker, so CPU use is measured between two samples.

    Args:
        pid: the root of the tree (default: this process).
    """

    def __init__(self, pid: int | None = None):
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid)
        # psutil's cpu_percent(None) measures since the previous call on the same Process object, so the
        # objects are kept between samples. A child's first sample reads 0 (nothing to measure from yet):
        # the price of using psutil's own arithmetic, small next to a child's life (an epoch, a run).
        self._known: dict[int, Any] = {}
        self.sample()

    def sample(self) -> dict[str, float]:
        """The tree's ``system/...`` values now (GPU ones only where this process uses CUDA)."""
        psutil = self._psutil
        try:
            tree = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:  # the worker itself is gone: nothing left to measure
            return {}
        known: dict[int, Any] = {}
        cpu = rss = 0.0
        for proc in tree:
            kept = self._known.get(proc.pid)
            proc = kept if kept is not None and kept == proc else proc  # == compares pid and start time
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
            except psutil.Error:  # exited between the listing and the read
                continue
            known[proc.pid] = proc
        self._known = known
        return {CPU_PERCENT: cpu, RSS_MB: rss / _MB, **gpu_memory_mb()}


def gpu_memory_mb() -> dict[str, float]:
    """This process's CUDA memory per device it uses; empty without torch, CUDA or any allocation yet."""
    # Never imports torch (a heartbeat thread must not take the import lock from the training thread)
    # and never initialises CUDA: only a process that already uses the GPU is measured.
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return {}
    out: dict[str, float] = {}
    for device in range(torch.cuda.device_count()):
        reserved = torch.cuda.memory_reserved(device)
        if not reserved:  # a device this run does not use
            continue
        out[gpu_key(device, "reserved")] = reserved / _MB
        out[gpu_key(device, "allocated")] = torch.cuda.memory_allocated(device) / _MB
        out[gpu_key(device, "peak")] = torch.cuda.max_memory_allocated(device) / _MB
    return out


def record_sample(store: MetricsStore, run_id: str, sample: dict[str, float]) -> int:
    """Write a sample as points at the run's current step and now; returns how many were written."""
    values = {k: v for k, v in sample.items() if is_system_series(k)}
    if not values:
        return 0
    run = store.get_run(run_id)  # the step the callback last wrote: samples line up with the curves
    return store.log_metrics(run_id, values, step=int(run.get("step") or 0), epoch=run.get("epoch"))
