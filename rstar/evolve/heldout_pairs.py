"""A fixed held-out set of PPM pairs, the same problems every round (issue 15).

Each round's PPM is also measured on pairs that no round trains on and that do not change
from round to round, so that its pair accuracy can be compared across rounds: the base
policy searches ``evolve.heldout_pairs`` validation problems per level (the toy world's
``toy-val`` split, never searched by a round) once with round 1's search, and the round's
curation rules select the pairs from those trees, with negatives that end in a wrong final
answer whatever ``curate.negatives`` says. The pairs are written once per run directory
(``heldout-pairs.jsonl``) and reused by every round.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rstar.config import Profile
from rstar.curate import select_pairs, write_json
from rstar.evaluate.benchmarks import TOY_VAL, load_benchmark
from rstar.search import MCTS, SearchProblem
from rstar.search.records import trees_to_table
from rstar.search.session import search_session
from rstar.store import SEARCH, Catalog, RunLayout, write_shard


def build_heldout_pairs(prof: Profile, base_path: str, progress: bool = True) -> Path | None:
    """The run's fixed held-out pairs (written on the first call; None when the profile
    asks for none or has no toy world)."""
    per_level = prof.evolve.heldout_pairs
    if not per_level or prof.toy is None:
        return None
    out = RunLayout(prof.run_dir).heldout_pairs
    if out.is_file():
        return out
    bench = load_benchmark(TOY_VAL, world=prof.toy.world, toy_per_level=per_level)
    problems = [SearchProblem(p.problem_id, p.question, p.answer) for p in bench.problems]
    with search_session(
        prof.policy.at(base_path), None, prof.sandbox, threads=prof.threads, progress=progress
    ) as session:
        mcts = MCTS(session.policy, session.sandbox, prof.round_search(1), progress=progress)
        results = mcts.search(problems)
    with tempfile.TemporaryDirectory() as scratch:
        write_shard(
            scratch, trees_to_table(r.tree for r in results), round=1, stage=SEARCH, shard=0
        )
        with Catalog(scratch) as catalog:
            catalog.add_problems(bench.problem_table())
            curate = prof.curate.model_copy(update={"negatives": "wrong_answer"})
            pairs = select_pairs(catalog, 1, curate)
    return write_json(pairs, out)
