"""Test-time answers: choose among the trajectories a search found (docs/method.md §5).

- :func:`best_trajectory`: the answer trajectory with the highest PPM score of its final
  step (the PPM scores whole trajectories at test time); without PPM scores, the one with
  the highest average Q over its steps. Ties go to the trajectory found first.
- :func:`majority_vote`: a vote among the ``top_k`` best answer trajectories (ranked as
  above), answers grouped by mathematical equivalence. ``weighted=True`` weighs each vote
  by its score mapped to [0, 1] (``(s + 1) / 2`` for a PPM score or Q in [−1, 1]);
  otherwise each trajectory counts 1. The winning group's best trajectory is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rstar.grading import is_correct, is_equivalent
from rstar.search.tree import ANSWER, Node


def answer_trajectories(terminals: Sequence[Node]) -> list[Node]:
    """Terminal nodes that end in an extracted final answer."""
    return [n for n in terminals if n.terminal_reason == ANSWER and n.answer is not None]


def trajectory_score(node: Node) -> float:
    """PPM score of the final step when scored, else the average Q along the path."""
    if node.ppm_score is not None:
        return node.ppm_score
    path = node.path()
    return sum(n.q for n in path) / len(path)


def best_trajectory(terminals: Sequence[Node]) -> Node | None:
    """The answer trajectory with the highest score; None when no answer was reached."""
    candidates = answer_trajectories(terminals)
    return max(candidates, key=trajectory_score) if candidates else None


def majority_vote(
    terminals: Sequence[Node],
    top_k: int | None = None,
    weighted: bool = True,
    equivalent: Callable[[str, str], bool] = is_equivalent,
) -> Node | None:
    """The best trajectory of the answer with the most (score-weighted) votes."""
    ranked = sorted(answer_trajectories(terminals), key=trajectory_score, reverse=True)
    ranked = ranked[:top_k] if top_k else ranked
    groups: list[list[Node]] = []
    for node in ranked:
        group = next((g for g in groups if equivalent(node.answer, g[0].answer)), None)
        if group is None:
            groups.append([node])
        else:
            group.append(node)
    if not groups:
        return None

    def votes(group: list[Node]) -> float:
        if not weighted:
            return float(len(group))
        return sum((trajectory_score(n) + 1.0) / 2.0 for n in group)

    # max keeps the first group among equals: the one holding the best-ranked trajectory
    return max(groups, key=votes)[0]


def grade_terminals(
    terminals: Sequence[Node],
    gold: str | None,
    correct: Callable[[str | None, str | None], bool] = is_correct,
) -> None:
    """Mark each answer trajectory correct or not, after a test-time search (rewards
    untouched); without a usable gold answer none is correct."""
    for node in answer_trajectories(terminals):
        node.correct = correct(node.answer, gold)
