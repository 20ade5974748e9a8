"""The generation interface every backend implements, and the stop-string rules they share.

A backend takes a batch of prompts and returns, per prompt, ``n`` candidate continuations.
Each continuation ends at the first stop string (which stays in its text, so one
continuation is one whole step of the format), or is marked truncated when it ran out of
new tokens first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rstar.format import STOP_STRINGS


@dataclass
class GenerationParams:
    """How to sample. ``temperature == 0`` means greedy decoding (the n samples are equal)."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = STOP_STRINGS
    seed: int | None = None

    def __post_init__(self) -> None:
        self.stop = tuple(self.stop)
        if self.n < 1:
            raise ValueError(f"GenerationParams.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"GenerationParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"GenerationParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(
                f"GenerationParams.max_new_tokens must be >= 1, got {self.max_new_tokens}"
            )
        if any(not s for s in self.stop):
            raise ValueError("GenerationParams.stop must not contain an empty string")


@dataclass(frozen=True)
class Completion:
    """One sampled continuation.

    ``text`` includes the stop string that ended it (``stop``), and nothing after it.
    ``truncated`` is True when generation hit ``max_new_tokens`` (or another length limit)
    before any stop string; ``stop`` is None then, and also when the model's own end-of-text
    token ended it or a server did not say which stop string matched. ``num_tokens`` is the
    number of tokens generated for it.
    """

    text: str
    stop: str | None
    truncated: bool
    num_tokens: int


@runtime_checkable
class GenerationBackend(Protocol):
    """Anything that samples continuations: transformers, vLLM, an OpenAI-compatible server."""

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        """Per prompt (in order), ``params.n`` completions."""
        ...


def find_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    """The first stop string in ``text``: (end offset, stop string), or None.

    "First" means the one that ends earliest, which is where token-by-token generation stops;
    on a tie the longer string wins (it started earlier).
    """
    best: tuple[int, str] | None = None
    for stop in stops:
        start = text.find(stop)
        if start < 0:
            continue
        end = start + len(stop)
        if best is None or end < best[0] or (end == best[0] and len(stop) > len(best[1])):
            best = (end, stop)
    return best


def with_stop(text: str, stop: str) -> str:
    """``text`` ending with ``stop``: servers that drop the matched stop string get it back."""
    return text if text.endswith(stop) else text + stop
