"""The built-in pretrained checkpoint really learns the built-in task (a few minutes of CPU)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from trainer_core.config import load_config
from trainer_core.tracking.status import COMPLETED


@pytest.mark.slow
def test_minilm_on_the_full_builtin_dataset_reaches_075_accuracy(launcher):
    # examples/rotten-tomatoes.yaml: all 4,379 training reviews, 1 epoch, max length 64.
    config = load_config(REPO / "examples" / "rotten-tomatoes.yaml")
    assert config.data.max_train_samples is None and config.data.max_seq_length == 64
    assert config.training.num_train_epochs == 1
    run_id = launcher.launch(config)
    run = launcher.wait(run_id, timeout=1800)
    assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id))
    accuracy = launcher.store.get_series(run_id, "eval_accuracy")["value"].tolist()
    assert len(accuracy) == 1 and accuracy[0] >= 0.75, accuracy
    assert run["summary"]["n_validation"] == 487
