"""The DuckDB catalog of a store: tables for what one process records, views over the shards.

DuckDB lets only one process hold a database file (a second one, even read-only, gets
"Could not set lock"). So the rule is:

- **Shard writers** (any number of processes) call ``rstar.store.write_shard``: Parquet
  only, never the catalog.
- **The orchestrating process** alone opens ``Catalog`` for writing: it registers problems,
  rejects, rounds, datasets and evaluation results, and runs the curation queries.
- Anyone else opens the database once the orchestrator has closed it, e.g. the DuckDB CLI:
  ``duckdb <store>/catalog.duckdb`` (the example queries are in docs/store.md).

Views: ``nodes`` and ``synthesis`` read their Parquet globs by absolute path, so new files
are visible at once. DuckDB errors on a glob that matches no file, so a table without
files yet gets a typed empty view; ``refresh()`` (also run on every writable open) swaps in
the glob view once files exist and re-points the views after the store moved.
``trajectories`` (terminal nodes' rows), ``problem_summary``, ``eval_summary`` and
``synthetic_problems`` are defined over the others. Column meanings: docs/store.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from rstar.store.layout import NODES, SYNTHESIS, StoreLayout
from rstar.store.schema import (
    EVAL_RESULT_SCHEMA,
    PROBLEM_SCHEMA,
    REJECT_SCHEMA,
    STORED_NODE_SCHEMA,
    SYNTHESIS_SCHEMA,
    TRAINING_STAGES,
)

_SHARD_VIEWS = {NODES: STORED_NODE_SCHEMA, SYNTHESIS: SYNTHESIS_SCHEMA}
# A new catalog is written in the storage format of DuckDB 1.4 (the LTS line), so that the
# DuckDB CLI users have — including the one pip installs, which trails the Python package —
# opens it; DuckDB 2's own format cannot be read by a 1.x CLI.
STORAGE_COMPATIBILITY = "v1.4.0"

# A terminal node's row is its trajectory: the derived path columns hold its statistics.
_TRAJECTORIES = """
CREATE OR REPLACE VIEW trajectories AS
SELECT round, stage, shard, problem_id, node_id AS leaf_id, depth, path,
       CASE WHEN terminal_reason = 'answer' THEN correct ELSE false END AS correct,
       path_avg_q AS avg_q, path_min_q AS min_q, path_code_error AS has_code_error,
       answer, terminal_reason, ppm_score
FROM nodes WHERE terminal AND visits > 0
"""

_STAGE_LIST = ", ".join(f"'{stage}'" for stage in TRAINING_STAGES)

# Per (round, problem): its trees and trajectories over the training stages (search and
# extra rollouts; evaluation trees are left out), and its difficulty (docs/method.md §2),
# counted over the trajectories that ended in an answer: a crash or a depth limit says
# nothing about how hard the problem is (easy: every answer correct, medium: some, hard:
# none).
_PROBLEM_SUMMARY = f"""
CREATE OR REPLACE VIEW problem_summary AS
WITH trees AS (
    SELECT round, problem_id, count(*) AS num_nodes, max(depth) AS max_depth
    FROM nodes WHERE stage IN ({_STAGE_LIST}) GROUP BY round, problem_id
), paths AS (
    SELECT round, problem_id,
           count(*) AS num_trajectories,
           count(*) FILTER (WHERE correct) AS num_correct,
           count(*) FILTER (WHERE terminal_reason = 'answer') AS num_answered,
           count(*) FILTER (WHERE has_code_error) AS num_code_error,
           max(avg_q) FILTER (WHERE correct) AS best_correct_avg_q
    FROM trajectories WHERE stage IN ({_STAGE_LIST}) GROUP BY round, problem_id
)
SELECT trees.round, trees.problem_id, num_nodes, max_depth,
       coalesce(num_trajectories, 0) AS num_trajectories,
       coalesce(num_correct, 0) AS num_correct,
       coalesce(num_answered, 0) AS num_answered,
       coalesce(num_code_error, 0) AS num_code_error,
       best_correct_avg_q,
       CASE WHEN coalesce(num_correct, 0) = 0 THEN 'hard'
            WHEN num_correct = num_answered THEN 'easy'
            ELSE 'medium' END AS difficulty
