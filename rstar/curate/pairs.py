"""PPM preference pairs from a round's trees (docs/method.md §3), selected in DuckDB.

Definitions (trajectories as in the store: root -> a terminal node a rollout reached):

- A step *leads to a correct answer* when at least one trajectory through it ends
  correct. It *leads to a wrong answer* when none ends correct and at least one ends in a
  (wrong) final answer; with ``negatives: any_failure`` also when its trajectories only
  crashed, hit the depth limit or were cut off (an ungraded answer counts as not
  correct). Steps no trajectory passes through are neither. The default follows the
  paper: a negative is a step that leads to a wrong answer, so that the PPM learns which
  steps go wrong rather than that a crash is bad.

Same-prefix rule (intermediate steps). Group the code and final-code steps by parent
(siblings share the preceding steps; answer steps are left to the relaxed rule). In each
group the ``pairs_top_k`` steps with the highest Q among those leading to a correct answer
are positives, the ``pairs_top_k`` with the lowest Q among those leading to a wrong one are
negatives (ties: lower node id first); every positive x negative is a pair. The prompt is
the question prompt plus the shared prefix steps; chosen/rejected are the two step texts.

Relaxed rule (final-answer step). Per problem, pooling the configured stages: the
``pairs_top_k`` correct trajectories without code errors with the highest average Q
(ties: higher min Q, then stage and leaf id) vs the ``pairs_top_k`` incorrect
trajectories (wrong answers; with ``any_failure`` any terminal) with the lowest average Q
(ties: lower min Q, then stage and leaf id); every positive x negative is a pair. The
prompt is the question prompt; chosen/rejected are the full responses.

Filters (the authors' code): a pair is kept when chosen Q - rejected Q >= ``min_q_margin``
(average Q for full trajectories) and the Levenshtein distance between chosen and rejected
is >= ``min_edit_distance`` characters.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from rapidfuzz.distance import Levenshtein

from rstar.curate.config import CurationConfig
from rstar.curate.render import Texts, prompts, render_steps
from rstar.curate.schema import FINAL, PAIR_SCHEMA, STEP
from rstar.store.catalog import Catalog

_STEP_PAIRS_SQL = """
WITH ranked AS (
    SELECT stage, problem_id, parent_id, node_id, depth, q, path,
           num_correct > 0 AS leads_correct,
           row_number() OVER (PARTITION BY stage, problem_id, parent_id, num_correct > 0
                              ORDER BY CASE WHEN num_correct > 0 THEN -q ELSE q END,
                                       node_id) AS rank
    FROM nodes
    WHERE round = $round AND list_contains($stages, stage) AND parent_id >= 0
      AND kind <> 'answer' AND num_trajectories > 0
      AND (num_correct > 0 OR $any_failure OR num_answered > 0)
), picked AS (
    SELECT *,
           count(*) FILTER (WHERE leads_correct) OVER groups AS pos_count,
           count(*) FILTER (WHERE NOT leads_correct) OVER groups AS neg_count
    FROM ranked WHERE rank <= $k
    WINDOW groups AS (PARTITION BY stage, problem_id, parent_id)
)
SELECT p.problem_id, q.question, p.path[2:p.depth] AS prefix,
       p.pos_count, p.neg_count, p.stage AS chosen_stage, p.node_id AS chosen_node,
       m.stage AS rejected_stage, m.node_id AS rejected_node, p.q AS chosen_q,
       m.q AS rejected_q
FROM picked p
JOIN picked m ON p.stage = m.stage AND p.problem_id = m.problem_id AND p.parent_id = m.parent_id
LEFT JOIN problems q ON q.problem_id = p.problem_id
WHERE p.leads_correct AND NOT m.leads_correct AND p.q - m.q >= $margin
ORDER BY p.problem_id, p.stage, p.parent_id, p.rank, m.rank
"""

_FINAL_PAIRS_SQL = """
WITH traj AS (
    SELECT stage, problem_id, leaf_id, path, correct, has_code_error, avg_q, min_q,
           terminal_reason
    FROM trajectories WHERE round = $round AND list_contains($stages, stage)
), pos AS (
    SELECT *, row_number() OVER (PARTITION BY problem_id
                                 ORDER BY avg_q DESC, min_q DESC, stage, leaf_id) AS rank
    FROM traj WHERE correct AND NOT has_code_error
), neg AS (
    SELECT *, row_number() OVER (PARTITION BY problem_id
                                 ORDER BY avg_q, min_q, stage, leaf_id) AS rank
    FROM traj WHERE NOT correct AND ($any_failure OR terminal_reason = 'answer')
), pos_k AS (
    SELECT *, count(*) OVER (PARTITION BY problem_id) AS pos_count FROM pos WHERE rank <= $k
), neg_k AS (
    SELECT *, count(*) OVER (PARTITION BY problem_id) AS neg_count FROM neg WHERE rank <= $k
)
SELECT p.problem_id, q.question, p.path[2:] AS chosen_steps, m.path[2:] AS rejected_steps,
       p.pos_count, m.neg_count, p.stage AS chosen_stage, p.leaf_id AS chosen_node,
       m.stage AS rejected_stage, m.leaf_id AS rejected_node, p.avg_q AS chosen_q,
       m.avg_q AS rejected_q
