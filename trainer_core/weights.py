"""Are a saved model's weights whole? Read from file headers only, never by loading the tensors.

One owner for the check that both a checkpoint given as ``model_name_or_path`` (before a run starts) and
a run's own ``checkpoint-N`` (before a resume) must pass: a download, copy or save cut off part-way leaves
a file whose header promises more bytes than it holds. File names are transformers' own
(``SAFE_WEIGHTS_NAME`` and friends), written out so this module stays cheap to import.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
from pathlib import Path

SAFE_WEIGHTS = "model.safetensors"
SAFE_WEIGHTS_INDEX = "model.safetensors.index.json"
TORCH_WEIGHTS = "pytorch_model.bin"
TORCH_WEIGHTS_INDEX = "pytorch_model.bin.index.json"
# Integer tensors in a safetensors file are buffers (e.g. BERT's position_ids), not trainable parameters.
_INTEGER_DTYPES = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64"}


def weights_problem(folder: Path) -> str | None:
    """What is wrong with a folder's weights (missing, truncated, not a weights file), or None."""
    for index_name, reader in (
        (SAFE_WEIGHTS_INDEX, _safetensors_problem),
        (TORCH_WEIGHTS_INDEX, _torch_bin_problem),
    ):
        index = folder / index_name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError):
                return f"has a damaged {index_name}"
            for shard in shards:
                problem = reader(folder / shard)
                if problem:
                    return problem
            return None
    for file_name, reader in (
        (SAFE_WEIGHTS, _safetensors_problem),
        (TORCH_WEIGHTS, _torch_bin_problem),
    ):
        if (folder / file_name).is_file():
            return reader(folder / file_name)
    return "has a config but no weights (model.safetensors or pytorch_model.bin)"


def _safetensors_problem(path: Path) -> str | None:
    # Layout: 8-byte little-endian header length, a JSON header, then the tensors' bytes back to back;
    # the largest data_offsets end is where the file must stop.
    if not path.is_file():
        return f"lacks the weights shard {path.name} that its index lists"
    size = path.stat().st_size
    damaged = f"has a damaged {path.name} (an interrupted download or copy?)"
    if size < 8:
        return f"{damaged}: it holds only {size} bytes"
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if 8 + header_len > size:
            return f"{damaged}: its header claims {header_len} bytes but the file has {size}"
        try:
            header = json.loads(f.read(header_len))
            ends = [info["data_offsets"][1] for key, info in header.items() if key != "__metadata__"]
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError, IndexError):
            return f"{damaged}: its header is not a safetensors header"
    expected = 8 + header_len + max(ends, default=0)
    if size != expected:
        return f"{damaged}: it is {size} bytes but its header declares {expected} (truncated or padded)"
    return None


def _torch_bin_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"lacks the weights shard {path.name} that its index lists"
    damaged = f"has a damaged {path.name} (an interrupted download or copy?)"
    if zipfile.is_zipfile(path):  # torch.save's format since torch 1.6: a zip with a data.pkl inside
        try:
            with zipfile.ZipFile(path) as archive:
                if not any(n.endswith("data.pkl") for n in archive.namelist()):
                    return f"{damaged}: it is a zip file but not a PyTorch checkpoint"
        except (zipfile.BadZipFile, OSError):
            return damaged
        return None
    with open(path, "rb") as f:
        head = f.read(2)
    # The legacy (pre-1.6) format is a bare pickle, which starts with the PROTO opcode 0x80.
    if len(head) < 2 or head[0] != 0x80:
        return f"{damaged}: it is not a PyTorch checkpoint"
    return None


def safetensors_parameter_count(path: str | Path) -> int:
    """Number of parameters in a ``.safetensors`` file, read from its JSON header only.

    Args:
        path: a ``.safetensors`` file.
    Returns:
        The total element count of its floating-point tensors (integer buffers left out).
    """
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    return sum(
        math.prod(info["shape"])
        for key, info in header.items()
        if key != "__metadata__" and info.get("dtype") not in _INTEGER_DTYPES
    )


def local_parameter_count(folder: Path) -> int | None:
    index = folder / SAFE_WEIGHTS_INDEX
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return sum(safetensors_parameter_count(folder / shard) for shard in shards)
    single = folder / SAFE_WEIGHTS
    if single.is_file():
        return safetensors_parameter_count(single)
    return None
