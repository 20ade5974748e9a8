"""The format's markers as single tokens of a checkpoint about to be fine-tuned.

A base model (e.g. Qwen2.5-Math-7B) spells ``<end_of_step>`` as several ordinary tokens.
Training adds every marker of ``rstar.format.SPECIAL_TOKENS`` it lacks as an added token
and grows the embedding matrix to match, so that the markers are one id each at training
and at inference time (cheap stops; ``rstar.models`` insists on it).
"""

from __future__ import annotations

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rstar.format import SPECIAL_TOKENS
from rstar.models.loading import atomic_token_id


def add_format_tokens(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> list[str]:
    """Add the missing markers to ``tokenizer``, resize ``model``'s embeddings; returns them.

    The embedding matrix is resized whenever it has fewer rows than the tokenizer has
    tokens (new rows start at the mean embedding, the transformers default); a larger
    matrix (vocabularies padded to a multiple of 64, as Qwen's) is left as it is.
    """
    missing = [token for token in SPECIAL_TOKENS if atomic_token_id(tokenizer, token) is None]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    return missing
