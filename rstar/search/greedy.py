"""Greedy decoding: one solution per problem, each step the policy's most likely one."""

from __future__ import annotations

from collections.abc import Sequence

from rstar.search.best_of_n import best_of_n
from rstar.search.expansion import Expander
from rstar.search.mcts import SearchProblem, TreeResult


def greedy(expander: Expander, problems: Sequence[SearchProblem]) -> list[TreeResult]:
    """Decode each problem step by step at temperature 0 (batched across problems)."""
    config = expander.config.model_copy(update={"temperature": 0.0})
    greedy_expander = Expander(expander.policy, expander.sandbox, config, ppm=expander.ppm)
    greedy_expander.stats = expander.stats
    return best_of_n(greedy_expander, problems, n=1)
