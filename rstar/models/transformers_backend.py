"""Generation with a local transformers checkpoint (CPU or CUDA), batched across prompts.

Every (prompt, sample) pair is one sequence; the sequences are sorted by prompt length (less
padding), cut into chunks of ``batch_size`` and each chunk is one left-padded ``generate``
call. When every stop string is an added token of the tokenizer (the format's markers are, in
the project's tokenizers), so that it is always generated as that one token, the stops are
passed as ``eos_token_id``, which costs nothing per step; otherwise ``stop_strings`` makes each
sequence stop at its own stop string.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, GenerationConfig

from rstar.models.base import Completion, GenerationParams
from rstar.models.decoding import completion_from_ids, stop_token_ids
from rstar.models.loading import (
    check_vocab,
    checkpoint_dir,
    context_length,
    cut_left,
    load_tokenizer,
    resolve_dtype,
)

# One seeded generate call at a time per process (see TransformersBackend._seeded).
_SEEDED_CALLS = threading.Lock()


class TransformersBackend:
    """A causal LM checkpoint directory (model + tokenizer) served in-process.

    ``batch_size`` is the number of sequences (prompts x samples) per forward batch.
    ``max_context`` overrides the model's ``max_position_embeddings``; prompts longer than
    ``max_context - max_new_tokens`` tokens lose their beginning (with a warning).
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        *,
        dtype: str | torch.dtype = "auto",
        max_context: int | None = None,
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
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=resolve_dtype(dtype, self.device)
        ).to(self.device)
        self.model.eval()
        check_vocab(self.model, self.tokenizer, path)
        # Only GenerationParams decide how to sample (as with vLLM and HTTP servers): the
        # checkpoint's generation_config (repetition penalties, top_k=50 defaults...) is dropped.
        self.model.generation_config = GenerationConfig(
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id
        )
        self.context = context_length(self.model.config, max_context)

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        """Per prompt, ``params.n`` completions (see ``GenerationBackend``)."""
        if not prompts:
            return []
        room = self.context - params.max_new_tokens
        if room < 1:
            raise ValueError(
                f"max_new_tokens={params.max_new_tokens} leaves no room for a prompt in the "
                f"model's context of {self.context} tokens"
            )
        encoded = cut_left(self.tokenizer(prompts)["input_ids"], room, "prompt")
        # Greedy samples are all equal: generate one per prompt and repeat it.
        copies = 1 if params.temperature == 0 else params.n
        owner = [i for i in range(len(prompts)) for _ in range(copies)]
        order = sorted(range(len(owner)), key=lambda j: len(encoded[owner[j]]))
        chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        stop_ids = self.stop_token_ids(params.stop)
        kwargs = self._generate_kwargs(params, stop_ids)
        grouped: list[list[Completion]] = [[] for _ in prompts]
        with self._seeded(params.seed), torch.inference_mode():
            for chunk in tqdm(
                chunks, desc="generate", leave=False, disable=not self.progress or len(chunks) < 2
            ):
                rows = self._generate_chunk([encoded[owner[j]] for j in chunk], kwargs)
                for j, row in zip(chunk, rows, strict=True):
                    grouped[owner[j]].append(
                        completion_from_ids(self.tokenizer, row, params.stop, stop_ids or set())
                    )
        return [group * (params.n // copies) for group in grouped]

    @contextlib.contextmanager
    def _seeded(self, seed: int | None) -> Iterator[None]:
        """Seed torch's RNG for one call without disturbing the caller's RNG state.

        Sampling draws from torch's one global RNG (``generate`` takes no generator), so
        seeded calls from several threads (parallel search shards) take turns: the same
        seed then gives the same samples whatever else runs. Run shards in processes for
        parallel generation on a CPU.
        """
        if seed is None:
            yield
            return
        on_cpu = self.device.type == "cpu"
        with (
            _SEEDED_CALLS,
            torch.random.fork_rng(
                devices=[] if on_cpu else None, device_type="cuda" if on_cpu else self.device.type
            ),
        ):
            torch.manual_seed(seed)
            yield

    def stop_token_ids(self, stops: tuple[str, ...]) -> set[int] | None:
        """The stop strings' ids when each is an added token, else None (string matching)."""
        return stop_token_ids(self.tokenizer, stops)

    def _generate_kwargs(self, params: GenerationParams, stop_ids: set[int] | None) -> dict:
        eos = [] if self.tokenizer.eos_token_id is None else [self.tokenizer.eos_token_id]
        kwargs: dict = {
            "max_new_tokens": params.max_new_tokens,
            "do_sample": params.temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.temperature > 0:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        if stop_ids is not None:
            kwargs["eos_token_id"] = sorted(stop_ids) + eos
        else:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
            kwargs["eos_token_id"] = eos or None
        return kwargs

    def _generate_chunk(self, rows: list[list[int]], kwargs: dict) -> list[list[int]]:
        batch = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt").to(
            self.device
        )
        out = self.model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs
        )
        return out[:, batch["input_ids"].shape[1] :].tolist()
