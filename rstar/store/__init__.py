"""The trajectory store: Parquet shards of search trees plus a DuckDB catalog over them.

- ``write_shard``: any process writes one (round, stage, shard) of nodes (and its derived
  trajectories) as Parquet, atomically; never touches DuckDB.
- ``Catalog``: the DuckDB database (one writer process: the orchestrator) with tables for
  problems, rejects, rounds, datasets and evaluation results, and views over the shards.
- ``StoreLayout``: where the files live; schemas in ``rstar.store.schema``.
"""

from rstar.store.catalog import Catalog, CatalogLockedError, finished_rounds
from rstar.store.layout import RoundLayout, RunLayout, StoreLayout
from rstar.store.schema import (
    ESCALATION,
    EVAL,
    EVAL_RESULT_SCHEMA,
    EXTRA_ROLLOUTS,
    NODE_SCHEMA,
    PROBLEM_SCHEMA,
    REJECT_SCHEMA,
    SEARCH,
    STAGES,
    STORED_NODE_SCHEMA,
    SYNTHESIS_SCHEMA,
    TRAINING_STAGES,
    TRAJECTORY_SCHEMA,
    extra_index,
    search_stage,
)
from rstar.store.shards import ShardInfo, write_shard
from rstar.store.trees import NodeTableError

__all__ = [
    "ESCALATION",
    "EVAL",
    "EVAL_RESULT_SCHEMA",
    "EXTRA_ROLLOUTS",
    "NODE_SCHEMA",
    "PROBLEM_SCHEMA",
    "REJECT_SCHEMA",
    "SEARCH",
    "STAGES",
    "STORED_NODE_SCHEMA",
    "SYNTHESIS_SCHEMA",
    "TRAINING_STAGES",
    "TRAJECTORY_SCHEMA",
    "Catalog",
    "CatalogLockedError",
    "NodeTableError",
    "RoundLayout",
    "RunLayout",
    "ShardInfo",
    "StoreLayout",
    "extra_index",
    "finished_rounds",
    "search_stage",
    "write_shard",
]
