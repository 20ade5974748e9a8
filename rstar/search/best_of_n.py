"""Best-of-N: N full solutions sampled per problem, the PPM scores each whole solution.

The root of each problem is expanded with ``n`` samples (identical samples are kept apart,
so votes over them stay fair), then every open branch is continued one sampled step at a
time until it ends — one batched call per step for all problems. The finished answers are
then scored by the PPM in one batch. This is a test-time strategy: gold answers are never
used (grade the results with :func:`rstar.search.answer.grade_terminals`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rstar.search.expansion import Expander
from rstar.search.mcts import SearchProblem, TreeResult
from rstar.search.tree import ANSWER, Tree


def continue_to_end(expander: Expander, trees: Sequence[Tree]) -> None:
    """Extend every open leaf of every tree by one sampled step until all have ended."""
    while True:
        leaves = [
            (tree, node, 0)
            for tree in trees
            for node in tree
            if node.parent is not None and not node.terminal and not node.expanded
        ]
        if not leaves:
            return
        expander.expand(leaves, n=1, score=False)


def finish(trees: Sequence[Tree], started: float) -> list[TreeResult]:
    """Visit every terminal once (so Q reflects its reward) and wrap the results."""
    elapsed = time.perf_counter() - started
    results = []
    for tree in trees:
        ends = [node for node in tree if node.terminal]
        for node in ends:
            Tree.backpropagate(node, node.reward if node.reward is not None else 0.0)
        results.append(TreeResult(tree, rollouts=len(ends), search_time=elapsed, terminals=ends))
    return results


def test_time_trees(problems: Sequence[SearchProblem]) -> list[Tree]:
    """Trees without gold answers: test-time strategies must not see them."""
    return [Tree(p.problem_id, p.question, gold=None) for p in problems]


def best_of_n(expander: Expander, problems: Sequence[SearchProblem], n: int) -> list[TreeResult]:
    """Sample ``n`` full solutions per problem; answers come back PPM-scored."""
    started = time.perf_counter()
    trees = test_time_trees(problems)
    expander.expand(
        [(tree, tree.root, 0) for tree in trees], n=n, merge_duplicates=False, score=False
    )
    continue_to_end(expander, trees)
    expander.score([(t, node) for t in trees for node in t if node.terminal_reason == ANSWER])
    return finish(trees, started)
