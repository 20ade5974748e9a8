"""Settings of evaluations (the ``eval:`` section of a profile).

Import-light (profiles embed it): the methods are named here with the search each runs;
``rstar.evaluate.methods`` adds how each picks its answer.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from rstar.settings import Settings

# The searches methods run.
GREEDY = "greedy"
MCTS_SEARCH = "mcts"
SAMPLE = "sample"
BEAM = "beam"

# Each method and its search; every search but greedy takes a trajectory budget k.
METHOD_SEARCH: dict[str, str] = {
    "greedy": GREEDY,
    "mcts": MCTS_SEARCH,
    "mcts_vote": MCTS_SEARCH,
    "best_of_n": SAMPLE,
    "majority": SAMPLE,
    "beam": BEAM,
}


class EvalConfig(Settings):
    """The one evaluation section: what ``rstar eval`` runs, and what every round is
    measured on after training (greedy always, then the budgeted methods).

    Defaults suit the tiny profile; the authors evaluate with 64 trajectories and 32
    candidate steps per expansion (docs/method.md §2).
    """

    benchmarks: tuple[str, ...] = Field(
        ("toy",),
        description="what each round is evaluated on (and decontaminated against): 'toy' "
        "(the held-out toy test set), names of shipped benchmarks, or benchmark files",
    )
    methods: tuple[str, ...] = Field(
        ("greedy", "mcts"), description=f"evaluation methods, of: {', '.join(METHOD_SEARCH)}"
    )
    trajectories: int = Field(
        8, gt=0, description="trajectories per problem (MCTS rollouts, samples, beam width)"
    )
    candidates: int | None = Field(
        None,
        gt=0,
        description="candidate steps per expansion at test time (MCTS, beam); default: the "
        "profile's search.candidates",
    )
    scaling: tuple[int, ...] = Field(
        (1, 2, 4, 8, 16),
        description="trajectory budgets of the test-time scaling curve; () for none",
    )
    scaling_methods: tuple[str, ...] | None = Field(
        None, description="methods on the scaling curve; default: every budgeted method run"
    )
    max_problems: int | None = Field(
        None, gt=0, description="evaluate only the first N problems of a benchmark file"
    )
    toy_per_level: int | None = Field(
        None,
        gt=0,
        description="toy test problems per level (`rstar eval`, and greedy in rounds); "
        "default: the world's test_per_level",
    )
    toy_search_per_level: int | None = Field(
        None,
        gt=0,
        description="toy test problems per level for the budgeted methods in rounds (they "
        "cost k trajectories each); default: toy_per_level",
    )
    write_trees: bool = Field(True, description="store the test-time search trees (stage eval)")

    @field_validator("methods", "scaling_methods")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = [m for m in value or () if m not in METHOD_SEARCH]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHOD_SEARCH)}")
        return value

    @field_validator("scaling")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(k < 1 for k in value):
            raise ValueError(f"scaling budgets must be >= 1, got {value}")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _some_method(self) -> EvalConfig:
        if not self.methods:
            raise ValueError("methods must name at least one method")
        return self

    def curve_methods(self) -> tuple[str, ...]:
        """The methods drawn on the scaling curve (only budgeted methods have one)."""
        chosen = self.scaling_methods if self.scaling_methods is not None else self.methods
        return tuple(m for m in chosen if METHOD_SEARCH[m] != GREEDY) if self.scaling else ()

    def budgeted_methods(self) -> tuple[str, ...]:
        """The methods that take a trajectory budget (every one but greedy)."""
        return tuple(m for m in self.methods if METHOD_SEARCH[m] != GREEDY)
