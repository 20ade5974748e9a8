"""Where a store keeps its files, and the atomic-write rule every file follows.

A store is one directory per project run (default ``<run_dir>/store``)::

    catalog.duckdb                                   the DuckDB catalog (one writer process)
    nodes/round=1/stage=search/shard-00007.parquet   the search-tree nodes of one shard
    synthesis/part-<id>.parquet                      synthesis audit records
    datasets/...                                     exported SFT / PPM data

The ``key=value`` directories follow the hive convention so the tree is easy to browse,
but the partition columns are also stored inside every file (with their Arrow types), and
the catalog reads the files with ``hive_partitioning = false``.

Every file is written under a temporary name in its final directory and renamed into
place (``atomic_write``): readers never see half a file, a rerun replaces the file, and
temporary names never match the ``*.parquet`` globs the catalog reads.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CATALOG_FILE = "catalog.duckdb"
NODES = "nodes"
SYNTHESIS = "synthesis"
DATASETS = "datasets"


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one store; ``root`` is made absolute so catalog views work from any cwd."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    @classmethod
    def for_run(cls, run_dir: str | Path) -> StoreLayout:
        """The default store of a run: ``<run_dir>/store``."""
        return cls(Path(run_dir) / "store")

    @property
    def catalog_path(self) -> Path:
        return self.root / CATALOG_FILE

    def shard_path(self, round: int, stage: str, shard: int) -> Path:
        """The Parquet file of the nodes of one shard."""
        return (
            self.root / NODES / f"round={round}" / f"stage={stage}" / f"shard-{shard:05d}.parquet"
        )

    def glob(self, table: str) -> str:
        """The glob of every Parquet file of ``table`` (a directory under the root)."""
        return str(self.root / table / "**" / "*.parquet")

    def has_files(self, table: str) -> bool:
        return any((self.root / table).glob("**/*.parquet"))

    @property
    def synthesis_dir(self) -> Path:
        return self.root / SYNTHESIS

    @property
    def datasets_dir(self) -> Path:
        return self.root / DATASETS

    def dataset_path(self, round: int, name: str) -> Path:
        """Where a round's exported training rows ``name`` (``sft``, ``ppm_pairs``) live."""
        return self.datasets_dir / f"round={round}" / f"{name}.jsonl"


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, fsync it, rename it to ``path``.

    The rename is atomic on one filesystem: ``path`` is either the old file or the whole
    new one. On any error the temporary file is removed and the error re-raised.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
