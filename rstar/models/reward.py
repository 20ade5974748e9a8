"""Raw scalar scores of whole texts: the model call behind the PPM.

``RewardBackend`` is the seam where another engine (e.g. vLLM's pooling/classify mode) can
serve the PPM later; ``TransformersRewardBackend`` runs a sequence-classification checkpoint
with one label in-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSequenceClassification

from rstar.models.loading import (
    ModelLoadError,
    check_vocab,
    checkpoint_dir,
    context_length,
    cut_left,
    load_tokenizer,
    resolve_dtype,
)


@runtime_checkable
class RewardBackend(Protocol):
    """Scores texts with a scalar head; the score is read at the last token of each text."""

    def raw_scores(self, texts: list[str]) -> list[float]:
        """One raw (unsquashed) head output per text, in order."""
        ...


class TransformersRewardBackend:
    """A local checkpoint loaded with ``AutoModelForSequenceClassification(num_labels=1)``.

    A causal-LM checkpoint loads too (its value head is then freshly initialised, as when a
    PPM is initialised from the policy). Texts longer than ``max_length`` (default: the
    model's ``max_position_embeddings``) lose their beginning so the scored step is kept.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        batch_size: int = 32,
        *,
        dtype: str | torch.dtype = "auto",
        max_length: int | None = None,
        require_special_tokens: bool = True,
        progress: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        path = checkpoint_dir(model_path)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.progress = progress
        self.tokenizer = load_tokenizer(path, require_special_tokens=require_special_tokens)
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, dtype=resolve_dtype(dtype, self.device)
            ).to(self.device)
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(
                f"{path}: does not load as a 1-label sequence classifier (a PPM): {exc}"
            ) from exc
        self.model.eval()
        check_vocab(self.model, self.tokenizer, path)
        # The head reads the last token that is not padding, so the model must know the pad id.
        self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.max_length = context_length(self.model.config, max_length)

    def raw_scores(self, texts: list[str]) -> list[float]:
        """Head outputs, batched by similar length, left-padded."""
        if not texts:
            return []
        encoded = cut_left(self.tokenizer(texts)["input_ids"], self.max_length, "PPM text")
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        scores = [0.0] * len(texts)
        with torch.inference_mode():
            for chunk in tqdm(
                chunks, desc="ppm", leave=False, disable=not self.progress or len(chunks) < 2
            ):
                batch = self.tokenizer.pad(
                    {"input_ids": [encoded[i] for i in chunk]}, padding=True, return_tensors="pt"
                ).to(self.device)
                mask = batch["attention_mask"]
                # Left padding shifts the tokens; positions must count from each text's start
                # so a padded text scores as it would alone.
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = self.model(
                    input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions
                ).logits
                for i, value in zip(chunk, logits[:, 0].float().tolist(), strict=True):
                    scores[i] = value
        return scores
