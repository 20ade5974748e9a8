"""Running evaluation methods on a benchmark's problems, and the test-time scaling curve.

Each search a method needs runs once over all problems (batched across them, as the
search does) and every answer it reaches is graded against the gold answer with
``rstar.grading.is_equivalent``; methods sharing a search (``mcts`` and ``mcts_vote``,
``best_of_n`` and ``majority``) only differ in how they pick the answer.

The scaling curve runs MCTS and beam search once per budget; for sampled solutions one run
with the largest budget is enough, the first k samples being a run with k samples.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rstar.evaluate.config import BEAM, GREEDY, MCTS_SEARCH, SAMPLE, EvalConfig
from rstar.evaluate.methods import METHODS, first_samples, ppm_methods
from rstar.evaluate.results import (
    EvalProblem,
    EvalReport,
    MethodResult,
    ProblemResult,
    ScalingCurve,
)
from rstar.models import GenerationBackend, PPMScorer
from rstar.sandbox import Sandbox
from rstar.search import MCTS, Expander, SearchProblem, TreeResult
from rstar.search.answer import answer_trajectories, grade_terminals
from rstar.search.beam import beam_search
from rstar.search.best_of_n import best_of_n
from rstar.search.config import SearchConfig
from rstar.search.greedy import greedy
from rstar.search.tree import Node


class MissingPPMError(ValueError):
    """A method that picks answers with the PPM was asked for without a PPM."""


class Searches:
    """The searches of one evaluation, each run once and graded; see the module docstring."""

    def __init__(
        self,
        problems: Sequence[EvalProblem],
        policy: GenerationBackend,
        sandbox: Sandbox,
        search: SearchConfig,
        ppm: PPMScorer | None = None,
        progress: bool = True,
    ) -> None:
        self.problems = list(problems)
        self.policy, self.sandbox, self.search, self.ppm = policy, sandbox, search, ppm
        self.progress = progress
        self.runs: dict[tuple[str, int], list[TreeResult]] = {}
        self.seconds: dict[tuple[str, int], float] = {}

    def _search(self, kind: str, k: int) -> list[TreeResult]:
        problems = [SearchProblem(p.problem_id, p.question) for p in self.problems]
        expander = Expander(self.policy, self.sandbox, self.search, ppm=self.ppm)
        if kind == GREEDY:
            return greedy(expander, problems)
        if kind == MCTS_SEARCH:
            mcts = MCTS(
                self.policy,
                self.sandbox,
                self.search,
                ppm=self.ppm,
                test_time=True,
                progress=self.progress,
            )
            return mcts.search(problems, rollouts=k)
        if kind == SAMPLE:
            return best_of_n(expander, problems, n=k)
        if kind == BEAM:
            return beam_search(expander, problems, beam_width=k, candidates=self.search.candidates)
        raise ValueError(f"unknown search {kind!r}")

    @staticmethod
    def _key(kind: str, k: int) -> tuple[str, int]:
        return kind, 1 if kind == GREEDY else k

    def run(self, kind: str, k: int) -> list[TreeResult]:
        """The results of search ``kind`` with budget ``k`` (run now unless run before)."""
        key = self._key(kind, k)
        if key not in self.runs:
            started = time.perf_counter()
            results = self._search(*key)
            for problem, result in zip(self.problems, results, strict=True):
                grade_terminals(result.terminals, problem.answer)
            self.seconds[key] = time.perf_counter() - started
            self.runs[key] = results
        return self.runs[key]

    def terminals(self, kind: str, k: int) -> tuple[list[list[Node]], float]:
        """Per problem, the trajectories of search ``kind`` at budget ``k``; and the seconds
        the search took. Samples come from the smallest sampling run with at least k."""
        if kind == SAMPLE:
            sizes = sorted(n for (s, n) in self.runs if s == SAMPLE and n >= k)
            n = sizes[0] if sizes else k
            results = self.run(SAMPLE, n)
            terminals = [first_samples(r.tree.root, r.terminals, k) for r in results]
            return terminals, self.seconds[(SAMPLE, n)]
        results = self.run(kind, k)
        return [r.terminals for r in results], self.seconds[self._key(kind, k)]

    def labelled_runs(self) -> dict[str, list[TreeResult]]:
        """Every search run, by label ("mcts@8", "sample@16", "greedy")."""
        return {
            (kind if kind == GREEDY else f"{kind}@{k}"): results
            for (kind, k), results in self.runs.items()
        }


def method_result(searches: Searches, benchmark: str, method_name: str, k: int) -> MethodResult:
    """Method ``method_name`` at budget ``k``: its answer to every problem, graded."""
    method = METHODS[method_name]
    k = k if method.budgeted else 1
    terminals, seconds = searches.terminals(method.search, k)
    rows = []
    for problem, ends in zip(searches.problems, terminals, strict=True):
        chosen = method.choose(ends)
        answered = answer_trajectories(ends)
        rows.append(
            ProblemResult(
                problem_id=problem.problem_id,
                level=problem.level,
                prediction=chosen.answer if chosen is not None else None,
                correct=bool(chosen is not None and chosen.correct),
                score=chosen.ppm_score if chosen is not None else None,
                answers=len(answered),
                reached=any(node.correct for node in answered),
            )
        )
    return MethodResult(benchmark, method.name, k, method.label(k), tuple(rows), round(seconds, 2))


def evaluate_problems(
    benchmark: str,
    problems: Sequence[EvalProblem],
    policy: GenerationBackend,
    sandbox: Sandbox,
    search: SearchConfig,
    config: EvalConfig,
    ppm: PPMScorer | None = None,
    progress: bool = True,
) -> EvalReport:
    """Run ``config.methods`` at ``config.trajectories`` and the scaling curve.

    ``search`` sizes the searches (its ``candidates`` replaced by ``config.candidates``
    when set); without ``ppm`` only methods that need none may be asked for.
    """
    curve_methods = config.curve_methods()
    needing = ppm_methods(config)
    if ppm is None and needing:
        raise MissingPPMError(
            f"method(s) {needing} choose answers with the PPM, but no PPM was given "
            "(pass a PPM checkpoint, or use greedy / majority)"
        )
    if config.candidates is not None:
        search = search.model_copy(update={"candidates": config.candidates})
    searches = Searches(problems, policy, sandbox, search, ppm=ppm, progress=progress)
    samples = [config.trajectories for m in config.methods if METHODS[m].search == SAMPLE]
    samples += [k for m in curve_methods if METHODS[m].search == SAMPLE for k in config.scaling]
    if samples:  # one sampling run serves every smaller budget
        searches.run(SAMPLE, max(samples))
    unscorable = sum(p.answer is None for p in searches.problems)
    report = EvalReport(benchmark, len(searches.problems), unscorable)
    for name in config.methods:
        report.results.append(method_result(searches, benchmark, name, config.trajectories))
    if curve_methods:
        curves = {
            name: [method_result(searches, benchmark, name, k) for k in config.scaling]
            for name in curve_methods
        }
        report.scaling = ScalingCurve(
            benchmark,
            config.scaling,
            {name: [r.accuracy for r in rs] for name, rs in curves.items()},
            {name: [r.pass_at_k for r in rs] for name, rs in curves.items()},
        )
    report.searches = searches.labelled_runs()
    return report
