"""Hand-built search trees for the store and curation tests."""

from __future__ import annotations

import pyarrow as pa

from rstar.store.schema import NODE_SCHEMA

ROOT = "root"


def tree_table(problem_id: str, nodes: list[tuple]) -> pa.Table:
    """Rows of one tree from (node_id, parent_id, kind, text, q, visits, terminal_reason,
    correct, exec_ok, output); depth follows from the parents, node 0 is the root."""
    depth = {0: 0}
    rows = [
        {
            "problem_id": problem_id,
            "node_id": 0,
            "parent_id": -1,
            "depth": 0,
            "rollout": -1,
            "kind": ROOT,
            "text": "",
            "output": "",
            "exec_ok": True,
            "consecutive_errors": 0,
            "terminal": False,
            "terminal_reason": None,
            "answer": None,
            "correct": None,
            "visits": 1,
            "value_sum": 0.0,
            "q": 0.0,
            "ppm_score": None,
        }
    ]
    for node_id, parent, kind, text, q, visits, reason, correct, exec_ok, output in nodes:
        depth[node_id] = depth[parent] + 1
        rows.append(
            {
                "problem_id": problem_id,
                "node_id": node_id,
                "parent_id": parent,
                "depth": depth[node_id],
                "rollout": 0,
                "kind": kind,
                "text": text,
                "output": output,
                "exec_ok": exec_ok,
                "consecutive_errors": 0 if exec_ok else 1,
                "terminal": reason is not None,
                "terminal_reason": reason,
                "answer": text.split("boxed{")[1].split("}")[0] if kind == "answer" else None,
                "correct": correct,
                "visits": visits,
                "value_sum": q * visits,
                "q": q,
                "ppm_score": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=NODE_SCHEMA)
