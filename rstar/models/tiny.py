"""Tiny real models built locally: a byte-level BPE tokenizer and a small Llama.

Used by tests (real transformers objects, no downloads) and as the starting point of the toy
world's policy. ``make_bigram`` turns a tiny causal Llama into a model whose greedy output is
known in advance, so stop handling can be tested exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

PAD_TOKEN = "<pad>"
EOS_TOKEN = "<eos>"


def build_tiny_tokenizer(
    texts: Iterable[str],
    special_tokens: Sequence[str] = (),
    *,
    vocab_size: int = 512,
    pad_token: str = PAD_TOKEN,
    eos_token: str = EOS_TOKEN,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts``; left padding.

    ``special_tokens`` (e.g. the format's markers) become single, never-split tokens. Every
    byte is in the vocabulary, so any text encodes. Ids: pad 0, eos 1, then the special tokens
    in order, then bytes and merges.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[pad_token, eos_token, *special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # padding_side persists through save/load only when given to the constructor.
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=pad_token,
        eos_token=eos_token,
        extra_special_tokens=list(special_tokens),
        padding_side="left",
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


@torch.no_grad()
def make_bigram(model: LlamaForCausalLM, transitions: Mapping[int, int]) -> LlamaForCausalLM:
    """Make greedy decoding follow ``transitions``: after token a comes token b.

    Every layer's output projections are zeroed, so the last hidden state is the current
    token's embedding. Each source token gets a one-hot embedding and the LM head maps it to
    its target; every other token embeds to zero, whose logits are all equal, so greedy picks
    id 0 after it. Needs ``hidden >= len(transitions)``.
    """
    hidden = model.config.hidden_size
    if len(transitions) > hidden:
        raise ValueError(f"{len(transitions)} transitions need hidden size >= that, not {hidden}")
    for layer in model.model.layers:
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    embed.zero_()
    head.zero_()
    for dim, (source, target) in enumerate(transitions.items()):
        embed[source, dim] = 1.0
        head[target, dim] = 10.0
    return model
