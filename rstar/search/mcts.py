"""Monte Carlo Tree Search over code-augmented steps, batched across many problems.

One rollout of one tree: starting at the root, descend by UCT (:mod:`rstar.search.tree`);
at an unexpanded node, expand it (n candidate next steps) and keep descending through the
new children; at a terminal node, back-propagate its reward along the path (Eq. 2). The
rollout ends there and the next one starts from the root.

Batching: all trees advance together. In each *search step* every active tree descends
until it needs an expansion, and the leaves of all trees are expanded by one
:meth:`Expander.expand` call — one generate call, one sandbox batch, one PPM batch. A tree
is finished after ``rollouts`` rollouts or when its root is closed (nothing left to try).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from rstar.grading import is_correct
from rstar.models import GenerationBackend, PPMScorer
from rstar.sandbox import Sandbox
from rstar.search.config import SearchConfig
from rstar.search.expansion import Expander, SearchStats
from rstar.search.tree import Node, Tree


@dataclass(frozen=True)
class SearchProblem:
    """A problem to search; ``gold`` is required when generating training data."""

    problem_id: str
    question: str
    gold: str | None = None


class MissingGoldError(ValueError):
    """Data generation needs a gold answer to score terminal steps."""


@dataclass
class TreeResult:
    """One searched problem: its whole tree and a summary."""

    tree: Tree
    rollouts: int
    search_time: float
    terminals: list[Node] = field(default_factory=list)

    @property
    def problem_id(self) -> str:
        return self.tree.problem_id

    @property
    def trajectories(self) -> int:
        return len(self.terminals)

    @property
    def correct(self) -> int:
        return sum(1 for node in self.terminals if node.correct)


@dataclass
class _TreeState:
    tree: Tree
    rollout: int = 0
    cursor: Node | None = None
    started: float = 0.0
    finished: float | None = None


class MCTS:
    """Batched MCTS. ``ppm`` given → PPM-augmented annotation, else terminal-guided.

    ``test_time=True`` searches without gold answers: terminal answers are scored by the
    PPM (Eq. 3 applied to the terminal step). Otherwise every problem needs ``gold``.
    """

    def __init__(
        self,
        policy: GenerationBackend,
        sandbox: Sandbox,
        config: SearchConfig,
        ppm: PPMScorer | None = None,
        test_time: bool = False,
        grader: Callable[[str | None, str | None], bool] = is_correct,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.test_time = test_time
        self.progress = progress
        self.expander = Expander(policy, sandbox, config, ppm=ppm, grader=grader)

    @property
    def stats(self) -> SearchStats:
        return self.expander.stats

    def search(
        self, problems: Sequence[SearchProblem], rollouts: int | None = None
    ) -> list[TreeResult]:
        """Search every problem with ``rollouts`` rollouts each (default: the config's)."""
        rollouts = rollouts or self.config.rollouts
        states = [_TreeState(self._tree(problem)) for problem in problems]
        start = time.perf_counter()
        for state in states:
            state.started = start
        with tqdm(
            total=rollouts * len(states),
            desc="MCTS rollouts",
            unit="rollout",
            disable=not self.progress,
        ) as bar:
            active = list(states)
            while active:
                leaves = []
                for state in active:
                    leaf = self._advance(state, rollouts, bar)
                    if leaf is not None:
                        leaves.append((state, leaf))
                if leaves:
                    self.expander.expand([(s.tree, leaf, s.rollout) for s, leaf in leaves])
                    for state, leaf in leaves:
                        state.cursor = leaf
                active = [state for state in active if state.finished is None]
        self.stats.total_s += time.perf_counter() - start
        return [
            TreeResult(
                tree=s.tree,
                rollouts=s.rollout,
                search_time=(s.finished or start) - start,
                terminals=s.tree.terminals(),
            )
            for s in states
        ]

    def _tree(self, problem: SearchProblem) -> Tree:
        if not self.test_time and problem.gold is None:
            raise MissingGoldError(
                f"problem {problem.problem_id!r} has no gold answer; data generation scores "
                "terminal steps against it (search with test_time=True to use the PPM instead)"
            )
        gold = None if self.test_time else problem.gold
        return Tree(problem.problem_id, problem.question, gold)

    def _advance(self, state: _TreeState, rollouts: int, bar: tqdm) -> Node | None:
        """Descend until a node needs expansion; finish rollouts at terminals on the way.

        Returns the node to expand, or None when the tree is finished.
        """
        while state.rollout < rollouts:
            node = state.tree.descend(state.cursor or state.tree.root, self.config.c_puct)
            if node is None:  # closed below the cursor: only possible at the root
                break
            if not node.terminal:
                return node
            Tree.backpropagate(node, node.reward if node.reward is not None else 0.0)
            state.rollout += 1
            state.cursor = None
            bar.update(1)
        state.finished = time.perf_counter()
        return None
