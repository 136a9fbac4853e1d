"""Small data files and checkpoint folders, intact or damaged in one chosen way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

WORDS = (
    "great",
    "awful",
    "fine",
    "dull",
    "moving",
    "boring",
    "sharp",
    "flat",
    "warm",
    "cold",
    "bright",
    "grim",
)


def rows(n: int = 12, labels: tuple = ("pos", "neg")) -> list[dict]:
    """``n`` short reviews with labels cycling through ``labels`` (every class at least twice for n >= 4)."""
    return [
        {"text": f"a {WORDS[i % len(WORDS)]} film number {i}", "label": labels[i % len(labels)]}
        for i in range(n)
    ]


def csv_text(records: list[dict], sep: str = ",") -> str:
    header = sep.join(records[0])
    return "\n".join([header, *(sep.join(str(v) for v in r.values()) for r in records)]) + "\n"


def write(folder: Path, name: str, content: str | bytes) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def good_csv(folder: Path, name: str = "train.csv", **kwargs) -> str:
    return write(folder, name, csv_text(rows(**kwargs)))


# --------------------------------------------------------------------------------------------------
# checkpoint folders
# --------------------------------------------------------------------------------------------------


def _safetensors_bytes() -> bytes:
    import torch
    from safetensors.torch import save

    return save({"classifier.weight": torch.zeros(2, 4), "classifier.bias": torch.zeros(2)})


def checkpoint(folder: Path, weights: str = "safetensors", tokenizer: bool = True, config: str = "ok") -> str:
    """A save_pretrained-like folder with the tiny BERT config, MiniLM's tokenizer and tiny weights.

    Args:
        weights: "safetensors" (intact), "none", "truncated", "junk_header", "bin_junk", "bin_empty",
            "missing_shard".
        tokenizer: copy the tokenizer files in.
        config: "ok", "invalid_json", "no_model_type".
    """
    from trainer_core import assets

    folder.mkdir(parents=True, exist_ok=True)
    cfg = assets.tiny_bert_config().to_dict()
    if config == "ok":
        (folder / "config.json").write_text(json.dumps(cfg))
    elif config == "invalid_json":
        (folder / "config.json").write_text('{"model_type": "bert",')
    elif config == "no_model_type":
        cfg.pop("model_type", None)
        (folder / "config.json").write_text(json.dumps(cfg))
    if tokenizer:
        source = assets.minilm_path()
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(source / name, folder / name)
    data = _safetensors_bytes()
    if weights == "safetensors":
        (folder / "model.safetensors").write_bytes(data)
    elif weights == "truncated":
        (folder / "model.safetensors").write_bytes(data[:-10])
    elif weights == "junk_header":
        (folder / "model.safetensors").write_bytes(
            (20).to_bytes(8, "little") + b"not json at all!!!!!" + b"\0" * 40
        )
    elif weights == "bin_junk":
        (folder / "pytorch_model.bin").write_bytes(b"this is not a checkpoint" * 10)
    elif weights == "bin_empty":
        (folder / "pytorch_model.bin").write_bytes(b"")
    elif weights == "missing_shard":
        index = {"metadata": {}, "weight_map": {"classifier.weight": "model-00001-of-00002.safetensors"}}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return str(folder)
