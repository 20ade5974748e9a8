"""Checking a table of search-tree nodes and deriving per-node path statistics, vectorised.

Both run once per shard at write time (``write_shard``). The derived columns make every
later question a plain column read: a node's path from the root, the Q statistics of that
path (so a terminal node's row *is* its trajectory), and how many trajectories pass
through it and end correct (so "leads to a correct answer" needs no tree walk).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rstar.store.schema import DERIVED_NODE_FIELDS, NODE_SCHEMA

# Columns that must never be null: the tree structure and the values the curation ranks by.
REQUIRED = (
    "problem_id",
    "node_id",
    "parent_id",
    "depth",
    "kind",
    "exec_ok",
    "terminal",
    "visits",
    "q",
)


class NodeTableError(ValueError):
    """A node table that is not a set of well-formed trees; the message names the node."""


def conform(nodes: pa.Table) -> pa.Table:
    """``nodes`` with exactly ``NODE_SCHEMA``'s columns and types, or a NodeTableError."""
    missing = [name for name in NODE_SCHEMA.names if name not in nodes.column_names]
    extra = [name for name in nodes.column_names if name not in NODE_SCHEMA.names]
    if missing or extra:
        raise NodeTableError(
            f"node table columns differ from NODE_SCHEMA: missing {missing}, unexpected {extra}"
        )
    try:
        nodes = nodes.select(NODE_SCHEMA.names).cast(NODE_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise NodeTableError(f"node table does not cast to NODE_SCHEMA: {exc}") from exc
    for name in REQUIRED:
        nulls = nodes[name].null_count
        if nulls:
            row = pc.index(pc.is_null(nodes[name]), True).as_py()
            raise NodeTableError(f"column {name!r} has {nulls} null(s), first at row {row}")
    return nodes


def _where(nodes: pa.Table, row: int) -> str:
    return f"problem {nodes['problem_id'][row].as_py()!r} node {nodes['node_id'][row].as_py()}"


def parent_rows(nodes: pa.Table) -> np.ndarray:
    """For each row, the row of its parent (-1 for roots), after checking the trees.

    Checks: node ids unique per problem; one root per problem (node 0, parent -1,
    depth 0); every parent present in the same problem; depth = parent's depth + 1 (which
    also rules out cycles). ``nodes`` must have passed ``conform``.
    """
    if len(nodes) == 0:
        return np.empty(0, dtype=np.int64)
    codes = pc.dictionary_encode(nodes["problem_id"]).combine_chunks().indices
    codes = codes.to_numpy().astype(np.int64)
    node_id = nodes["node_id"].to_numpy().astype(np.int64)
    parent = nodes["parent_id"].to_numpy().astype(np.int64)
    depth = nodes["depth"].to_numpy()
    if node_id.min() < 0:
        raise NodeTableError(f"negative node_id at {_where(nodes, int(node_id.argmin()))}")
    width = int(max(node_id.max(), parent.max())) + 1
    keys = codes * width + node_id
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    dup = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if dup.size:
        raise NodeTableError(f"duplicate node id: {_where(nodes, int(order[dup[0] + 1]))}")
    is_root = parent == -1
    bad_root = np.flatnonzero(is_root & ((node_id != 0) | (depth != 0)))
    if bad_root.size:
        raise NodeTableError(
            f"a root must be node 0 at depth 0 with parent -1: {_where(nodes, int(bad_root[0]))}"
        )
    roots = np.bincount(codes[is_root], minlength=int(codes.max()) + 1)
    if (roots != 1).any():
        code = int(np.flatnonzero(roots != 1)[0])
        row = int(np.flatnonzero(codes == code)[0])
        raise NodeTableError(
            f"problem {nodes['problem_id'][row].as_py()!r} has {roots[code]} root nodes, not 1"
        )
    child = np.flatnonzero(~is_root)
    wanted = codes[child] * width + parent[child]
    at = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
    found = sorted_keys[at] == wanted
    if not found.all():
        row = int(child[np.flatnonzero(~found)[0]])
        raise NodeTableError(
            f"{_where(nodes, row)} has parent {parent[row]}, which is not in the table"
        )
    rows = np.full(len(nodes), -1, dtype=np.int64)
    rows[child] = order[at]
    bad_depth = np.flatnonzero(depth[child] != depth[rows[child]] + 1)
    if bad_depth.size:
        row = int(child[bad_depth[0]])
        raise NodeTableError(f"{_where(nodes, row)} has depth {depth[row]}, not parent's + 1")
    return rows


def derive(nodes: pa.Table, parents: np.ndarray) -> pa.Table:
    """The ``DERIVED_NODE_FIELDS`` columns of ``nodes`` (``parents`` = ``parent_rows(nodes)``).

    Top-down, one depth level at a time: a node's path and path statistics extend its
    parent's. Bottom-up: trajectory counts flow from terminal nodes to their ancestors.
    A trajectory ends at a terminal node a rollout reached (visits >= 1); it is answered
    when that node is an answer (not a code error, a depth limit or a truncated step), and
    correct when that answer is graded correct.
    """
    n = len(nodes)
    node_id = nodes["node_id"].to_numpy()
    depth = nodes["depth"].to_numpy().astype(np.int64)
    q = nodes["q"].to_numpy()
    failed = ~nodes["exec_ok"].to_numpy(zero_copy_only=False)
    reached = nodes["terminal"].to_numpy(zero_copy_only=False) & (nodes["visits"].to_numpy() > 0)
    answered = pc.fill_null(pc.equal(nodes["terminal_reason"], "answer"), False)
    right = pc.fill_null(pc.and_(answered, nodes["correct"]), False)
    wins = reached & right.to_numpy(zero_copy_only=False)
    ends = reached & answered.to_numpy(zero_copy_only=False)

    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(depth + 1, out=offsets[1:])
    path = np.empty(int(offsets[-1]), dtype=np.int32)
    sum_q = np.zeros(n)
    min_q = np.full(n, np.inf)
    code_error = failed.copy()
    levels = np.split(np.argsort(depth, kind="stable"), np.cumsum(np.bincount(depth))[:-1])
    path[offsets[levels[0]]] = node_id[levels[0]]
    for d, rows in enumerate(levels[1:], start=1):
        up = parents[rows]
        path[offsets[rows][:, None] + np.arange(d)] = path[offsets[up][:, None] + np.arange(d)]
        path[offsets[rows] + d] = node_id[rows]
        sum_q[rows] = sum_q[up] + q[rows]
        min_q[rows] = np.minimum(min_q[up], q[rows])
        code_error[rows] |= code_error[up]
    counts = {
        name: mask.astype(np.int64)
        for name, mask in (("through", reached), ("correct", wins), ("answered", ends))
    }
    for rows in reversed(levels[1:]):
        up = parents[rows]
        for count in counts.values():
            count += np.bincount(up, weights=count[rows], minlength=n).astype(np.int64)

    steps = depth > 0
    avg = np.divide(sum_q, depth, out=np.zeros(n), where=steps)
    columns = [
        pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(path)),
        pa.array(avg, mask=~steps),
        pa.array(min_q, mask=~steps),
        pa.array(code_error),
        *(pa.array(counts[name], pa.int32()) for name in ("through", "correct", "answered")),
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema(DERIVED_NODE_FIELDS))
