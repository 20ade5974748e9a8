"""Rendering stored steps back into the text the policy saw.

The text of consecutive steps is their raw texts concatenated, with
``OUTPUT_SEPARATOR + output_block(output)`` after a final-code step: exactly
``rstar.format.render_response`` of the same steps (the tests check it). Each distinct
piece is made once in DuckDB from one scan of the round's nodes; Arrow kernels then
assemble the texts, so curation never loops over a million steps in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rstar.format import OUTPUT_SEPARATOR, PROMPT_TEMPLATE, output_block
from rstar.store.catalog import Catalog

_OPEN, _CLOSE = output_block("\0").split("\0")
_PROMPT_HEAD, _PROMPT_TAIL = PROMPT_TEMPLATE.split("{question}")  # build_prompt, vectorised

_BATCH = 50_000  # items assembled at a time

_PIECES_SQL = """
SELECT w.uid,
       CASE WHEN w.outputs AND n.kind = 'final_code'
            THEN n.text || $output_open || coalesce(n.output, '') || $output_close
            ELSE coalesce(n.text, '') END AS piece
FROM pieces_wanted w JOIN nodes n
  ON n.round = $round AND n.stage = w.stage AND n.problem_id = w.problem_id
 AND n.node_id = w.node_id
"""


def _codes(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Integer codes of a string column (equal strings, equal codes)."""
    return pc.dictionary_encode(column).combine_chunks().indices.to_numpy().astype(np.int64)


def _distinct(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct row, the distinct row of every row) of non-negative int
    columns, through one packed int64 key when the columns' ranges allow it."""
    key, span = np.zeros(len(columns[0]), dtype=np.int64), 1
    for column in columns:
        size = int(column.max(initial=0)) + 1
        span *= size
        if span >= 2**62:
            _, first, inverse = np.unique(
                np.stack(columns, axis=1), axis=0, return_index=True, return_inverse=True
            )
            return first, inverse.reshape(-1)
        key = key * size + column
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse


def _flags(column: pa.ChunkedArray) -> np.ndarray:
    return column.combine_chunks().to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass(frozen=True)
class Texts:
    """Texts of many items stored once each: item i's text is ``values[index[i]]``.

    Pairs and SFT rows repeat prefixes and trajectories; keeping them distinct until the
    last moment (``array``) saves a copy of every repeat.
    """

    values: pa.Array
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def part(self, rows: slice | np.ndarray) -> Texts:
        return Texts(self.values, self.index[rows])

    def array(self) -> pa.Array:
        return self.values.take(self.index)


def render_steps(catalog: Catalog, round: int, items: pa.Table) -> Texts:
    """The text of each row of ``items``: columns stage, problem_id, steps (node ids of a
    contiguous run of one root-to-node path of a tree of ``round``, in order) and outputs
    (bool: whether a final-code step is followed by its output block, as in a trajectory;
    false for a step's own text).

    A run is identified by its first and last node, so each distinct run is rendered
    once, from distinct pieces fetched in one scan of the round's nodes.
    """
    steps = items["steps"].combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(steps), 0).to_numpy().astype(np.int64)
    flat = np.append(pc.list_flatten(steps).to_numpy().astype(np.int64), -1)
    ends = np.cumsum(lengths)
    first_node = np.where(lengths > 0, flat[ends - lengths], -1) + 1
    last_node = np.where(lengths > 0, flat[ends - 1], -1) + 1
    problem, stage = _codes(items["problem_id"]), _codes(items["stage"])
    outputs = _flags(items["outputs"])
    keep, inverse = _distinct(problem, stage, first_node, last_node, outputs)
    distinct = items.take(keep).combine_chunks()
    return Texts(_render_distinct(catalog, round, distinct), inverse)


def _render_distinct(catalog: Catalog, round: int, items: pa.Table) -> pa.Array:
    steps = items["steps"].combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(steps), 0).to_numpy()
    offsets = np.zeros(len(steps) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    owner = pc.list_parent_indices(steps).to_numpy()
    node_id = pc.list_flatten(steps).to_numpy().astype(np.int64)
    problem, stage = _codes(items["problem_id"])[owner], _codes(items["stage"])[owner]
    outputs = _flags(items["outputs"])[owner]
    first, uid = _distinct(problem, stage, node_id, outputs)
    wanted = pa.table(
        {
            "uid": np.arange(len(first)),
            "stage": items["stage"].take(owner[first]),
            "problem_id": items["problem_id"].take(owner[first]),
            "node_id": pa.array(node_id[first], pa.int32()),
            "outputs": pa.array(outputs[first].astype(bool)),
        }
    )
    params = {"round": round, "output_open": OUTPUT_SEPARATOR + _OPEN, "output_close": _CLOSE}
    found = catalog.sql(_PIECES_SQL, params, {"pieces_wanted": wanted})
    if len(found) != len(wanted):
        raise LookupError(
            f"{len(wanted) - len(found)} step(s) are not in the nodes of round {round}"
        )
    row_of = np.empty(len(found), dtype=np.int64)
    row_of[found["uid"].to_numpy()] = np.arange(len(found))
    distinct_pieces, piece_of_step = found["piece"].combine_chunks(), row_of[uid]
    texts = []
    for start in range(0, len(items), _BATCH):  # batches bound the per-step copies
        end = min(start + _BATCH, len(items))
        low, high = offsets[start], offsets[end]
        pieces = distinct_pieces.take(piece_of_step[low:high])
        lists = pa.ListArray.from_arrays(pa.array(offsets[start : end + 1] - low), pieces)
        texts.append(pc.binary_join(lists, ""))
    return pa.concat_arrays(texts) if texts else pa.array([], pa.string())


def prompts(
    questions: pa.ChunkedArray, problem_ids: pa.ChunkedArray, prefixes: pa.Array | None = None
) -> pa.Array:
    """``build_prompt(question)`` (+ the prefix steps' text) of each row, vectorised; a
    missing question is an error naming the problem."""
    missing = pc.is_null(questions)
    if pc.any(missing).as_py():
        first = problem_ids.filter(missing)[0].as_py()
        raise LookupError(
            f"{pc.sum(missing).as_py()} problem(s) with trajectories are not in the problems "
            f"table (first: {first}): register them with Catalog.add_problems before curating"
        )
    parts = [_PROMPT_HEAD, questions, _PROMPT_TAIL, *([] if prefixes is None else [prefixes])]
    return pc.binary_join_element_wise(*parts, "")
