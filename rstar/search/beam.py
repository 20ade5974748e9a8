"""Step-level beam search guided by the PPM.

Each problem keeps up to ``beam_width`` open partial solutions. At every step each of them
gets ``candidates`` next steps (one batched call for all problems), the PPM scores the new
steps (one batch), and the ``beam_width`` best-scored open steps of each problem become its
next beam. Steps that end (answers, failures) leave the beam as finished trajectories;
answers are scored by the PPM. Without a PPM the beam keeps the first steps generated.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rstar.search.best_of_n import finish, test_time_trees
from rstar.search.expansion import Expander
from rstar.search.mcts import SearchProblem, TreeResult
from rstar.search.tree import Node


def beam_search(
    expander: Expander,
    problems: Sequence[SearchProblem],
    beam_width: int,
    candidates: int,
) -> list[TreeResult]:
    """Beam search over steps for every problem at once; see the module docstring."""
    started = time.perf_counter()
    trees = test_time_trees(problems)
    beams: list[list[Node]] = [[tree.root] for tree in trees]
    while any(beams):
        items = [(tree, node, 0) for tree, beam in zip(trees, beams, strict=True) for node in beam]
        children = iter(expander.expand(items, n=candidates))
        next_beams = []
        for beam in beams:
            kids = [child for _ in beam for child in next(children)]
            open_kids = [child for child in kids if not child.terminal]
            open_kids.sort(key=lambda child: child.prior, reverse=True)  # stable: ties by order
            next_beams.append(open_kids[:beam_width])
        beams = next_beams
    return finish(trees, started)