FROM pos_k p JOIN neg_k m USING (problem_id)
LEFT JOIN problems q ON q.problem_id = p.problem_id
WHERE p.avg_q - m.avg_q >= $margin
ORDER BY p.problem_id, p.rank, m.rank
"""

_BATCH = 10_000
_PROVENANCE = (
    "chosen_stage",
    "chosen_node",
    "rejected_stage",
    "rejected_node",
    "chosen_q",
    "rejected_q",
)


def _far_apart(chosen: Texts, rejected: Texts, min_distance: int) -> np.ndarray:
    """Whether each chosen/rejected pair is at least ``min_distance`` edits apart.

    With ``score_cutoff`` rapidfuzz stops once the distance exceeds it, so long texts that
    differ a lot cost little. Converted to Python strings a batch at a time.
    """
    if min_distance <= 0:
        return np.ones(len(chosen), dtype=bool)
    cutoff, keep = min_distance - 1, []
    for start in range(0, len(chosen), _BATCH):
        rows = slice(start, start + _BATCH)
        pairs = zip(
            chosen.part(rows).array().to_pylist(),
            rejected.part(rows).array().to_pylist(),
            strict=True,
        )
        keep += [Levenshtein.distance(a, b, score_cutoff=cutoff) > cutoff for a, b in pairs]
    return np.array(keep, dtype=bool)


def _items(
    problem_ids: pa.ChunkedArray, stages: pa.ChunkedArray, steps: pa.Array, outputs: bool
) -> pa.Table:
    n = len(problem_ids)
    return pa.table(
        {
            "problem_id": problem_ids,
            "stage": stages,
            "steps": steps,
            "outputs": pa.repeat(pa.scalar(outputs), n),
        }
    )


def _text_items(rows: pa.Table, kind: str) -> dict[str, pa.Table]:
    """What to render for each row: the prefix (step pairs), chosen and rejected."""
    pid = rows["problem_id"]
    if kind == FINAL:
        return {
            "chosen": _items(pid, rows["chosen_stage"], rows["chosen_steps"], True),
            "rejected": _items(pid, rows["rejected_stage"], rows["rejected_steps"], True),
        }
    one_each = pa.array(np.arange(len(rows) + 1), pa.int32())
    return {
        "prefix": _items(pid, rows["chosen_stage"], rows["prefix"], True),
        **{
            side: _items(
                pid,
                rows[f"{side}_stage"],
                pa.ListArray.from_arrays(one_each, rows[f"{side}_node"].combine_chunks()),
                False,
            )
            for side in ("chosen", "rejected")
        },
    }


def _pairs(
    rows: pa.Table, texts: dict[str, Texts], kind: str, round: int, config: CurationConfig
) -> pa.Table:
    """``PAIR_SCHEMA`` rows: the edit-distance filter applied, prompts built."""
    keep = _far_apart(texts["chosen"], texts["rejected"], config.min_edit_distance)
    rows = rows.filter(keep)
    kept = {name: text.part(keep).array() for name, text in texts.items()}
    columns = {
        "problem_id": rows["problem_id"],
        "kind": pa.repeat(pa.scalar(kind), len(rows)),
        "prompt": prompts(rows["question"], rows["problem_id"], kept.get("prefix")),
        "chosen": kept["chosen"],
        "rejected": kept["rejected"],
        "pos_count": rows["pos_count"],
        "neg_count": rows["neg_count"],
        "round": pa.repeat(pa.scalar(round, pa.int16()), len(rows)),
        **{name: rows[name] for name in _PROVENANCE},
    }
    return pa.table(columns).cast(PAIR_SCHEMA)


def select_pairs(catalog: Catalog, round: int, config: CurationConfig | None = None) -> pa.Table:
    """The PPM pairs (``PAIR_SCHEMA``) of ``round``: same-prefix step pairs, then (unless
    disabled) the relaxed final-step pairs, each ordered by problem id."""
    config = config or CurationConfig()
    params = {
        "round": round,
        "stages": list(config.stages),
        "k": config.pairs_top_k,
        "margin": config.min_q_margin,
        "any_failure": config.negatives == "any_failure",
    }
    selected = {STEP: catalog.sql(_STEP_PAIRS_SQL, params)}
    if config.final_step_pairs:
        selected[FINAL] = catalog.sql(_FINAL_PAIRS_SQL, params)
    wanted = [
        (kind, name, table)
        for kind, rows in selected.items()
        for name, table in _text_items(rows, kind).items()
    ]
    rendered = render_steps(catalog, round, pa.concat_tables([t for _, _, t in wanted]))
    texts: dict[str, dict[str, Texts]] = {kind: {} for kind in selected}
    start = 0
    for kind, name, table in wanted:  # one render for everything, split back
        texts[kind][name] = rendered.part(slice(start, start + len(table)))
        start += len(table)
    return pa.concat_tables(
        [_pairs(rows, texts[kind], kind, round, config) for kind, rows in selected.items()]
    )
