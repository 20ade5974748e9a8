"""A byte-level BPE tokenizer trained locally on toy-world text.

Digits are split one per token, so the policy copies numbers digit by digit and sees every
digit often (whole-number tokens would leave most numbers rare). Every format marker of
:mod:`rstar.format` is a special token, i.e. exactly one id, which makes stop strings cheap
and lets ``eos_token_id`` stop generation at ``<end_of_answer>``.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from rstar.format import ANSWER_END, SPECIAL_TOKENS

PAD_TOKEN = "<pad>"
# The gold responses end with <end_of_answer>, so it doubles as end-of-sequence: SFT then
# adds no extra token after the answer and whole-solution generation stops there.
EOS_TOKEN = ANSWER_END


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train the toy tokenizer on ``texts`` (prompts and solutions) and wrap it for transformers.

    Padding is on the left, as batched generation needs.
    """
    specials = [PAD_TOKEN, *SPECIAL_TOKENS]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        additional_special_tokens=list(SPECIAL_TOKENS),
        padding_side="left",
    )
