"""Curation of a round's trees into training data (docs/method.md §2-3).

- ``difficulty`` / ``difficulty_counts`` / ``hard_problems`` / ``coverage``: problem buckets
  and coverage per round.
- ``select_sft``: policy SFT rows (prompt/completion).
- ``select_pairs``: PPM preference pairs (prompt/chosen/rejected), exact rules in
  ``rstar.curate.pairs``.
- ``write_json`` / ``to_dataset`` / ``export_rows`` / ``export_round``: JSONL files and
  ``datasets.Dataset``.
- ``read_release_*`` / ``write_release_*``: the authors' released SFT and PPM data.
"""

from rstar.curate.config import CurationConfig
from rstar.curate.difficulty import (
    coverage,
    data_funnel,
    difficulty,
    difficulty_counts,
    hard_problems,
)
from rstar.curate.export import (
    PAIR_TRAINING_COLUMNS,
    SFT_TRAINING_COLUMNS,
    RoundExport,
    export_round,
    export_rows,
    to_dataset,
    write_json,
)
from rstar.curate.pairs import select_pairs
from rstar.curate.release import (
    read_release_pairs,
    read_release_sft,
    write_release_pairs,
    write_release_sft,
)
from rstar.curate.schema import FINAL, PAIR_SCHEMA, SFT_SCHEMA, STEP
from rstar.curate.sft import select_sft

__all__ = [
    "FINAL",
    "PAIR_SCHEMA",
    "PAIR_TRAINING_COLUMNS",
    "SFT_SCHEMA",
    "SFT_TRAINING_COLUMNS",
    "STEP",
    "CurationConfig",
    "RoundExport",
    "coverage",
    "data_funnel",
    "difficulty",
    "difficulty_counts",
    "export_round",
    "export_rows",
    "hard_problems",
    "read_release_pairs",
    "read_release_sft",
    "select_pairs",
    "select_sft",
    "to_dataset",
    "write_json",
    "write_release_pairs",
    "write_release_sft",
]
