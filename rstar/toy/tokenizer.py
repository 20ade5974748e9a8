"""A byte-level BPE tokenizer trained locally on toy-world text.

Digits are split one per token, so the policy copies numbers digit by digit and sees every
digit often (whole-number tokens would leave most numbers rare). Every format marker of
:mod:`rstar.format` is a special token, i.e. exactly one id, which makes stop strings cheap
and lets ``eos_token_id`` stop generation at ``<end_of_answer>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from rstar.format import ANSWER_END, SPECIAL_TOKENS

PAD_TOKEN = "<pad>"
# The gold responses end with <end_of_answer>, so it doubles as end-of-sequence: SFT then
# adds no extra token after the answer and whole-solution generation stops there.
EOS_TOKEN = ANSWER_END


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    *,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    eos_token: str = EOS_TOKEN,
    split_digits: bool = True,
) -> PreTrainedTokenizerFast:
    """Train a BPE tokenizer on ``texts`` (prompts and solutions) and wrap it for
    transformers, padding on the left as batched generation needs.

    Ids: pad 0, then ``eos_token`` unless it is one of ``special_tokens``, then those in
    order, then bytes and merges. Every byte is in the vocabulary, so any text encodes.
    """
    specials = [PAD_TOKEN, *([eos_token] if eos_token not in special_tokens else [])]
    specials += list(special_tokens)
    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # padding_side persists through save/load only when given to the constructor.
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        eos_token=eos_token,
        extra_special_tokens=list(special_tokens),
        padding_side="left",
    )
