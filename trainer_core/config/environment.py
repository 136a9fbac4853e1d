"""Checks that this machine can run a config: the hardware and the optional packages its options need.

TrainingArguments accepts most of these options anywhere; the Trainer fails only when it builds the
optimizer, the trackers or the mixed-precision scaler, a minute into a run that has already left a run
folder behind. Each check asks the library that would fail (transformers' ``is_*_available``
helpers, ``Trainer.get_optimizer_cls_and_kwargs``, ``get_available_reporting_integrations``) rather
than keeping a list of its own.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Sequence
from typing import Any

from trainer_core.config.args import _default_training_dict
from trainer_core.errors import ConfigError

_PRECISION = ("fp16", "fp16_full_eval", "bf16", "bf16_full_eval")


def check_hardware(v: dict[str, Any]) -> None:
    """Mixed precision, tf32, torch.compile and the process count against the devices present (before
    TrainingArguments)."""
    check_num_processes(v.get("num_processes"), use_cpu=bool(v.get("use_cpu")))
    if not any(v.get(k) for k in (*_PRECISION, "tf32", "torch_compile")):
        return  # skip importing torch's device helpers for the common case
    from transformers.utils import is_torch_bf16_gpu_available, is_torch_tf32_available

    cuda = _cuda_available()
    for key in ("fp16", "fp16_full_eval"):
        if v.get(key) and not cuda:
            raise ConfigError(key, "fp16 mixed precision needs a CUDA GPU and none is available; turn it off")
    for key in ("bf16", "bf16_full_eval"):
        # The same condition TrainingArguments raises on, with a message that says what to change.
        if v.get(key) and not v.get("use_cpu") and not is_torch_bf16_gpu_available():
            raise ConfigError(
                key,
                "bf16 needs a GPU with bfloat16 support (NVIDIA Ampere or newer) and none is available; "
                "turn it off, or turn on use_cpu to train in bfloat16 on the CPU (slow)",
            )
    if v.get("tf32") and not is_torch_tf32_available():
        raise ConfigError(
            "tf32", "tf32 needs an NVIDIA Ampere or newer GPU and none is available; turn it off"
        )
    backend = v.get("torch_compile_backend") or "inductor"
    if v.get("torch_compile") and backend == "inductor" and not cuda and not _cxx_compiler():
        raise ConfigError(
            "torch_compile",
            "torch.compile on the CPU needs a C++ compiler (g++ or clang++) and none is on PATH; "
            "turn torch_compile off or install a compiler",
        )


def check_num_processes(
    num_processes: int | None, use_cpu: bool = False, devices: Sequence[int] | None = None
) -> None:
    """No more processes than the GPUs a run is given (``devices``, else all visible ones) or, training
    on the CPU, than its cores: a second process on one GPU or core only competes. (At least 1 is
    ``checks.check_numbers``' rule.)"""
    if num_processes is None or num_processes <= 1:
        return
    gpus = 0 if use_cpu else (len(devices) if devices is not None else _cuda_device_count())
    if gpus and num_processes > gpus:
        given = "it was given" if devices is not None else "on this machine"
        raise ConfigError(
            "num_processes",
            f"{num_processes} processes need {num_processes} GPUs and {gpus} {given}; use at most {gpus} "
            "(one process per GPU)",
        )
    cores = os.cpu_count() or 1
    if not gpus and num_processes > cores:
        raise ConfigError(
            "num_processes",
            f"{num_processes} CPU processes on {cores} cores would only compete; use at most {cores}",
        )


def _cuda_device_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - a broken torch install means "no GPU" here
        return 0


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken torch install means "no GPU" here
        return False


def _cxx_compiler() -> bool:
    return any(shutil.which(c) for c in ("c++", "g++", "clang++"))


def check_packages(v: dict[str, Any]) -> None:
    """Options that need a package which is not installed (before TrainingArguments)."""
    if v.get("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(
            "deepspeed", "needs the deepspeed package, which is not installed; leave deepspeed empty"
        )


def check_training_packages(training: Any) -> None:
    """The optimizer and trackers of a parsed TrainingArguments can be built on this machine."""
    _check_optimizer(training)
    _check_trackers(training)


def _check_optimizer(training: Any) -> None:
    optim = getattr(training.optim, "value", training.optim)
    default = _default_training_dict()["optim"]
    if optim == default:
        return  # plain torch AdamW: nothing to probe (and importing Trainer takes seconds)
    from transformers import Trainer

    try:
        # The lookup Trainer does when it builds the optimizer; it imports the optimizer's package.
        Trainer.get_optimizer_cls_and_kwargs(training)
    except (ImportError, ValueError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            "optim",
            f"optimizer {optim!r} cannot be used on this machine ({detail}); choose {default!r} "
            "(the default) or install the package it needs",
        ) from exc


def _check_trackers(training: Any) -> None:
    from transformers.integrations import INTEGRATION_TO_CALLBACK, get_available_reporting_integrations

    wanted = [r for r in (training.report_to or []) if r not in ("none", "all")]
    if not wanted:
        return
    available = set(get_available_reporting_integrations())
    for name in wanted:
        if name not in INTEGRATION_TO_CALLBACK:
            raise ConfigError(
                "report_to",
                f"{name!r} is not a tracker transformers can report to; use 'none' (this dashboard "
                f"records every run itself) or one of {', '.join(sorted(INTEGRATION_TO_CALLBACK))}",
            )
        if name not in available:
            raise ConfigError(
                "report_to",
                f"reporting to {name!r} needs its Python package, which is not installed; set report_to "
                f"to 'none' (this dashboard records every run itself) or `pip install {name.replace('_', '-')}`",
            )
