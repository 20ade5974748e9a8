"""Training rows of the PPM's pointwise baselines, from the same trees as its pairs.

The paper's ablation (Table 8) compares the PPM with two reward models trained on the same
search trees:

- a **Q-value PRM**: every step a trajectory passed through, as the scorer reads it
  (``build_prompt(question)`` + the steps up to it, output blocks included), regressed on
  the step's MCTS Q value (clipped to [-1, 1], the range of the score);
- an **outcome reward model** (ORM): every trajectory that ended in an answer, the whole
  response, regressed on its outcome, +1 correct and -1 wrong.

Rows are ``REWARD_ROW_SCHEMA`` (problem_id, text, target), ordered by problem, stage and
node, so the same store gives the same rows.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

from rstar.curate.render import prompts, render_steps
from rstar.store.catalog import Catalog

Q_VALUE = "q_value"
OUTCOME = "outcome"
RewardKind = Literal["q_value", "outcome"]

REWARD_ROW_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string()),
        pa.field("text", pa.string()),  # what the scorer reads
        pa.field("target", pa.float64()),  # the score it should give, in [-1, 1]
    ]
)

_SQL: dict[str, str] = {
    Q_VALUE: """
        SELECT n.problem_id, q.question, n.stage, n.path[2:] AS steps,
               greatest(-1.0, least(1.0, n.q)) AS target
        FROM nodes n LEFT JOIN problems q ON q.problem_id = n.problem_id
        WHERE n.round = $round AND list_contains($stages, n.stage) AND n.parent_id >= 0
          AND n.num_trajectories > 0
        ORDER BY n.problem_id, n.stage, n.node_id
    """,
    OUTCOME: """
        SELECT t.problem_id, q.question, t.stage, t.path[2:] AS steps,
               CASE WHEN t.correct THEN 1.0 ELSE -1.0 END AS target
        FROM trajectories t LEFT JOIN problems q ON q.problem_id = t.problem_id
        WHERE t.round = $round AND list_contains($stages, t.stage)
          AND t.terminal_reason = 'answer'
        ORDER BY t.problem_id, t.stage, t.leaf_id
    """,
}


def reward_rows(
    catalog: Catalog, round: int, kind: RewardKind, stages: tuple[str, ...]
) -> pa.Table:
    """The ``kind`` rows (``Q_VALUE`` or ``OUTCOME``) of the trees of ``round``'s ``stages``."""
    if kind not in _SQL:
        raise ValueError(f"kind must be {Q_VALUE!r} or {OUTCOME!r}, got {kind!r}")
    rows = catalog.sql(_SQL[kind], {"round": round, "stages": list(stages)})
    items = pa.table(
        {
            "problem_id": rows["problem_id"],
            "stage": rows["stage"],
            "steps": rows["steps"],
            "outputs": pa.repeat(pa.scalar(True), len(rows)),
        }
    )
    texts = render_steps(catalog, round, items).array()
    return pa.table(
        {
            "problem_id": rows["problem_id"],
            "text": prompts(rows["question"], rows["problem_id"], texts),
            "target": rows["target"],
        }
    ).cast(REWARD_ROW_SCHEMA)
