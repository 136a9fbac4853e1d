"""Checkpoints: resolve a name, load its tokenizer and a sequence-classification model, inspect it cheaply.

A checkpoint name is one of three kinds, as in ``run_glue.py``'s ``model_name_or_path``:

- a built-in (``builtin:minilm-l6``, ``builtin:tiny-bert``), available offline;
- a local folder written by ``save_pretrained`` (e.g. a finished run's output);
- a Hugging Face Hub id, loaded (or taken from the local cache) by transformers.

Every failure a user can fix becomes a :class:`ConfigError` naming the field and what to do.
transformers is imported inside the functions: it takes seconds to import, and the dashboard imports
this module for :func:`inspect_checkpoint` long before anything is trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer_core import assets as builtins
from trainer_core.assets import BUILTIN_MODELS
from trainer_core.config import ModelArguments, looks_like_path
from trainer_core.errors import ConfigError
from trainer_core.hub_errors import checkpoint_load_error, hub_offline
from trainer_core.weights import local_parameter_count, safetensors_parameter_count, weights_problem

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

FIELD = "model_name_or_path"
# Files whose presence tells a tokenizer was saved into a folder (fast, WordPiece, BPE, SentencePiece).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")


def checkpoint_kind(name: str) -> str:
    """'builtin', 'local' or 'hub' for a checkpoint name (without checking that it exists)."""
    if builtins.is_builtin(name):
        return "builtin"
    if looks_like_path(name):
        return "local"
    return "hub"


def resolve_checkpoint(name: str, field: str = FIELD, need: str = "model") -> str:
    """Turn a checkpoint name into what ``from_pretrained`` takes.

    Args:
        name: a built-in name, a local folder or a Hub id.
        field: the config field to blame in errors (``tokenizer_name`` when resolving a tokenizer).
        need: ``"model"`` (a local folder must hold a config and intact weights) or ``"tokenizer"``
            (it must hold tokenizer files).
    Returns:
        For a built-in, the absolute path of its folder (for ``builtin:tiny-bert``, the folder of its
        tokenizer: the model itself is built in memory by :func:`load_model`); for a local folder, its
        absolute path; for a Hub id, the id unchanged.
    Raises:
        ConfigError: unknown built-in, missing package, or a local path that is not a usable folder.
    """
    name = (name or "").strip()
    if not name:
        raise ConfigError(field, "choose a checkpoint: a built-in, a local folder or a Hub id")
    kind = checkpoint_kind(name)
    if kind == "builtin":
        return str(builtins.builtin_model_path(name, field))
    if kind == "hub":
        return name
    path = Path(name).expanduser().resolve()
    if not path.exists():
        raise ConfigError(
            field,
            f"folder {name!r} does not exist (looked for {str(path)!r}); give the path of a folder written "
            f"by save_pretrained(), a Hub id, or a built-in ({', '.join(BUILTIN_MODELS)})",
        )
    if not path.is_dir():
        raise ConfigError(field, f"{name!r} is a file; point to the folder that holds it")
    if need == "tokenizer":
        check_tokenizer_folder(path, name, field)
    else:
        check_checkpoint_folder(path, name, field)
    return str(path)


# --------------------------------------------------------------------------------------------------
# local folders: what a complete save_pretrained folder holds (read from headers, never loaded)
# --------------------------------------------------------------------------------------------------

_COMPLETE = "point to a complete save_pretrained folder (a finished run's model/ or a checkpoint-N/ folder)"


def check_checkpoint_folder(path: Path, name: str, field: str = FIELD) -> None:
    """A local checkpoint folder has a readable config.json with a model_type (weights: :func:`check_loadable`).

    Raises:
        ConfigError: on ``field``, saying which file is missing or damaged and what to pass instead.
    """
    config_file = path / "config.json"
    if not config_file.is_file():
        # A run's output folder holds its checkpoints one level down; say so rather than just failing.
        children = sorted(p.name for p in path.iterdir() if (p / "config.json").is_file())
        hint = f" (its subfolders {', '.join(children[:5])} do)" if children else ""
        raise ConfigError(
            field, f"{name!r} has no config.json{hint}; point to a folder written by save_pretrained()"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(
            field, f"{name!r}: config.json is not valid JSON ({exc}); re-save the model or {_COMPLETE}"
        ) from exc
    if not isinstance(config, dict) or not config.get("model_type"):
        raise ConfigError(
            field,
            f"{name!r}: config.json has no model_type, so transformers cannot tell the architecture; "
            f"re-save the model with save_pretrained() or {_COMPLETE}",
        )


def check_loadable(name: str, path: str, kind: str, config: PretrainedConfig, field: str = FIELD) -> None:
    """The checkpoint has a sequence-classification model class and, for a local folder, intact weights.

    Checked in this order so that a vision model's folder says "cannot classify text" whatever its
    weights are.
    """
    if not _has_classification_class(config):
        raise ConfigError(
            field,
            f"{name!r} ({config.model_type}) cannot classify text: transformers has no "
            "sequence-classification model for it; choose an encoder such as BERT or RoBERTa",
        )
    if kind == "local":
        problem = weights_problem(Path(path))
        if problem:
            raise ConfigError(field, f"{name!r} {problem}; {_COMPLETE}")


def check_tokenizer_folder(path: Path, name: str, field: str) -> None:
    """A local folder holds tokenizer files (tokenizer.json, vocab.txt, ...)."""
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        hint = (
            "set tokenizer_name to the checkpoint the tokenizer came from"
            if field == FIELD
            else "point tokenizer_name to a folder written by tokenizer.save_pretrained(), or leave it empty"
        )
        raise ConfigError(
            field,
            f"{name!r} has no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}...); save the tokenizer "
            f"there too (tokenizer.save_pretrained) or {hint}",
        )


def _hub_kwargs(model_args: ModelArguments, kind: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"trust_remote_code": bool(model_args.trust_remote_code)}
    if kind == "hub":
        kwargs["revision"] = model_args.revision or "main"
        if model_args.cache_dir:
            kwargs["cache_dir"] = model_args.cache_dir
    return kwargs


def load_tokenizer(model_args: ModelArguments) -> PreTrainedTokenizerBase:
    """Load the tokenizer of the run: ``tokenizer_name`` if set, else the checkpoint's own.

    Args:
        model_args: the run's model arguments (revision, cache_dir and trust_remote_code are passed on
            for Hub ids).
    Returns:
        A tokenizer with a padding token (causal-LM tokenizers without one pad with their EOS token,
        because DataCollatorWithPadding needs one).
    Raises:
        ConfigError: on ``tokenizer_name`` (if given) or ``model_name_or_path`` when it cannot be loaded.
    """
    from transformers import AutoTokenizer

    field = "tokenizer_name" if model_args.tokenizer_name else FIELD
    name = model_args.tokenizer_name or model_args.model_name_or_path
    path = resolve_checkpoint(name, field, need="tokenizer")
    kind = checkpoint_kind(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **_hub_kwargs(model_args, kind))
    except (OSError, ValueError, KeyError) as exc:
        raise checkpoint_load_error(name, exc, field, "tokenizer") from exc
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    model_args: ModelArguments,
    num_labels: int,
    id2label: dict[int, str],
    label2id: dict[str, int],
) -> PreTrainedModel:
    """Load a sequence-classification model with a head for this run's labels.

    The head is sized to ``num_labels`` and is newly initialised where the checkpoint's does not fit
    (``ignore_mismatched_sizes``), so a finished run's model can be fine-tuned on another label set.

    Args:
        model_args: the run's model arguments.
        num_labels: number of classes.
        id2label: class id -> class name (stored in the model's config, shown by pipelines).
        label2id: class name -> class id.
    Returns:
        A float32 ``PreTrainedModel`` ready for ``Trainer``.
    Raises:
        ConfigError: on ``model_name_or_path`` (or ``trust_remote_code``) when it cannot be loaded.
    """
    name = model_args.model_name_or_path
    id2label = {int(i): str(label) for i, label in id2label.items()}
    label2id = {str(label): int(i) for label, i in label2id.items()}
    if len(id2label) != num_labels:
        raise ValueError(f"id2label has {len(id2label)} entries but num_labels is {num_labels}")
    if name == builtins.TINY_BERT:
        return builtins.build_tiny_bert(num_labels, id2label, label2id)

    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    path = resolve_checkpoint(name)
    kwargs = _hub_kwargs(model_args, checkpoint_kind(name))
    try:
        config = AutoConfig.from_pretrained(
            path,
            # num_labels follows from id2label; passing both makes transformers compare the new
            # count with the checkpoint's old id2label and warn.
            id2label=id2label,
            label2id=label2id,
            # A checkpoint fine-tuned for regression or multi-label would otherwise keep that loss.
            problem_type="single_label_classification",
            **kwargs,
        )
        check_loadable(name, path, checkpoint_kind(name), config)
        # float32 master weights: transformers 5 would otherwise keep a half-precision checkpoint's
        # dtype, and training in it diverges; mixed precision is Trainer's job (fp16/bf16).
        model = AutoModelForSequenceClassification.from_pretrained(
            path, config=config, ignore_mismatched_sizes=True, dtype=torch.float32, **kwargs
        )
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise checkpoint_load_error(name, exc, FIELD) from exc
    if model.config.pad_token_id is None and model.config.eos_token_id is not None:
        # Decoder classifiers pool the last non-pad token and refuse batches > 1 without a pad id;
        # load_tokenizer pads with EOS in that case, so use the same id here.
        eos = model.config.eos_token_id
        model.config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    return model


# --------------------------------------------------------------------------------------------------
# inspection (for the dashboard: config and weight headers only)
# --------------------------------------------------------------------------------------------------


def _hub_parameter_count(repo_id: str, revision: str | None, cache_dir: str | None) -> int | None:
    from huggingface_hub import get_safetensors_metadata, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "model.safetensors", cache_dir=cache_dir, revision=revision)
    if isinstance(cached, str):
        return safetensors_parameter_count(cached)
    if hub_offline():
        return None
    # Reads only the headers over HTTP range requests, not the weights.
    metadata = get_safetensors_metadata(repo_id, revision=revision)
    return int(sum(metadata.parameter_count.values()))


def _parameter_count_from_config(config: PretrainedConfig) -> int:
    """Parameters of the classification model built from ``config``, without allocating its weights."""
    import torch
    from transformers import AutoModelForSequenceClassification

    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    return sum(p.numel() for p in model.parameters())


def _has_classification_class(config: PretrainedConfig) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    auto_map = getattr(config, "auto_map", None) or {}
    return config.model_type in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES or (
        "AutoModelForSequenceClassification" in auto_map
    )


def inspect_checkpoint(name: str, trust_remote_code: bool = False) -> dict[str, Any]:
    """Describe a checkpoint for the dashboard without loading its weights.

    Reads the config (``AutoConfig``) and counts parameters from the safetensors header(s); only a
    checkpoint without safetensors weights is instantiated, on the ``meta`` device (no memory).

    Args:
        name: a built-in name, a local folder or a Hub id.
        trust_remote_code: allow the config class of a Hub repository with custom code.
    Returns:
        A dict with keys ok, kind ('builtin'|'local'|'hub'), path, architecture, model_type,
        num_parameters, num_layers, hidden_size, vocab_size, max_position_embeddings, num_labels and
        id2label (both None unless the checkpoint already has a classification head), and error (the
        message when ok is False). Never raises for a bad name.
    """
    info: dict[str, Any] = dict.fromkeys(
        (
            "path",
            "architecture",
            "model_type",
            "num_parameters",
            "num_layers",
            "hidden_size",
            "vocab_size",
            "max_position_embeddings",
            "num_labels",
            "id2label",
            "error",
        )
    )
    name = (name or "").strip()
    info.update(ok=False, kind=checkpoint_kind(name) if name else None)
    try:
        path = resolve_checkpoint(name)
        info["path"] = path
        config = _inspect_config(name, path, trust_remote_code)
        info.update(_config_summary(config))
        info["num_parameters"] = _parameter_count(name, path, info["kind"], config)
        check_loadable(name, path, info["kind"], config)
        info["ok"] = True
    except ConfigError as exc:
        info["error"] = exc.message
    except Exception as exc:  # noqa: BLE001 - the dashboard shows the message, never a traceback
        info["error"] = checkpoint_load_error(name, exc, FIELD).message
    return info


def _inspect_config(name: str, path: str, trust_remote_code: bool) -> PretrainedConfig:
    from transformers import AutoConfig

    if name == builtins.TINY_BERT:
        return builtins.tiny_bert_config()
    return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)


def _config_summary(config: PretrainedConfig) -> dict[str, Any]:
    architectures = getattr(config, "architectures", None) or []
    architecture = architectures[0] if architectures else None
    summary = {
        "architecture": architecture,
        "model_type": config.model_type,
        # attribute_map makes these names work for GPT-2 style configs (n_layer, n_embd...) too.
        "num_layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "vocab_size": getattr(config, "vocab_size", None),
        "max_position_embeddings": getattr(config, "max_position_embeddings", None),
    }
    if architecture and architecture.endswith("ForSequenceClassification"):
        summary["num_labels"] = config.num_labels
        summary["id2label"] = {int(i): str(label) for i, label in config.id2label.items()}
    return summary


def _parameter_count(name: str, path: str, kind: str, config: PretrainedConfig) -> int | None:
    try:
        if name == builtins.TINY_BERT:
            count = None
        elif kind == "hub":
            count = _hub_parameter_count(path, None, None)
        else:
            count = local_parameter_count(Path(path))
        if count is None and _has_classification_class(config):
            count = _parameter_count_from_config(config)
        return count
    except Exception:  # noqa: BLE001 - a count is nice to have; inspection must not fail for it
        return None
