"""Tiny real models for tests: a tokenizer and checkpoints built in the test, no downloads,
and a model whose greedy output is known in advance (``make_bigram``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from rstar.format import SPECIAL_TOKENS
from rstar.toy.model import build_tiny_llama
from rstar.toy.tokenizer import train_tokenizer

EOS_TOKEN = "<eos>"


def tiny_tokenizer(
    texts: Iterable[str], special_tokens: Sequence[str] = SPECIAL_TOKENS, vocab_size: int = 300
) -> PreTrainedTokenizerFast:
    """A BPE tokenizer trained on ``texts``: pad 0, ``<eos>`` 1, then ``special_tokens``."""
    return train_tokenizer(
        texts, vocab_size, special_tokens=special_tokens, eos_token=EOS_TOKEN, split_digits=False
    )


def tiny_checkpoint(
    path: Path,
    texts: Iterable[str],
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    *,
    vocab_size: int = 300,
    hidden: int = 32,
    layers: int = 1,
    max_positions: int = 256,
    classifier: bool = False,
) -> Path:
    """A tokenizer and a randomly initialised tiny Llama saved at ``path`` (returned)."""
    tok = tiny_tokenizer(texts, special_tokens, vocab_size)
    model = build_tiny_llama(
        tok, hidden=hidden, layers=layers, max_positions=max_positions, classifier=classifier
    )
    tok.save_pretrained(path)
    model.save_pretrained(path)
    return path


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


# (question, partial trajectory) pairs a tiny PPM scores (tests/test_ppm*.py)
_STEP_1 = "<code>\n# Step 1: add\nx = 2 + 3\n<end_of_step>"
_STEP_2 = "\n# Now print the final answer\nprint(x)\n<end_of_code>"
PPM_PAIRS = [
    ("What is 2 plus 3?", _STEP_1),
    ("What is 2 plus 3?", _STEP_1 + _STEP_2 + "\n<output>5<end_of_output>"),
    ("Compute 7 times 6, then subtract 2.", "<code>\n# Step 1: multiply\ny = 7 * 6\n<end_of_step>"),
]


def tiny_ppm(path: Path) -> Path:
    """A tiny Llama sequence classifier (a PPM) over ``PPM_PAIRS``' texts, saved to ``path``."""
    from rstar.format import build_prompt

    tok = tiny_tokenizer([build_prompt(q) + p for q, p in PPM_PAIRS])
    model = build_tiny_llama(tok, hidden=32, layers=2, max_positions=128, classifier=True)
    with torch.no_grad():
        model.score.weight.mul_(40.0)  # raw scores of a few units, so tanh(raw / 5) bends
    tok.save_pretrained(path)
    model.save_pretrained(path)
    return path
