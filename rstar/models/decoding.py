"""Turning generated token ids into completions, the same way in every local backend.

A local backend stops each sequence at its first stop token when every stop string is a
single added token of the tokenizer (the format's markers are, in the project's
tokenizers): :func:`stop_token_ids`. :func:`completion_from_ids` then decodes a generated
row (the stop or end-of-text token, then padding) into a :class:`Completion`.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from rstar.models.base import Completion, find_stop
from rstar.models.loading import atomic_token_id


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, stops: tuple[str, ...]) -> set[int] | None:
    """The stop strings' ids when each is an added token, else None (string matching)."""
    ids = [atomic_token_id(tokenizer, s) for s in stops]
    if any(i is None for i in ids):
        return None
    return {i for i in ids if i is not None}


def completion_from_ids(
    tokenizer: PreTrainedTokenizerBase,
    row: list[int],
    stops: tuple[str, ...],
    stop_ids: set[int],
) -> Completion:
    """One generated row (stop/EOS token, then padding) as a Completion.

    A row ends at its first stop or EOS token; a row stopped by a stop *string* is followed
    by pad tokens. When pad and EOS are the same token, an EOS right after a stop string is
    padding, which the stop-string check below tells apart from a real EOS. (A model that
    itself generates the pad token at the end of a truncated row gets those tokens
    uncounted: pad tokens should never be sampled by a trained model.)
    """
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id
    end = next((k for k, t in enumerate(row) if t in stop_ids or t == eos_id), None)
    ended_by_eos = end is not None and row[end] not in stop_ids
    if end is None:
        length = len(row)
        while length and row[length - 1] == pad_id and pad_id not in stop_ids:
            length -= 1
        body = row[:length]
    else:
        body = row[:end] if ended_by_eos else row[: end + 1]
    text = tokenizer.decode(body, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    match = find_stop(text, stops)
    if match is not None:
        cut, stop = match
        return Completion(text=text[:cut], stop=stop, truncated=False, num_tokens=len(body))
    if ended_by_eos:
        return Completion(text=text, stop=None, truncated=False, num_tokens=len(body) + 1)
    return Completion(text=text, stop=None, truncated=True, num_tokens=len(body))
