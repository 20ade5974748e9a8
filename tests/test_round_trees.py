"""A round's example trees: which problems are picked (by hand from the curation trees),
the stored rows rebuilt into the same tree, and the pages written with the path marked."""

from __future__ import annotations

import json

import pyarrow as pa

from rstar.evolve.round_trees import best_correct, write_round_trees
from rstar.search.records import rows_to_tree, tree_columns
from rstar.store import Catalog, StoreLayout, write_shard
from tests.store_trees import tree_table
from tests.test_curate import P1, P2, P3_EXTRA, P3_SEARCH, P4, Q1


def test_stored_rows_rebuild_the_tree_they_came_from():
    table = tree_table("p1", P1)
    tree = rows_to_tree(table.to_pylist(), Q1, "2")
    rebuilt = pa.table(tree_columns(tree), schema=table.schema)
    assert rebuilt.equals(table.sort_by("node_id"))
    assert best_correct(tree).node_id == 5  # answers 5, 11, 16 all have Q 1: the first


def _store(tmp_path) -> StoreLayout:
    store = StoreLayout.for_run(tmp_path)
    trees = [tree_table(p, nodes) for p, nodes in (("p1", P1), ("p2", P2), ("p3", P3_SEARCH))]
    write_shard(store, pa.concat_tables(trees), round=1, stage="search", shard=0)
    write_shard(store, tree_table("p4", P4), round=1, stage="search", shard=1)
    with Catalog(store) as catalog:
        catalog.add_problems(
            pa.table(
                {
                    "problem_id": ["p1", "p2", "p3", "p4"],
                    "question": ["one?", "two?", "three?", "four?"],
                    "answer": ["2", "4", "6", "8"],
                    "source": ["hand"] * 4,
                    "level": pa.array([2, 1, 3, 1], pa.int32()),
                    "split": ["train"] * 4,
                }
            )
        )
    return store


def _chosen(page) -> int | None:
    text = page.read_text()
    return json.loads(text.split('"chosen": ')[1].split(",")[0])


def test_the_hardest_solved_and_the_easiest_unsolved_problem_are_drawn(tmp_path):
    store = _store(tmp_path)
    with Catalog(store) as catalog:
        pages = write_round_trees(catalog, 1, tmp_path / "trees")
    # solved: p1 (level 2, 3 of 7 correct) over p2 (level 1); unsolved: p3 (level 3, its
    # one trajectory hit the depth limit); p4 has no trajectory at all, so it is neither
    assert [p.name for p in pages] == ["solved-p1.html", "unsolved-p3.html"]
    assert _chosen(pages[0]) == 5 and _chosen(pages[1]) is None
    assert "Round 1, solved: p1" in pages[0].read_text()

    # the extra rollouts solve p3 (level 3): it becomes the solved page, from that search,
    # and nothing is left unsolved
    write_shard(store, tree_table("p3", P3_EXTRA), round=1, stage="extra_rollouts", shard=0)
    with Catalog(store) as catalog:
        pages = write_round_trees(catalog, 1, tmp_path / "trees-2")
    assert [p.name for p in pages] == ["solved-p3.html"]
    assert _chosen(pages[0]) == 3  # P3_EXTRA's correct answer
    with Catalog(store) as catalog:
        assert write_round_trees(catalog, 2, tmp_path / "none") == []  # no round 2
