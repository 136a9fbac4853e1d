"""A run through trainer_core scores exactly what a plain Trainer script scores on the same data.

The project adds a worker process, a callback and a store around ``Trainer``; none of that may change
the numbers. Each test launches a real run with a real Launcher and trains the same slice with
``bench/plain_trainer.py`` (the course's recipe, nothing of trainer_core) in this process, then compares
the final evaluation bit for bit: same seed on the same CPU gives the same floats, so any difference
means the data, the label ids, the row order or the head initialisation differ.
"""

from __future__ import annotations

import sys

import pytest

from bench import plain_trainer
from trainer_core.assets import TINY_BERT_SHAPE

COMPARED = ("eval_loss", "eval_accuracy", "eval_f1")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """Both sides on one intra-op thread.

    Bitwise equality needs the same thread count on both sides (it decides how sums are split), and on a
    busy 2-core machine one thread is also several times faster than two that spin-wait for each other.
    """
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the worker process reads it at start-up
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def finished(launcher, run_id: str) -> dict:
    run = launcher.wait(run_id, timeout=600)
    assert run["status"] == "completed", (
        f"{run['status']}: {run.get('error')}\n{launcher.log_tail(run_id, 40)}"
    )
    return run


def project_epoch_evals(launcher, run_id: str) -> list[float]:
    return launcher.store.get_series(run_id, "eval_accuracy")["value"].tolist()


def plain_epoch_evals(result: dict) -> list[float]:
    return [entry["eval_accuracy"] for entry in result["log_history"] if "eval_accuracy" in entry][:-1]


def assert_same_scores(run: dict, plain: dict) -> None:
    project = run["summary"]["final_metrics"]
    assert run["summary"]["n_train"] == plain["n_train"]
    assert run["summary"]["n_validation"] == plain["n_validation"]
    assert {k: project[k] for k in COMPARED} == {k: plain["eval_metrics"][k] for k in COMPARED}
    assert run["summary"]["train_loss"] == plain["train_metrics"]["train_loss"]


def test_builtin_reviews_match_plain_trainer(launcher):
    """Carved, stratified validation split of the built-in data; a randomly initialised tiny BERT."""
    settings = {
        "max_train_samples": 64,
        "max_eval_samples": 32,
        "max_seq_length": 64,
        "per_device_train_batch_size": 16,
        "num_train_epochs": 1,
        "learning_rate": 1e-3,
        "seed": 42,
        # Also the logging interval: Trainer's train_loss adds the float32 sums of each logging window,
        # so a different interval rounds it differently.
        "logging_steps": 2,
        "eval_strategy": "epoch",
        "save_strategy": "no",
    }
    run_id = launcher.launch(
        {"model_name_or_path": "builtin:tiny-bert", "dataset_name": "builtin:rotten-tomatoes", **settings}
    )
    plain = plain_trainer.train(
        task="rotten-tomatoes",
        random_init_config=dict(TINY_BERT_SHAPE),
        max_train_samples=settings["max_train_samples"],
        max_eval_samples=settings["max_eval_samples"],
        max_length=settings["max_seq_length"],
        seed=settings["seed"],
        per_device_train_batch_size=settings["per_device_train_batch_size"],
        num_train_epochs=settings["num_train_epochs"],
        learning_rate=settings["learning_rate"],
        logging_steps=settings["logging_steps"],
        eval_strategy=settings["eval_strategy"],
        save_strategy=settings["save_strategy"],
    )
    run = finished(launcher, run_id)
    assert_same_scores(run, plain)
    assert project_epoch_evals(launcher, run_id) == plain_epoch_evals(plain)


def test_mrpc_course_recipe_matches_plain_trainer(launcher, mrpc_dir):
    """GLUE MRPC sentence pairs from the TSV files, pretrained MiniLM, the course's Trainer defaults."""
    # 32 pairs are 4 steps of the course's batch of 8: enough to move every weight, quick on a CPU.
    settings = {"max_train_samples": 32, "max_eval_samples": 32, "max_seq_length": 128, "seed": 42}
    run_id = launcher.launch(
        {
            "model_name_or_path": "builtin:minilm-l6",
            "train_file": str(mrpc_dir / "train.tsv"),
            "validation_file": str(mrpc_dir / "dev.tsv"),
            "text_column": "#1 String",
            "text_pair_column": "#2 String",
            "label_column": "Quality",
            "num_train_epochs": 1,
            "logging_steps": 2,
            "eval_strategy": "epoch",
            "save_strategy": "no",
            **settings,
        }
    )
    plain = plain_trainer.train(
        task="mrpc",
        data_dir=str(mrpc_dir),
        max_train_samples=settings["max_train_samples"],
        max_eval_samples=settings["max_eval_samples"],
        max_length=settings["max_seq_length"],
        seed=settings["seed"],
        num_train_epochs=1,
        logging_steps=2,
        eval_strategy="epoch",
        save_strategy="no",
    )
    run = finished(launcher, run_id)
    assert_same_scores(run, plain)
    assert project_epoch_evals(launcher, run_id) == plain_epoch_evals(plain)


if __name__ == "__main__":  # pragma: no cover - convenience: python tests/test_equivalence.py
    sys.exit(pytest.main([__file__, "-q"]))
