"""Policy SFT rows from a round's trajectories (docs/method.md §3).

Per problem (pooling the round's configured stages): among trajectories that end in a
correct answer and have no code error on their path, the ``sft_per_problem`` with the
highest average Q; ties go to the higher minimum Q, then to (stage, leaf id) so the choice
is deterministic.
"""

from __future__ import annotations

import pyarrow as pa

from rstar.curate.config import CurationConfig
from rstar.curate.render import prompts, render_steps
from rstar.curate.schema import SFT_SCHEMA
from rstar.store.catalog import Catalog

_SFT_SQL = """
WITH ranked AS (
    SELECT stage, problem_id, leaf_id, path, avg_q, min_q,
           row_number() OVER (PARTITION BY problem_id
                              ORDER BY avg_q DESC, min_q DESC, stage, leaf_id) AS rank
    FROM trajectories
    WHERE round = $round AND list_contains($stages, stage) AND correct AND NOT has_code_error
)
SELECT r.problem_id, p.question, r.stage, r.leaf_id, r.avg_q, r.min_q, r.path[2:] AS steps,
       true AS outputs
FROM ranked r LEFT JOIN problems p USING (problem_id)
WHERE rank <= $k
ORDER BY r.problem_id, r.rank
"""


def select_sft(catalog: Catalog, round: int, config: CurationConfig | None = None) -> pa.Table:
    """The SFT rows (``SFT_SCHEMA``) of ``round``, ordered by problem id, then rank."""
    config = config or CurationConfig()
    params = {"round": round, "stages": list(config.stages), "k": config.sft_per_problem}
    rows = catalog.sql(_SFT_SQL, params)
    columns = {
        "problem_id": rows["problem_id"],
        "question": rows["question"],
        "prompt": prompts(rows["question"], rows["problem_id"]),
        "completion": render_steps(catalog, round, rows).array(),
        "round": pa.repeat(pa.scalar(round, pa.int16()), len(rows)),
        **{name: rows[name] for name in ("stage", "leaf_id", "avg_q", "min_q")},
    }
    return pa.table(columns).cast(SFT_SCHEMA)
