"""The PPM served by CTranslate2: a sequence classifier's head output, compiled.

CTranslate2 has no value heads, but its ``Generator.forward_batch`` returns the output
projection's logits at every position. So the PPM is converted as a causal LM whose
output projection has the value head in row 0 and zeros elsewhere: logit 0 at a text's
last token is then exactly the head output that ``TransformersRewardBackend`` reads there.
In the main job's PPM rounds (two shards sharing 2 cores) it made the PPM's part of the
search ~2.6x faster than transformers with its shared-prefix cache; alone on a quiet
machine the two are close (docs/benchmarks.md, "The PPM on CTranslate2").

The logits are vocabulary-wide at every position, so a batch holds at most
``logits_budget`` bytes of them: a model with a large vocabulary scores few texts at once
(this backend is meant for small models on a CPU; on GPUs the PPM runs in transformers).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from tqdm.auto import tqdm

from rstar.models.conversion import converted
from rstar.models.ctranslate2_backend import ct2_convert
from rstar.models.loading import (
    ModelLoadError,
    checkpoint_dir,
    context_length,
    cut_left,
    load_tokenizer,
)

LOGITS_BUDGET = 256 * 2**20  # bytes of float32 logits per forward_batch call


def _as_value_lm(checkpoint: Path, out_dir: Path) -> None:
    """Save ``checkpoint`` (a 1-label sequence classifier) as a causal LM whose output
    projection's row 0 is the value head, then convert that for CTranslate2."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    try:
        classifier = AutoModelForSequenceClassification.from_pretrained(
            checkpoint, num_labels=1, dtype=torch.float32
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelLoadError(
            f"{checkpoint}: does not load as a 1-label sequence classifier (a PPM): {exc}"
        ) from exc
    head = getattr(classifier, "score", None)  # Llama's, Qwen2's: a linear layer, no bias
    if not isinstance(head, torch.nn.Linear) or head.bias is not None:
        raise ModelLoadError(
            f"{checkpoint}: its value head is not a linear layer without bias (`score`), "
            "which is what CTranslate2 serves here; use `backend: transformers` for this PPM"
        )
    config = classifier.config
    config.tie_word_embeddings = False  # the projection must not be the embeddings
    config.architectures = None
    lm = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    lm.base_model.load_state_dict(classifier.base_model.state_dict())
    with torch.no_grad():
        lm.lm_head.weight.zero_()
        lm.lm_head.weight[0] = head.weight[0]
    staged = out_dir.with_name(out_dir.name + ".lm")
    try:
        lm.save_pretrained(staged)
        load_tokenizer(checkpoint, require_special_tokens=False).save_pretrained(staged)
        ct2_convert("float32")(staged, out_dir)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


class CTranslate2RewardBackend:
    """A PPM checkpoint (``AutoModelForSequenceClassification``, one label) scored by
    CTranslate2 (module doc). Texts are scored whole, sorted by length, at most
    ``batch_size`` at once; longer than ``max_length`` (default: the model's context),
    they lose their beginning, as with ``TransformersRewardBackend``."""

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        batch_size: int = 32,
        *,
        max_length: int | None = None,
        threads: int | None = None,
        logits_budget: int = LOGITS_BUDGET,
        require_special_tokens: bool = True,
        progress: bool = True,
    ) -> None:
        import ctranslate2

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        path = checkpoint_dir(model_path)
        self.batch_size = batch_size
        self.progress = progress
        self.logits_budget = logits_budget
        self.tokenizer = load_tokenizer(path, require_special_tokens=require_special_tokens)
        self.model_dir = converted(path, "ctranslate2-ppm-float32", _as_value_lm)
        config = json.loads((path / "config.json").read_text())
        self.vocab_size = int(config["vocab_size"])
        self.max_length = context_length(SimpleNamespace(**config), max_length)
        self.model = ctranslate2.Generator(
            str(self.model_dir),
            device=device,
            compute_type="float32",
            intra_threads=threads or torch.get_num_threads(),
        )

    def raw_scores(self, texts: list[str]) -> list[float]:
        """The value head's output at the last token of each text, in order."""
        if not texts:
            return []
        encoded = cut_left(self.tokenizer(texts)["input_ids"], self.max_length, "PPM text")
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        scores = [0.0] * len(texts)
        chunks = self._chunks(order, [len(ids) for ids in encoded])
        for chunk in tqdm(
            chunks, desc="ppm", leave=False, disable=not self.progress or len(chunks) < 2
        ):
            logits = np.asarray(self.model.forward_batch([encoded[i] for i in chunk]))
            for row, i in enumerate(chunk):
                scores[i] = float(logits[row, len(encoded[i]) - 1, 0])
        return scores

    def _chunks(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Consecutive texts (shortest first), at most ``batch_size`` and ``logits_budget``
        bytes of logits per chunk (at least one text)."""
        chunks: list[list[int]] = []
        for i in order:
            grown = (len(chunks[-1]) + 1) * lengths[i] * self.vocab_size * 4 if chunks else 0
            if not chunks or len(chunks[-1]) >= self.batch_size or grown > self.logits_budget:
                chunks.append([i])
            else:
                chunks[-1].append(i)
        return chunks
