"""Writing search output as Parquet shards: safe from any process, never touching DuckDB.

Each (round, stage, shard) owns one file: its nodes with the partition columns and the
derived path columns (``rstar.store.trees.derive``). It is written atomically, so a rerun
of a shard replaces it and parallel writers of different shards never contend. The
catalog sees new shards through its glob views (``Catalog.refresh`` once after the first
shard of a store).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rstar.atomic import atomic_write
from rstar.store.layout import StoreLayout
from rstar.store.schema import STAGES, STORED_NODE_SCHEMA
from rstar.store.trees import conform, derive, parent_rows

# Low-cardinality columns get dictionary encoding; free text does not (it only costs time).
_DICTIONARY = ["round", "stage", "shard", "problem_id", "kind", "terminal_reason"]


@dataclass(frozen=True)
class ShardInfo:
    """What one ``write_shard`` call wrote."""

    round: int
    stage: str
    shard: int
    path: Path
    num_nodes: int
    num_trajectories: int


def write_shard(
    store: StoreLayout | str | Path,
    nodes: pa.Table,
    *,
    round: int,
    stage: str,
    shard: int,
    compression: str = "zstd",
) -> ShardInfo:
    """Check ``nodes`` (``NODE_SCHEMA`` rows of whole trees), derive the path columns, and
    write the Parquet file of shard (round, stage, shard), replacing any earlier one.

    Safe to call from parallel processes for different shards; never opens the catalog.
    Raises ``NodeTableError`` (a ValueError naming the node) when the rows are not
    well-formed trees.
    """
    layout = store if isinstance(store, StoreLayout) else StoreLayout(Path(store))
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known stages: {', '.join(STAGES)}")
    if not 0 <= round < 2**15 or not 0 <= shard < 2**31:
        raise ValueError(f"round and shard must be non-negative, got round={round} shard={shard}")
    nodes = conform(nodes)
    derived = derive(nodes, parent_rows(nodes))
    n = len(nodes)
    partition = [
        pa.repeat(pa.scalar(round, pa.int16()), n),
        pa.repeat(pa.scalar(stage, pa.string()), n),
        pa.repeat(pa.scalar(shard, pa.int32()), n),
    ]
    table = pa.Table.from_arrays(
        [*partition, *nodes.columns, *derived.columns], schema=STORED_NODE_SCHEMA
    )
    path = layout.shard_path(round, stage, shard)
    write = partial(pq.write_table, table, compression=compression, use_dictionary=_DICTIONARY)
    atomic_write(path, write)
    trajectories = pc.sum(pc.and_(nodes["terminal"], pc.greater(nodes["visits"], 0))).as_py()
    return ShardInfo(round, stage, shard, path, n, trajectories or 0)
