"""Greedy accuracy of a policy checkpoint on toy-world problems, per difficulty level.

Decoding goes through the project's real pipeline: :func:`rstar.search.greedy.greedy`
generates one step at a time at temperature 0 (stop strings of the format), every code
step's cumulative program runs in :class:`rstar.sandbox.Sandbox`, the program's real output
is appended after the final code step, and the boxed answer is graded with
:func:`rstar.grading.is_correct`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rstar.grading import is_correct
from rstar.models.config import ModelConfig
from rstar.models.factory import generation_backend
from rstar.sandbox import Sandbox
from rstar.search import Expander, SearchProblem
from rstar.search.config import SearchConfig
from rstar.search.greedy import greedy
from rstar.search.tree import ANSWER
from rstar.toy.world import ToyProblem


@dataclass(frozen=True)
class LevelResult:
    """Greedy results of one level: how many problems, how many solved, how many answered."""

    level: int
    problems: int
    correct: int
    answered: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.problems if self.problems else 0.0


def greedy_results(
    model_dir: str | Path,
    problems: Sequence[ToyProblem],
    *,
    batch_size: int = 64,
    max_new_tokens: int = 128,
    max_depth: int = 16,
    backend: str = "transformers",
    progress: bool = True,
) -> list[LevelResult]:
    """Greedy-decode every problem once and grade it; one :class:`LevelResult` per level.

    ``max_new_tokens`` bounds one step; ``max_depth`` the number of steps (a solution
    longer than that counts as wrong). ``backend`` is a generation backend's name
    (``rstar.models.BACKENDS``).
    """
    entry = ModelConfig(path=str(model_dir), backend=backend, batch_size=batch_size)
    policy = generation_backend(entry)
    config = SearchConfig(
        temperature=0.0, candidates=1, max_new_tokens=max_new_tokens, max_depth=max_depth
    )
    with Sandbox() as sandbox:
        results = greedy(
            Expander(policy, sandbox, config),
            [SearchProblem(p.id, p.question) for p in problems],
        )
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for problem, result in zip(problems, results, strict=True):
        answers = [n for n in result.terminals if n.terminal_reason == ANSWER and n.answer]
        row = totals[problem.level]
        row[0] += 1
        row[1] += any(is_correct(n.answer, problem.answer) for n in answers)
        row[2] += bool(answers)
    return [LevelResult(level, *totals[level]) for level in sorted(totals)]


def greedy_accuracy(
    model_dir: str | Path, problems: Sequence[ToyProblem], **kwargs
) -> dict[int, float]:
    """Share of problems solved by greedy decoding, per level (see :func:`greedy_results`)."""
    return {r.level: r.accuracy for r in greedy_results(model_dir, problems, **kwargs)}
