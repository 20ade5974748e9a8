"""Curated rows out: JSONL files (written by DuckDB, atomically) and ``datasets.Dataset``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import duckdb
import pyarrow as pa

from rstar.atomic import atomic_write
from rstar.curate.config import CurationConfig
from rstar.curate.pairs import select_pairs
from rstar.curate.sft import select_sft
from rstar.store.catalog import Catalog

# The columns the trainers read (TRL: prompt/completion for SFT, prompt/chosen/rejected for
# the reward model); the other columns are provenance.
SFT_TRAINING_COLUMNS = ("prompt", "completion")
PAIR_TRAINING_COLUMNS = ("prompt", "chosen", "rejected")


def write_json(table: pa.Table, path: str | Path) -> Path:
    """Write ``table`` as JSON Lines, or as one JSON list when ``path`` ends in ``.json``."""
    path = Path(path)
    array = "true" if path.suffix.lower() == ".json" else "false"

    def write(tmp: Path) -> None:
        con = duckdb.connect()
        try:
            con.register("rows", table)
            target = str(tmp).replace("'", "''")
            con.execute(f"COPY rows TO '{target}' (FORMAT json, ARRAY {array})")
        finally:
            con.close()

    atomic_write(path, write)
    return path


def to_dataset(table: pa.Table, columns: Sequence[str] | None = None) -> datasets.Dataset:
    """An in-memory ``datasets.Dataset`` of ``table`` (or of its ``columns``)."""
    return datasets.Dataset(table.select(list(columns)) if columns else table)


@dataclass(frozen=True)
class RoundExport:
    sft_path: Path
    pairs_path: Path
    sft_rows: int
    pair_rows: int


def export_rows(catalog: Catalog, round: int, name: str, kind: str, rows: pa.Table) -> Path:
    """Write ``rows`` to ``<store>/datasets/round=R/<name>.jsonl`` and register the file in
    the catalog's ``datasets`` table (a rerun replaces both)."""
    path = write_json(rows, catalog.layout.dataset_path(round, name))
    catalog.register_dataset(
        f"round{round}/{name}", kind=kind, path=path, num_rows=len(rows), round=round
    )
    return path


def export_round(catalog: Catalog, round: int, config: CurationConfig | None = None) -> RoundExport:
    """Select the SFT rows and PPM pairs of ``round`` and export both (``export_rows``:
    ``sft.jsonl``, ``ppm_pairs.jsonl``, all columns)."""
    sft = select_sft(catalog, round, config)
    pairs = select_pairs(catalog, round, config)
    return RoundExport(
        export_rows(catalog, round, "sft", "sft", sft),
        export_rows(catalog, round, "ppm_pairs", "ppm", pairs),
        len(sft),
        len(pairs),
    )
