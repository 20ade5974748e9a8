"""Loading local transformers checkpoints with the checks the format needs.

A policy or PPM checkpoint must ship its tokenizer, and that tokenizer must know the
format's markers as single tokens: the markers are then single-token stops (cheap to detect
during generation) and are never split differently at training and at inference time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rstar.format import SPECIAL_TOKENS

logger = logging.getLogger(__name__)

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


class ModelLoadError(ValueError):
    """A checkpoint that cannot be used as it is; the message says how to fix it."""


def checkpoint_dir(model_path: str | Path) -> Path:
    """``model_path`` as an existing directory, or a clear error (everything is offline)."""
    path = Path(model_path)
    if not path.is_dir():
        raise ModelLoadError(
            f"model directory {path} does not exist (models load from local directories only; "
            "for the toy world, create one with `rstar toy bootstrap`)"
        )
    return path


def load_tokenizer(
    model_path: str | Path, *, require_special_tokens: bool = True
) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer, set up for left padding, with a pad token.

    With ``require_special_tokens`` every marker of ``rstar.format.SPECIAL_TOKENS`` must be a
    single token; checkpoints that spell the markers as plain text (e.g. a base model never
    fine-tuned on the format) can be loaded with it False.
    """
    path = checkpoint_dir(model_path)
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"{path} has no tokenizer (none of {', '.join(_TOKENIZER_FILES)}). Save the "
            f"tokenizer the model was trained with beside it (tokenizer.save_pretrained('{path}')),"
            " or, for the toy world, run `rstar toy bootstrap`."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: the tokenizer does not load: {exc}") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ModelLoadError(
                f"{path}: the tokenizer has neither a pad nor an end-of-text token; add one with "
                "tokenizer.add_special_tokens({'pad_token': '<pad>'}), resize the model's "
                "embeddings (model.resize_token_embeddings(len(tokenizer))) and save both"
            )
        tokenizer.pad_token = tokenizer.eos_token
    if require_special_tokens:
        missing = [t for t in SPECIAL_TOKENS if atomic_token_id(tokenizer, t) is None]
        if missing:
            raise ModelLoadError(
                f"{path}: the tokenizer lacks the format's special tokens {missing} (each must be "
                "an added token). Add them with "
                "tokenizer.add_tokens(list(rstar.format.SPECIAL_TOKENS), special_tokens=True), "
                "resize the embeddings with "
                "model.resize_token_embeddings(len(tokenizer)), fine-tune and save both; for the "
                "toy world run `rstar toy bootstrap`. A checkpoint that writes the markers as "
                "plain text loads with require_special_tokens=False."
            )
    return tokenizer


def atomic_token_id(tokenizer: PreTrainedTokenizerBase, text: str) -> int | None:
    """The id of ``text`` if it is an added (special) token, else None.

    Added tokens are matched before the BPE model runs, so ``text`` is always this one token
    wherever it occurs; an ordinary vocabulary entry may also be spelled by other tokens.
    """
    return tokenizer.get_added_vocab().get(text)


def check_vocab(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """The tokenizer's ids must all have an embedding row."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ModelLoadError(
            f"{path}: the tokenizer has {len(tokenizer)} tokens but the model only {rows} "
            "embedding rows; resize with model.resize_token_embeddings(len(tokenizer)) and "
            "fine-tune, or load the tokenizer the model was trained with"
        )


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"``: float32 on CPU, bfloat16 on a GPU that supports it, else float16."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def context_length(config: object, override: int | None) -> int:
    """Positions the model can attend over: ``override`` or ``max_position_embeddings``."""
    if override is not None:
        return override
    length = getattr(config, "max_position_embeddings", None)
    if length is None:
        raise ModelLoadError(
            "the model config has no max_position_embeddings; pass max_context explicitly"
        )
    return int(length)


def cut_left(ids: list[list[int]], max_len: int, what: str) -> list[list[int]]:
    """Keep the last ``max_len`` tokens of each sequence, warning about each cut.

    The end is what matters (the step being continued or scored), so the start goes.
    """
    if max_len < 1:
        raise ValueError(f"no room for the {what}: at most {max_len} tokens would fit")
    cut = [(i, len(seq) - max_len) for i, seq in enumerate(ids) if len(seq) > max_len]
    if not cut:
        return ids
    details = ", ".join(f"#{i}: {dropped} tokens" for i, dropped in cut[:10])
    more = f" and {len(cut) - 10} more" if len(cut) > 10 else ""
    logger.warning(
        "%d %s(s) longer than %d tokens were cut from the left (dropped %s%s)",
        len(cut),
        what,
        max_len,
        details,
        more,
    )
    return [seq[-max_len:] if len(seq) > max_len else seq for seq in ids]
