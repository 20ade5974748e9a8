"""Policy SFT rows from a round's trajectories (docs/method.md §3).

Per problem (pooling the round's configured stages): among trajectories that end in a
correct answer and have no code error on their path, the ``sft_per_problem`` with the
highest average Q; ties go to the higher minimum Q, then to (stage, leaf id) so the choice
is deterministic.

With ``sft_rounds: all`` a round's rows are everything accepted so far: its own rows and
the previous round's exported rows (which hold the rounds before), the same completion of
a problem once, and per problem again the ``sft_per_problem`` best by average Q (ties:
higher minimum Q, the later round, then stage and leaf id). Training each round from the
base on this union is what "Self-Improving Transformers" (2025) does; it keeps what earlier
rounds learned without fine-tuning on fine-tuned data.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.json as pa_json

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


_UNION_SQL = """
WITH distinct_rows AS (
    SELECT * FROM (SELECT * FROM current UNION ALL SELECT * FROM earlier)
    QUALIFY row_number() OVER (PARTITION BY problem_id, completion
                               ORDER BY avg_q DESC, min_q DESC, round DESC) = 1
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY problem_id
                                 ORDER BY avg_q DESC, min_q DESC, round DESC, stage,
                                          leaf_id) AS rank
    FROM distinct_rows
)
SELECT * EXCLUDE (rank) FROM ranked WHERE rank <= $k ORDER BY problem_id, rank
"""


def earlier_sft(catalog: Catalog, round: int) -> pa.Table:
    """The SFT rows exported for round ``round - 1`` (empty for round 1)."""
    if round <= 1:
        return SFT_SCHEMA.empty_table()
    path = catalog.layout.dataset_path(round - 1, "sft")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: with curate.sft_rounds 'all', round {round}'s SFT rows add "
            f"round {round - 1}'s; export that round first (rstar curate export --round "
            f"{round - 1})"
        )
    options = pa_json.ParseOptions(explicit_schema=SFT_SCHEMA, unexpected_field_behavior="ignore")
    return pa_json.read_json(path, parse_options=options).cast(SFT_SCHEMA)


def select_sft(catalog: Catalog, round: int, config: CurationConfig | None = None) -> pa.Table:
    """The SFT rows (``SFT_SCHEMA``) of ``round``, ordered by problem id, then rank; with
    ``sft_rounds: all`` merged with the earlier rounds' (module doc)."""
    config = config or CurationConfig()
    rows = _round_sft(catalog, round, config)
    if config.sft_rounds == "this" or round <= 1:
        return rows
    tables = {"current": rows, "earlier": earlier_sft(catalog, round)}
    merged = catalog.sql(_UNION_SQL, {"k": config.sft_per_problem}, tables)
    return merged.cast(SFT_SCHEMA)


def _round_sft(catalog: Catalog, round: int, config: CurationConfig) -> pa.Table:
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
