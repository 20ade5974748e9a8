"""Search trees as Arrow tables: one row per node, the rows the trajectory store ingests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from rstar.search.tree import Tree
from rstar.store.schema import NODE_SCHEMA


def tree_columns(tree: Tree) -> dict[str, list]:
    """Column lists for every node of ``tree``, in node-id order."""
    nodes = list(tree)
    return {
        "problem_id": [tree.problem_id] * len(nodes),
        "node_id": [n.node_id for n in nodes],
        "parent_id": [n.parent.node_id if n.parent else -1 for n in nodes],
        "depth": [n.depth for n in nodes],
        "rollout": [n.rollout for n in nodes],
        "kind": [str(n.kind) for n in nodes],
        "text": [n.text for n in nodes],
        "output": [n.output for n in nodes],
        "exec_ok": [n.exec_ok for n in nodes],
        "consecutive_errors": [n.consecutive_errors for n in nodes],
        "terminal": [n.terminal for n in nodes],
        "terminal_reason": [n.terminal_reason for n in nodes],
        "answer": [n.answer for n in nodes],
        "correct": [n.correct for n in nodes],
        "visits": [n.visits for n in nodes],
        "value_sum": [n.value_sum for n in nodes],
        "q": [n.q for n in nodes],
        "ppm_score": [n.ppm_score for n in nodes],
    }


def trees_to_table(trees: Iterable[Tree]) -> pa.Table:
    """All nodes of all ``trees`` as one table with the store's node schema."""
    columns: dict[str, list] = {name: [] for name in NODE_SCHEMA.names}
    for tree in trees:
        for name, values in tree_columns(tree).items():
            columns[name].extend(values)
    return pa.table(columns, schema=NODE_SCHEMA)


# The stored columns a rebuilt node takes back (everything but ids, links and derived Q).
_NODE_FIELDS = (
    "kind",
    "text",
    "output",
    "exec_ok",
    "consecutive_errors",
    "terminal",
    "terminal_reason",
    "answer",
    "correct",
    "visits",
    "value_sum",
    "ppm_score",
)


def rows_to_tree(rows: Iterable[Mapping[str, Any]], question: str, gold: str | None = None) -> Tree:
    """The tree that :func:`tree_columns` stored as ``rows`` (one problem's nodes of one
    search), rebuilt for viewing (``rstar.search.html``); parsed steps are not restored."""
    ordered = sorted(rows, key=lambda row: row["node_id"])
    if not ordered or ordered[0]["node_id"] != 0:
        raise ValueError("a stored tree's rows start at its root, node 0")
    tree = Tree(ordered[0]["problem_id"], question, gold)
    for name in ("visits", "value_sum"):
        setattr(tree.root, name, ordered[0][name])
    for row in ordered[1:]:
        fields = {name: row[name] for name in _NODE_FIELDS}
        node = tree.add_child(tree.node(row["parent_id"]), row["rollout"], **fields)
        if node.node_id != row["node_id"]:
            raise ValueError(f"node ids of problem {row['problem_id']!r} are not 0..n-1")
    return tree
