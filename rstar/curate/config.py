"""Settings of the curation; the defaults are the paper's and the authors' code's
(docs/method.md §3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from rstar.settings import Settings
from rstar.store.schema import STAGES, TRAINING_STAGES


class CurationConfig(Settings):
    """How SFT rows and PPM preference pairs are selected from a round's trees."""

    sft_per_problem: int = Field(
        2, ge=1, description="correct trajectories per problem with the highest average Q"
    )
    pairs_top_k: int = Field(
        2, ge=1, description="positives (highest Q) and negatives (lowest Q) per pair group"
    )
    min_q_margin: float = Field(
        0.5,
        ge=0.0,
        description="drop pairs whose chosen Q exceeds the rejected Q by less; 0 keeps all",
    )
    min_edit_distance: int = Field(
        20, ge=0, description="drop pairs whose two sides are fewer characters apart; 0 keeps all"
    )
    final_step_pairs: bool = Field(
        True, description="also make the relaxed full-trajectory pairs for the final-answer step"
    )
    negatives: Literal["wrong_answer", "any_failure"] = Field(
        "wrong_answer",
        description="what a PPM negative leads to: a wrong final answer only (the paper; "
        "steps whose trajectories all crashed, hit the depth limit or were cut off are "
        "neither side), or any trajectory that is not correct",
    )
    sft_rounds: Literal["this", "all"] = Field(
        "this",
        description="SFT rows of this round's trees only (the paper), or of every round so "
        "far: per problem the best sft_per_problem trajectories found in any round",
    )
    stages: tuple[str, ...] = Field(
        TRAINING_STAGES, description="stages of the round whose trees are used"
    )

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [stage for stage in value if stage not in STAGES]
        if unknown or not value:
            raise ValueError(f"stages must be a non-empty subset of {STAGES}, got {value}")
        return value
