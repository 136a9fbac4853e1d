"""Figure 3: the Hugging Face course's MRPC recipe in full, through the project and as a plain script.

The project runs ``examples/mrpc.yaml`` (pretrained MiniLM-L6, 3 epochs of Trainer defaults, evaluation
every epoch) on ``../shared/data/mrpc``; the plain script runs the same settings. The two sides train at
the same time, so on a shared machine they see the same load and their wall times stay comparable;
their scores do not depend on timing. The course's own figures (bert-base-uncased, a 110M-parameter
model against MiniLM's 22M) are quoted beside them.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import MRPC_DIR, REPO, first_point_time, log, run_plain

COURSE = {"model": "bert-base-uncased", "eval_accuracy": 0.8578, "eval_f1": 0.8997}
# Keys of the project config that are not TrainingArguments fields, and what the plain script calls them.
_DATA_KEYS = {"max_seq_length": "max_length", "max_train_samples": "max_train_samples", "seed": "seed"}
_PROJECT_ONLY = (
    "model_name_or_path",
    "train_file",
    "validation_file",
    "text_column",
    "text_pair_column",
    "label_column",
    "run_name",
    "max_eval_samples",
)


def project_config(max_train_samples: int | None = None, epochs: float | None = None) -> dict[str, Any]:
    """examples/mrpc.yaml with the data paths made absolute (and optionally shortened for --quick)."""
    config = yaml.safe_load((REPO / "examples" / "mrpc.yaml").read_text(encoding="utf-8"))
    config["train_file"] = str(MRPC_DIR / "train.tsv")
    config["validation_file"] = str(MRPC_DIR / "dev.tsv")
    if max_train_samples is not None:
        config["max_train_samples"] = max_train_samples
    if epochs is not None:
        config["num_train_epochs"] = epochs
    return config


def plain_settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data settings, TrainingArguments) of the plain script, taken from the project config."""
    settings = {"data_dir": str(MRPC_DIR)}
    training = {}
    for key, value in config.items():
        if key in _DATA_KEYS:
            settings[_DATA_KEYS[key]] = value
        elif key not in _PROJECT_ONLY:
            training[key] = value
    return settings, training


def measure(quick: bool = False, workdir: Path | None = None) -> dict[str, Any]:
    from trainer_core import Launcher

    config = project_config(max_train_samples=96, epochs=1) if quick else project_config()
    settings, training = plain_settings(config)
    tmp = Path(workdir or tempfile.mkdtemp(prefix="bench-mrpc-"))
    tmp.mkdir(parents=True, exist_ok=True)
    plain: dict[str, Any] = {}

    def plain_side():
        try:
            plain.update(
                run_plain(
                    "mrpc",
                    tmp / "plain.json",
                    settings,
                    {**training, "output_dir": str(tmp / "plain-out")},
                    tmp / "plain.log",
                )
            )
        except Exception as exc:  # noqa: BLE001 - reported in the result instead of killing the project side
            plain["error"] = str(exc)

    log(
        f"MRPC recipe: project and plain script side by side ({'quick' if quick else 'full, 3 epochs'}) in {tmp}"
    )
    thread = threading.Thread(target=plain_side, name="plain-mrpc")
    launcher = Launcher(home=tmp / "runs")
    started = time.time()
    thread.start()
    run_id = launcher.launch(config)
    run = launcher.wait(run_id, poll_s=2.0)
    thread.join()
    summary = run.get("summary") or {}
    final = summary.get("final_metrics") or {}
    project = {
        "status": run["status"],
        "error": run.get("error"),
        "eval_accuracy": final.get("eval_accuracy"),
        "eval_f1": final.get("eval_f1"),
        "eval_loss": final.get("eval_loss"),
        "epoch_accuracy": launcher.store.get_series(run_id, "eval_accuracy")["value"].tolist(),
        "epoch_f1": launcher.store.get_series(run_id, "eval_f1")["value"].tolist(),
        "train_samples_per_second": summary.get("train_samples_per_second"),
        "wall_s": (run["finished_at"] - started) if run.get("finished_at") else None,
        "launch_to_first_log_s": _minus(first_point_time(launcher.store, run_id), started),
        "n_train": summary.get("n_train"),
        "n_validation": summary.get("n_validation"),
    }
    reference = {"error": plain.get("error")}
    if "eval_metrics" in plain:
        history = plain["log_history"]
        reference.update(
            eval_accuracy=plain["eval_metrics"]["eval_accuracy"],
            eval_f1=plain["eval_metrics"]["eval_f1"],
            eval_loss=plain["eval_metrics"]["eval_loss"],
            epoch_accuracy=[h["eval_accuracy"] for h in history if "eval_accuracy" in h][:-1],
            epoch_f1=[h["eval_f1"] for h in history if "eval_f1" in h][:-1],
            train_samples_per_second=plain["train_metrics"]["train_samples_per_second"],
            wall_s=plain["times"]["finished"] - plain["launched_at"],
            n_train=plain["n_train"],
            n_validation=plain["n_validation"],
        )
    same = all(project.get(k) == reference.get(k) for k in ("eval_accuracy", "eval_f1", "eval_loss"))
    log(
        f"MRPC project acc {project['eval_accuracy']} f1 {project['eval_f1']} wall {project['wall_s']}; "
        f"plain acc {reference.get('eval_accuracy')} f1 {reference.get('eval_f1')} wall {reference.get('wall_s')}"
    )
    shutil.rmtree(tmp, ignore_errors=True)  # three checkpoints of MiniLM plus optimizer state per side
    return {
        "quick": quick,
        "config": config,
        "project": project,
        "plain": reference,
        "course": COURSE,
        "identical_scores": same,
        "note": "project and plain script trained concurrently (same load on both)",
    }


def _minus(a: float | None, b: float) -> float | None:
    return None if a is None else a - b