FROM trees LEFT JOIN paths USING (round, problem_id)
"""

_EVAL_SUMMARY = """
CREATE OR REPLACE VIEW eval_summary AS
SELECT round, benchmark, method, count(*) AS num_problems,
       avg(CAST(coalesce(correct, false) AS DOUBLE)) AS accuracy
FROM eval_results GROUP BY round, benchmark, method
"""

# Each synthesized problem a round searched, with the seed it was written from and its vote
# (the first candidate that wrote it, should two rounds have kept the same question).
_SYNTHETIC_PROBLEMS = """
CREATE OR REPLACE VIEW synthetic_problems AS
SELECT DISTINCT ON (p.problem_id) p.*, s.seed_problem_id, s.candidate_id, s.votes, s.answers
FROM problems p JOIN synthesis s ON s.problem_id = p.problem_id AND s.kept
WHERE p.source = 'synthetic'
ORDER BY p.problem_id, s.candidate_id
"""

_TABLES: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    "problems": (PROBLEM_SCHEMA, ("problem_id",)),
    "rejects": (REJECT_SCHEMA, ()),
    "eval_results": (EVAL_RESULT_SCHEMA, ("round", "benchmark", "method", "problem_id")),
}

_OTHER_DDL = (
    """CREATE TABLE IF NOT EXISTS rounds (
        round SMALLINT PRIMARY KEY, policy VARCHAR, ppm VARCHAR,
        started_at TIMESTAMP, finished_at TIMESTAMP, metrics VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS datasets (
        name VARCHAR PRIMARY KEY, kind VARCHAR, round SMALLINT, path VARCHAR,
        num_rows BIGINT, created_at TIMESTAMP)""",
)


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, tables: Mapping[str, pa.Table]) -> Iterator[None]:
    """Arrow ``tables`` visible to SQL by name for the duration of the block."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        for name in tables:
            con.unregister(name)


def _duckdb_columns(con: duckdb.DuckDBPyConnection, schema: pa.Schema) -> list[tuple[str, str]]:
    """(name, DuckDB type) of each field, as DuckDB itself maps the Arrow types."""
    with _registered(con, {"_empty": schema.empty_table()}):
        return [(row[0], row[1]) for row in con.execute("DESCRIBE SELECT * FROM _empty").fetchall()]


class CatalogLockedError(RuntimeError):
    """The catalog is open in another process (DuckDB allows one process per file)."""


class Catalog:
    """The DuckDB database of one store, held by the single orchestrating process.

    ``read_only=True`` opens without refreshing views (for inspection; still takes
    DuckDB's file lock, so not while another process holds the catalog).
    """

    def __init__(
        self,
        store: StoreLayout | str | Path,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.layout = store if isinstance(store, StoreLayout) else StoreLayout(Path(store))
        config: dict[str, Any] = {}
        if not read_only:
            config["storage_compatibility_version"] = STORAGE_COMPATIBILITY
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        if not read_only:
            self.layout.root.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(
                str(self.layout.catalog_path), read_only=read_only, config=config
            )
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise CatalogLockedError(
                f"{self.layout.catalog_path} is held by another process. Only the "
                "orchestrating process opens the catalog; other processes write shards with "
                f"rstar.store.write_shard, which needs no catalog. DuckDB said: {exc}"
            ) from exc
        if not read_only:
            self._create_tables()
            self.refresh()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sql(
        self,
        query: str,
        params: Mapping[str, Any] | None = None,
        tables: Mapping[str, pa.Table] | None = None,
    ) -> pa.Table:
        """Run a read query with ``$name`` parameters; the result as an Arrow table.

        ``tables`` are Arrow tables the query reads by name (registered for this query).
        """
        with _registered(self.con, tables or {}):
            return self.con.sql(query, params=dict(params or {})).to_arrow_table()

    def _create_tables(self) -> None:
        for name, (schema, key) in _TABLES.items():
            columns = [f'"{col}" {kind}' for col, kind in _duckdb_columns(self.con, schema)]
            if key:
                columns.append(f"PRIMARY KEY ({', '.join(key)})")
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(columns)})")
        for ddl in _OTHER_DDL:
            self.con.execute(ddl)

    def refresh(self) -> None:
        """(Re)create the views: glob views where files exist, typed empty views elsewhere."""
        for table, schema in _SHARD_VIEWS.items():
            if self.layout.has_files(table):
                glob = self.layout.glob(table).replace("'", "''")
                source = (
                    f"SELECT * FROM read_parquet('{glob}', hive_partitioning = false, "
                    "union_by_name = true)"
                )  # by name: shards written before a derived column existed read it as null
            else:
                nulls = ", ".join(
                    f'CAST(NULL AS {kind}) AS "{col}"'
                    for col, kind in _duckdb_columns(self.con, schema)
                )
                source = f"SELECT {nulls} LIMIT 0"
            self.con.execute(f"CREATE OR REPLACE VIEW {table} AS {source}")
        self.con.execute(_TRAJECTORIES)
        self.con.execute(_PROBLEM_SUMMARY)
        self.con.execute(_EVAL_SUMMARY)
        self.con.execute(_SYNTHETIC_PROBLEMS)

    # --- tables written by the orchestrator (bulk, through Arrow) ---

    def add_problems(self, problems: pa.Table) -> int:
        """Insert problems (``PROBLEM_SCHEMA``); ids already present are kept as they are.

        Returns how many rows were new.
        """
        before = self._count("problems")
        with _registered(self.con, {"_rows": _conform(problems, PROBLEM_SCHEMA)}):
            self.con.execute("INSERT OR IGNORE INTO problems SELECT * FROM _rows")
        return self._count("problems") - before

    def add_rejects(self, rejects: pa.Table) -> None:
        """Record rejected input rows (``REJECT_SCHEMA``), replacing earlier rejects of the
        same sources, so that loading a file again does not duplicate its rejects."""
        with _registered(self.con, {"_rows": _conform(rejects, REJECT_SCHEMA)}):
            self.con.execute("DELETE FROM rejects WHERE source IN (SELECT source FROM _rows)")
            self.con.execute("INSERT INTO rejects SELECT * FROM _rows")

    def add_eval_results(self, results: pa.Table) -> None:
        """Record per-problem evaluation results (``EVAL_RESULT_SCHEMA``), replacing the
        earlier results of the same (round, benchmark, method)."""
        with _registered(self.con, {"_rows": _conform(results, EVAL_RESULT_SCHEMA)}):
            self.con.execute(
                "DELETE FROM eval_results WHERE (round, benchmark, method) IN "
                "(SELECT round, benchmark, method FROM _rows)"
            )
            self.con.execute("INSERT INTO eval_results SELECT * FROM _rows")

    def start_round(self, round: int, *, policy: str | None = None, ppm: str | None = None) -> None:
        """Record that ``round`` started (now) with these models; a rerun restarts it."""
        self.con.execute(
            "INSERT OR REPLACE INTO rounds VALUES ($round, $policy, $ppm, $now, NULL, NULL)",
            {"round": round, "policy": policy, "ppm": ppm, "now": _now()},
        )

    def finish_round(self, round: int, metrics: Mapping[str, Any] | None = None) -> None:
        """Record that ``round`` finished (now), with its metrics as JSON."""
        updated = self.con.execute(
            "UPDATE rounds SET finished_at = $now, metrics = $metrics WHERE round = $round "
            "RETURNING round",
            {"round": round, "now": _now(), "metrics": json.dumps(dict(metrics or {}))},
        ).fetchall()
        if not updated:
            raise ValueError(f"round {round} was never started (call start_round first)")

    def register_dataset(
        self, name: str, *, kind: str, path: str | Path, num_rows: int, round: int | None = None
    ) -> None:
        """Record an exported dataset (e.g. kind "sft" or "ppm"); a name is replaced."""
        self.con.execute(
            "INSERT OR REPLACE INTO datasets VALUES ($name, $kind, $round, $path, $rows, $now)",
            {
                "name": name,
                "kind": kind,
                "round": round,
                "path": str(Path(path).resolve()),
                "rows": num_rows,
                "now": _now(),
            },
        )

    def _count(self, table: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def finished_rounds(store: StoreLayout) -> dict[int, dict[str, float]]:
    """The metrics of every round the catalog records as finished, by round ({} while the
    store has no catalog: none is created)."""
    if not store.catalog_path.exists():
        return {}
    with Catalog(store) as catalog:
        rows = catalog.sql(
            "SELECT round, metrics FROM rounds WHERE finished_at IS NOT NULL ORDER BY round"
        ).to_pylist()
    return {row["round"]: json.loads(row["metrics"] or "{}") for row in rows}


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; expected {schema.names}")
    return table.select(schema.names).cast(schema)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
