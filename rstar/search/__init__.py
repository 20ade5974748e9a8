"""Search over code-augmented steps: MCTS, step-level beam search, best-of-N and greedy.

One file per strategy, all growing trees through the batched :class:`Expander`.
"""

from rstar.search.config import SearchConfig
from rstar.search.expansion import Expander, SearchStats
from rstar.search.mcts import MCTS, MissingGoldError, SearchProblem, TreeResult
from rstar.search.tree import Node, Tree

__all__ = [
    "MCTS",
    "Expander",
    "MissingGoldError",
    "Node",
    "SearchConfig",
    "SearchProblem",
    "SearchStats",
    "Tree",
    "TreeResult",
]
