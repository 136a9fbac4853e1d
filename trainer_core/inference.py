"""Trying a fine-tuned model on typed text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class Predictor:
    """A fine-tuned sequence classifier ready to label text: a ``text-classification`` pipeline.

    Args:
        model: a loaded ``AutoModelForSequenceClassification``.
        tokenizer: its tokenizer.
        max_length: inputs are truncated to this many tokens.
    """

    def __init__(self, model, tokenizer, max_length: int = 512):
        from transformers import pipeline

        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        self.max_length = max_length
        self.pipeline = pipeline(
            "text-classification",
            model=model.eval(),
            tokenizer=tokenizer,
            top_k=None,  # every label's score, not only the best
            # Probabilities whatever the saved config's problem_type says (a head of one label would
            # otherwise get a sigmoid).
            function_to_apply="softmax",
            truncation=True,
            max_length=max_length,
        )

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
            One dict per input: ``label``, ``score`` (its probability) and ``probabilities`` (label -> p,
            in class-id order).
        """
        if not texts:
            return []
        inputs = (
            [{"text": t, "text_pair": p} for t, p in zip(texts, text_pairs, strict=True)]
            if text_pairs
            else list(texts)
        )
        out = []
        for scores in self.pipeline(inputs):  # each sorted best first
            probabilities = {entry["label"]: entry["score"] for entry in scores}
            out.append(
                {
                    "label": scores[0]["label"],
                    "score": scores[0]["score"],
                    "probabilities": {label: probabilities[label] for label in self.labels},
                }
            )
        return out
