"""What an evaluation produces: per-problem results, per-method summaries, the scaling curve."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa

from rstar.search.mcts import TreeResult
from rstar.store.schema import EVAL_RESULT_SCHEMA


@dataclass(frozen=True)
class EvalProblem:
    """A benchmark problem: its id, question, gold answer and (toy world, MATH) level.

    ``answer`` is None for a row without a usable gold answer: it is scored wrong."""

    problem_id: str
    question: str
    answer: str | None
    level: int | None = None


@dataclass(frozen=True)
class ProblemResult:
    """The answer one method gave to one problem, graded against the gold answer."""

    problem_id: str
    level: int | None
    prediction: str | None
    correct: bool
    score: float | None  # PPM score of the chosen trajectory, None without one
    answers: int  # trajectories that reached an answer
    reached: bool  # some trajectory reached the gold answer (pass@k)


@dataclass(frozen=True)
class MethodResult:
    """One method at one trajectory budget on one benchmark."""

    benchmark: str
    method: str
    k: int
    label: str  # as stored: "mcts@8", "greedy"
    results: tuple[ProblemResult, ...]
    seconds: float

    @property
    def correct(self) -> int:
        return sum(r.correct for r in self.results)

    @property
    def accuracy(self) -> float:
        return self.correct / len(self.results) if self.results else 0.0

    @property
    def pass_at_k(self) -> float:
        """Share of problems where some trajectory found the gold answer: what a perfect
        answer picker would score with the same search."""
        return sum(r.reached for r in self.results) / len(self.results) if self.results else 0.0

    def by_level(self) -> dict[int, tuple[int, int]]:
        """Per level: (problems, correct); problems without a level are left out."""
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for r in self.results:
            if r.level is not None:
                counts[r.level][0] += 1
                counts[r.level][1] += r.correct
        return {level: (n, c) for level, (n, c) in sorted(counts.items())}

    def table(self, round: int) -> pa.Table:
        """The per-problem rows (``EVAL_RESULT_SCHEMA``) for ``Catalog.add_eval_results``."""
        n = len(self.results)
        return pa.table(
            {
                "round": [round] * n,
                "benchmark": [self.benchmark] * n,
                "method": [self.label] * n,
                "problem_id": [r.problem_id for r in self.results],
                "prediction": [r.prediction for r in self.results],
                "correct": [r.correct for r in self.results],
                "score": [r.score for r in self.results],
            },
            schema=EVAL_RESULT_SCHEMA,
        )


@dataclass(frozen=True)
class ScalingCurve:
    """Accuracy (and pass@k) against the trajectory budget, per method."""

    benchmark: str
    budgets: tuple[int, ...]
    accuracy: dict[str, list[float]]  # method -> accuracy at each budget
    pass_at_k: dict[str, list[float]]  # method -> pass@k at each budget


@dataclass
class EvalReport:
    """Everything one evaluation of one benchmark produced.

    Accuracies are over all ``num_problems``, the ``unscorable`` ones included (the
    paper's denominators). ``searches`` holds the search trees by search label ("mcts@8",
    "sample@16"), for the store; ``results`` the methods at the configured budget;
    ``scaling`` the curve.
    """

    benchmark: str
    num_problems: int
    unscorable: int = 0  # problems without a usable gold answer (always scored wrong)
    results: list[MethodResult] = field(default_factory=list)
    scaling: ScalingCurve | None = None
    searches: dict[str, list[TreeResult]] = field(default_factory=dict)

    def summary(self) -> dict:
        """A JSON-ready summary: accuracy per method (and per level), the scaling curve."""
        return {
            "benchmark": self.benchmark,
            "problems": self.num_problems,
            "unscorable": self.unscorable,
            "methods": {
                r.label: {
                    "accuracy": r.accuracy,
                    "correct": r.correct,
                    "pass_at_k": r.pass_at_k,
                    "seconds": r.seconds,
                    "by_level": {
                        str(level): {"problems": n, "correct": c, "accuracy": c / n}
                        for level, (n, c) in r.by_level().items()
                    },
                }
                for r in self.results
            },
            "scaling": None
            if self.scaling is None
            else {
                "budgets": list(self.scaling.budgets),
                "accuracy": self.scaling.accuracy,
                "pass_at_k": self.scaling.pass_at_k,
            },
        }
