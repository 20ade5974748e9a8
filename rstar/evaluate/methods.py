"""Evaluation methods: a search that finds trajectories, and a rule that picks the answer.

=========  ======================  ================================================  =====
method     search                  answer                                            PPM
=========  ======================  ================================================  =====
greedy     greedy decoding         the one trajectory (pass@1)                       no
mcts       test-time MCTS, k       the trajectory the PPM scores highest             yes
mcts_vote  test-time MCTS, k       PPM-score-weighted vote over the answers          yes
best_of_n  k sampled solutions     the solution the PPM scores highest               yes
majority   k sampled solutions     plain majority vote (self-consistency)            no
beam       step beam search, k     the finished trajectory the PPM scores highest    yes
=========  ======================  ================================================  =====

k is the trajectory budget: MCTS rollouts, sampled solutions, or the beam width. The
searches and answer rules are ``rstar.search``'s; this module only names the combinations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rstar.evaluate.config import GREEDY, METHOD_SEARCH, EvalConfig
from rstar.search.answer import best_trajectory, majority_vote
from rstar.search.tree import Node


def _vote(terminals: Sequence[Node]) -> Node | None:
    return majority_vote(terminals, weighted=False)


def _weighted_vote(terminals: Sequence[Node]) -> Node | None:
    return majority_vote(terminals, weighted=True)


@dataclass(frozen=True)
class Method:
    """An evaluation method: which search, which answer rule, whether it needs a PPM."""

    name: str
    choose: Callable[[Sequence[Node]], Node | None]
    needs_ppm: bool
    description: str

    @property
    def search(self) -> str:
        """The search the method runs (``rstar.evaluate.config.METHOD_SEARCH``)."""
        return METHOD_SEARCH[self.name]

    @property
    def budgeted(self) -> bool:
        """Whether the method takes a trajectory budget k (everything but greedy)."""
        return self.search != GREEDY

    def label(self, k: int) -> str:
        """The method's name in stored results: ``mcts@8``, ``greedy``."""
        return f"{self.name}@{k}" if self.budgeted else self.name


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("greedy", best_trajectory, False, "greedy decoding, pass@1"),
        Method("mcts", best_trajectory, True, "MCTS, the PPM picks a trajectory"),
        Method("mcts_vote", _weighted_vote, True, "MCTS, PPM-weighted vote"),
        Method("best_of_n", best_trajectory, True, "k samples, the PPM picks one"),
        Method("majority", _vote, False, "k samples, majority vote"),
        Method("beam", best_trajectory, True, "step beam search with the PPM"),
    )
}


def ppm_methods(config: EvalConfig) -> list[str]:
    """The methods an evaluation runs (scaling curve included) that choose with the PPM."""
    return sorted(m for m in {*config.methods, *config.curve_methods()} if METHODS[m].needs_ppm)


def first_samples(root: Node, terminals: Sequence[Node], k: int) -> list[Node]:
    """The trajectories of the first ``k`` samples of a sampling search (best-of-N).

    Each sample is one child of the root (identical samples are kept apart) continued to
    its end, so the first k samples of a search with n >= k samples are a search with k.
    """
    first = {id(child) for child in root.children[:k]}
    return [node for node in terminals if id(node.path()[0]) in first]
