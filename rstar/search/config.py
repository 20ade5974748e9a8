"""How a search is sized (the ``search:`` section of a profile; rounds override parts of it)."""

from __future__ import annotations

from pydantic import Field

from rstar.settings import Settings


class SearchConfig(Settings):
    """MCTS sizing; defaults are the authors' data-generation settings (docs/method.md §2)."""

    rollouts: int = Field(16, gt=0, description="MCTS rollouts per problem")
    candidates: int = Field(12, gt=0, description="candidate next steps sampled per expansion")
    temperature: float = Field(0.8, ge=0.0, description="sampling temperature of the policy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling: probability mass")
    max_depth: int = Field(16, gt=0, description="steps before a node is forced terminal")
    max_new_tokens: int = Field(1024, gt=0, description="tokens per generated step")
    c_puct: float = Field(2.0, ge=0.0, description="UCT exploration constant c")
    error_threshold: int = Field(
        1, ge=1, description="consecutive code errors that make a node terminal (round 1: 2)"
    )
    seed: int = Field(0, description="seed of the sampling (each shard derives its own)")
