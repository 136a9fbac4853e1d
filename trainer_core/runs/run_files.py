"""A launcher's readers of run folders: where a run's folder is, its config, log, checkpoints, model.

Mixed into ``Launcher`` (uses its ``store`` and ``home``); kept apart so the launcher stays about
starting and controlling runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer_core.errors import RunNotFoundError, RunStateError
from trainer_core.runs.folder import RunFolder


class RunFiles:
    """The files of a launcher's runs."""

    def run_dir(self, run_id: str) -> Path:
        try:
            stored = self.store.get_run(run_id).get("run_dir")
        except RunNotFoundError:
            stored = None
        return Path(stored) if stored else self.home / run_id

    def folder(self, run_id: str) -> RunFolder:
        """The run's folder and the files in it."""
        return RunFolder(self.run_dir(run_id))

    def config_of(self, run_id: str) -> dict[str, Any]:
        """The run's saved flat config (full and resolved; feed it to launch() to replay the run)."""
        saved = self.folder(run_id).config()
        return saved if saved is not None else dict(self.store.get_run(run_id)["config"])

    def log_tail(self, run_id: str, lines: int = 200) -> str:
        return self.folder(run_id).log_tail(lines)

    def checkpoints(self, run_id: str, include_incomplete: bool = False) -> list[dict[str, Any]]:
        """The run's resumable checkpoints, oldest first: name, step, path, size_bytes (see RunFolder)."""
        return self.folder(run_id).checkpoints(include_incomplete=include_incomplete)

    def model_dir(self, run_id: str) -> Path | None:
        """The fine-tuned model and tokenizer (``from_pretrained``-loadable), once the run completed."""
        return self.folder(run_id).model_dir()

    def predictions(self, run_id: str):
        """The final model's predictions on the validation split as a DataFrame, or None."""
        return self.folder(run_id).predictions()

    def export_model_archive(self, run_id: str) -> Path:
        """A zip of the fine-tuned model folder (made once, reused)."""
        archive = self.folder(run_id).export_model_archive()
        if archive is None:
            raise RunStateError(f"run {run_id} has no final model yet")
        return archive
