"""Checks that a run can start, done before a worker is spawned so mistakes surface at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer_core.config import RunConfig
from trainer_core.errors import ConfigError


def preflight(config: RunConfig) -> dict[str, Any]:
    """Load the checkpoint's config, its tokenizer and a preview of the data; raise on the first problem.

    Returns:
        ``{"checkpoint": inspect_checkpoint(...), "data": preview_dataset(...)}`` for display.
    Raises:
        ConfigError: the checkpoint or tokenizer cannot be found or read, the data cannot be read, a
            named column is missing, the max length exceeds what the checkpoint takes, or the F1 choice
            does not fit the labels (a positive class the data lacks, a binary F1 of more than 2 classes).
    """
    from trainer_core.data.prepare import preview_dataset
    from trainer_core.metrics import resolve_f1
    from trainer_core.models import inspect_checkpoint, load_tokenizer

    checkpoint = inspect_checkpoint(
        config.model.model_name_or_path, trust_remote_code=config.model.trust_remote_code
    )
    if not checkpoint.get("ok"):
        raise ConfigError("model_name_or_path", checkpoint.get("error") or "the checkpoint cannot be loaded")
    check_max_length(config.data.max_seq_length, checkpoint)
    # The worker's first step; loading it here (well under a second for a local tokenizer) catches a
    # folder without tokenizer files or a damaged tokenizer.json before a run folder exists.
    load_tokenizer(config.model)
    data = preview_dataset(config.data, checkpoint=None, n_rows=5, seed=config.training.seed)
    if not data.get("ok"):
        error = data.get("error") or {}
        raise ConfigError(error.get("field"), error.get("message") or "the dataset cannot be read")
    # label_counts lists every class name in class-id order: the names the worker's metrics will get.
    resolve_f1(list(data.get("label_counts") or {}), config.data.f1_average, config.data.pos_label)
    return {"checkpoint": checkpoint, "data": data}


def check_max_length(max_seq_length: int | None, checkpoint: Mapping[str, Any]) -> None:
    """Raise ConfigError when ``max_seq_length`` exceeds the checkpoint's ``max_position_embeddings``.

    Args:
        max_seq_length: the data argument of that name.
        checkpoint: ``inspect_checkpoint``'s dict (a checkpoint that did not say its limit passes).
    """
    limit = checkpoint.get("max_position_embeddings")
    if limit and (max_seq_length or 0) > limit:
        raise ConfigError(
            "max_seq_length",
            f"{max_seq_length} is longer than this checkpoint's {limit} positions; use {limit} or less",
        )
