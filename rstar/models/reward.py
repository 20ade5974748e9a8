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

# (index of the prefix, its tokens, (index of the continuation, its tokens) per continuation)
_Group = tuple[int, list[int], list[tuple[int, list[int]]]]


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

    def raw_scores_extending(
        self, prefixes: list[str], continuations: list[list[str]]
    ) -> list[list[float]]:
        """Head outputs of ``prefix + continuation`` for every continuation of every prefix,
        each prefix run through the model once: its keys and values are kept and each of its
        continuations runs on top of them (a search scores the children of one node so).

        A continuation whose tokens are not those of the whole text (a token would merge
        across the seam), or a text longer than ``max_length``, is scored whole.
        """
        heads = self.tokenizer(prefixes)["input_ids"]
        scores = [[0.0] * len(conts) for conts in continuations]
        groups: list[_Group] = []
        whole: list[tuple[int, int]] = []
        for g, (head, conts) in enumerate(zip(heads, continuations, strict=True)):
            extending = []
            for k, cont in enumerate(conts):
                tail = self.tokenizer(cont, add_special_tokens=False)["input_ids"]
                joined = self.tokenizer(prefixes[g] + cont)["input_ids"]
                if tail and len(joined) <= self.max_length and joined == head + tail:
                    extending.append((k, tail))
                else:
                    whole.append((g, k))
            if extending:
                groups.append((g, head, extending))
        groups.sort(key=lambda group: len(group[1]))
        with torch.inference_mode():
            start = 0
            while start < len(groups):
                chunk: list[_Group] = []
                while start < len(groups) and (
                    not chunk or sum(len(c[2]) for c in chunk) < self.batch_size
                ):
                    chunk.append(groups[start])
                    start += 1
                for (g, k), value in self._extend(chunk):
                    scores[g][k] = value
        texts = [prefixes[g] + continuations[g][k] for g, k in whole]
        for (g, k), value in zip(whole, self.raw_scores(texts), strict=True):
            scores[g][k] = value
        return scores

    def _extend(self, chunk: list[_Group]) -> list[tuple[tuple[int, int], float]]:
        """One batch of prefixes (left-padded, run with a cache), then their continuations
        (right-padded, on the cached rows); the head reads each continuation's last token."""
        pad = self.tokenizer.pad_token_id
        width = max(len(head) for _, head, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (_, head, _) in enumerate(chunk):
            ids[row, width - len(head) :] = torch.tensor(head)
            mask[row, width - len(head) :] = 1
        base = self.model.base_model
        out = base(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(self.device),
            use_cache=True,
        )
        rows = [row for row, (_, _, tails) in enumerate(chunk) for _ in tails]
        keys = [(g, k) for g, _, tails in chunk for k, _ in tails]
        tails = [tail for _, _, group_tails in chunk for _, tail in group_tails]
        cache = out.past_key_values
        cache.reorder_cache(torch.tensor(rows, device=self.device))
        length = max(len(tail) for tail in tails)
        tail_ids = torch.full((len(tails), length), pad, dtype=torch.long)
        tail_mask = torch.zeros((len(tails), length), dtype=torch.long)
        for row, tail in enumerate(tails):
            tail_ids[row, : len(tail)] = torch.tensor(tail)
            tail_mask[row, : len(tail)] = 1
        positions = mask.sum(-1)[rows][:, None] + torch.arange(length)[None, :]
        hidden = base(
            input_ids=tail_ids.to(self.device),
            attention_mask=torch.cat([mask[rows], tail_mask], dim=1).to(self.device),
            position_ids=positions.to(self.device),
            past_key_values=cache,
        ).last_hidden_state
        last = torch.tensor([len(tail) - 1 for tail in tails], device=self.device)
        values = self.model.score(hidden[torch.arange(len(tails)), last])[:, 0]
        return list(zip(keys, values.float().tolist(), strict=True))

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
