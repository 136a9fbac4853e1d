"""Trying a fine-tuned model on typed text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class Predictor:
    """A fine-tuned sequence classifier ready to label text.

    Args:
        model: a loaded ``AutoModelForSequenceClassification``.
        tokenizer: its tokenizer.
        max_length: inputs are truncated to this many tokens.
    """

    def __init__(self, model, tokenizer, max_length: int = 512):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @classmethod
    def from_dir(cls, model_dir: str | os.PathLike, max_length: int = 512) -> Predictor:
        """Load a model folder written by ``save_pretrained`` (e.g. a run's ``model/``)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path)
        return cls(model, tokenizer, max_length=max_length)

    def predict(self, texts: list[str], text_pairs: list[str] | None = None) -> list[dict[str, Any]]:
        """Label each text (or pair).

        Returns:
            One dict per input: ``label``, ``score`` (its probability) and ``probabilities`` (label -> p).
        """
        import torch

        if not texts:
            return []
        batch = self.tokenizer(
            list(texts),
            list(text_pairs) if text_pairs else None,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = self.model(**batch).logits
        probs = torch.softmax(logits.float(), dim=-1).tolist()
        out = []
        for row in probs:
            best = max(range(len(row)), key=row.__getitem__)
            out.append(
                {
                    "label": self.labels[best],
                    "score": row[best],
                    "probabilities": dict(zip(self.labels, row, strict=True)),
                }
            )
        return out
