"""A few of a round's search trees as HTML pages (rstar.search.html), for its MLflow run's
``trees/`` folder: the hardest problem the round solved, with its best correct trajectory
marked, and the easiest one it left unsolved, so a user can open what the search did at the
policy's frontier without querying the store."""

from __future__ import annotations

from pathlib import Path

from rstar.atomic import atomic_write
from rstar.search.html import render_tree_html
from rstar.search.records import rows_to_tree
from rstar.search.tree import Node, Tree
from rstar.store import EVAL, Catalog

# Per (stage, problem) of the round's training searches: trajectories that ended, correct ones.
_ENDED = f"""
WITH ended AS (
    SELECT stage, problem_id, count(*) AS ended, count(*) FILTER (WHERE correct) AS correct
    FROM trajectories WHERE round = $round AND stage != '{EVAL}' GROUP BY ALL
), solved AS (SELECT DISTINCT problem_id FROM ended WHERE correct > 0)
SELECT e.stage, e.problem_id, p.question, p.answer
FROM ended e JOIN problems p USING (problem_id)
"""
SOLVED = (
    _ENDED
    + """WHERE e.correct > 0
ORDER BY p.level DESC NULLS LAST, e.correct / e.ended, e.problem_id LIMIT 1"""
)
UNSOLVED = (
    _ENDED
    + """WHERE e.problem_id NOT IN (SELECT problem_id FROM solved)
ORDER BY p.level NULLS LAST, e.ended DESC, e.stage DESC, e.problem_id LIMIT 1"""
)


def _tree(catalog: Catalog, round: int, pick: str) -> Tree | None:
    found = catalog.sql(pick, {"round": round}).to_pylist()
    if not found:
        return None
    (chosen,) = found
    rows = catalog.sql(
        "SELECT * FROM nodes WHERE round = $round AND stage = $stage AND problem_id = $problem",
        {"round": round, "stage": chosen["stage"], "problem": chosen["problem_id"]},
    ).to_pylist()
    return rows_to_tree(rows, chosen["question"], chosen["answer"])


def best_correct(tree: Tree) -> Node | None:
    """The correct trajectory's end with the highest Q (None when none is correct)."""
    correct = [node for node in tree.terminals() if node.correct]
    return max(correct, key=lambda node: (node.q, -node.node_id), default=None)


def write_round_trees(catalog: Catalog, round: int, out_dir: Path) -> list[Path]:
    """``solved-<problem>.html`` and ``unsolved-<problem>.html`` in ``out_dir`` (either may
    be missing: a round that solved everything, or nothing); returns the pages written."""
    pages = []
    for label, pick in (("solved", SOLVED), ("unsolved", UNSOLVED)):
        tree = _tree(catalog, round, pick)
        if tree is None:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        page = out_dir / f"{label}-{tree.problem_id}.html"
        title = f"Round {round}, {label}: {tree.problem_id}"
        text = render_tree_html(tree, title=title, chosen=best_correct(tree))
        atomic_write(page, lambda tmp, text=text: tmp.write_text(text))
        pages.append(page)
    return pages
