"""Settings of the self-evolution rounds (the ``evolve:`` section of a profile).

Defaults are the paper's (DESIGN §1.4): round 1 searches with the bootstrap policy and
round 2 with SLM-r1, both terminal-guided; rounds 3-4 are PPM-augmented with the previous
round's PPM; every round re-searches the problems with no correct trajectory (the paper:
"an additional MCTS with 16 rollouts"), and round 4 escalates that extra search. The tiny
profile shrinks every count so four rounds fit in minutes on a CPU.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Values = Literal["terminal", "ppm"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoundConfig(_Strict):
    """How one round searches."""

    rollouts: int = Field(16, gt=0, description="MCTS rollouts per problem")
    values: Values = Field(
        "terminal",
        description="terminal: Q-values from terminal rewards only; ppm: the previous round's "
        "PPM gives every new node its initial value (PPM-augmented)",
    )
    extra_rollouts: int | None = Field(
        16, gt=0, description="rollouts of the extra search on problems left unsolved; None: none"
    )
    error_threshold: int | None = Field(
        None, ge=1, description="consecutive code errors ending a node; default: the profile's"
    )


def _paper_rounds() -> dict[int, RoundConfig]:
    return {
        1: RoundConfig(rollouts=8, error_threshold=2),
        2: RoundConfig(rollouts=16),
        3: RoundConfig(rollouts=16, values="ppm"),
        4: RoundConfig(rollouts=16, values="ppm", extra_rollouts=64),
    }


class ProblemsConfig(_Strict):
    """The problems every round searches (the same set each round, as the paper)."""

    source: Literal["toy", "files"] = Field(
        "toy", description="toy: the profile's toy world; files: the `files` below"
    )
    files: tuple[str, ...] = Field(
        (), description="problem files or dataset ids (rstar.problems formats), for source=files"
    )
    toy_levels: tuple[int, ...] = Field((1, 2, 3, 4, 5, 6), description="toy levels searched")
    toy_per_level: int = Field(
        20, gt=0, description="toy train problems per level (after those the base model saw)"
    )
    limit: int | None = Field(None, gt=0, description="search only the first N problems (by id)")
    decontaminate: tuple[str, ...] | None = Field(
        None,
        description="benchmarks (names or files) whose questions are removed from the problem "
        "files, by exact match or n-gram overlap; None: the benchmarks the rounds are "
        "evaluated on (evaluation.benchmarks); []: none",
    )
    ngram: int = Field(13, ge=1, description="n of the n-gram overlap test of decontamination")

    @model_validator(mode="after")
    def _files_given(self) -> ProblemsConfig:
        if self.source == "files" and not self.files:
            raise ValueError("problems.source is 'files' but problems.files is empty")
        return self


class BenchmarkConfig(_Strict):
    """What each round is measured on after training."""

    benchmarks: tuple[str, ...] = Field(
        ("toy",), description="'toy' (held-out toy test set) or names/paths of benchmark files"
    )
    greedy_per_level: int = Field(
        50, gt=0, description="toy test problems per level for greedy decoding"
    )
    search_per_level: int = Field(
        10, gt=0, description="toy test problems per level for MCTS + PPM (k trajectories)"
    )
    max_problems: int | None = Field(
        None, gt=0, description="benchmark files: only the first N problems"
    )
    search_methods: tuple[str, ...] = Field(
        ("mcts",), description="methods with a trajectory budget run after greedy (rstar.evaluate)"
    )
    trajectories: int = Field(8, gt=0, description="trajectories per problem at test time")
    scaling: tuple[int, ...] = Field((), description="budgets of a test-time scaling curve; ()")


class EvolveConfig(_Strict):
    """The ``evolve:`` section: problems, the four rounds, sharding, evaluation."""

    experiment: str = Field("evolve", description="MLflow experiment of the round runs")
    problems: ProblemsConfig = ProblemsConfig()
    rounds: dict[int, RoundConfig] = Field(default_factory=_paper_rounds)
    shard_size: int = Field(64, gt=0, description="problems per MCTS shard (one task each)")
    concurrency: int = Field(2, gt=0, description="tasks run at once (Prefect task runner)")
    search_threads: int | None = Field(
        None, gt=0, description="torch threads per search shard (CPU); default: all cores"
    )
    evaluation: BenchmarkConfig = BenchmarkConfig()

    @model_validator(mode="after")
    def _four_rounds(self) -> EvolveConfig:
        if sorted(self.rounds) != [1, 2, 3, 4]:
            raise ValueError(f"rounds must configure rounds 1-4, got {sorted(self.rounds)}")
        if self.rounds[1].values == "ppm":
            raise ValueError("round 1 has no PPM to search with: its values must be terminal")
        return self

    def decontamination_benchmarks(self) -> tuple[str, ...]:
        """The benchmarks whose questions must not be searched or trained on."""
        chosen = self.problems.decontaminate
        return self.evaluation.benchmarks if chosen is None else chosen

    def round(self, number: int) -> RoundConfig:
        """The settings of round ``number`` (1-4)."""
        if number not in self.rounds:
            raise ValueError(f"round must be 1-4, got {number}")
        return self.rounds[number]
