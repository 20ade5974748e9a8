"""The tiny Llama of the toy world, built and initialised locally (no downloads).

A LlamaConfig, not a Qwen2Config: with Qwen2's config, AutoTokenizer would swap Qwen2's
pre-tokenizer in on reload and the locally trained tokenizer's ids would change.
"""

from __future__ import annotations

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)


def tiny_llama_config(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 512,
    num_labels: int = 1,
) -> LlamaConfig:
    """A small Llama config sized to ``tokenizer`` (LlamaConfig keeps our tokenizer intact on
    reload; a Qwen2Config would make AutoTokenizer swap in Qwen2's pre-tokenizer)."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        num_labels=num_labels,
    )


def build_tiny_llama(
    tokenizer: PreTrainedTokenizerFast,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 512,
    classifier: bool = False,
    seed: int = 0,
) -> LlamaForCausalLM | LlamaForSequenceClassification:
    """A randomly initialised tiny Llama (causal LM, or a 1-label classifier for a PPM).

    Initialisation is seeded without touching the caller's RNG state.
    """
    config = tiny_llama_config(
        tokenizer, hidden=hidden, layers=layers, heads=heads, max_positions=max_positions
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model_cls = LlamaForSequenceClassification if classifier else LlamaForCausalLM
        return model_cls(config)
