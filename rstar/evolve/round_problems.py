"""The problems a round searches, and how they are cut into shards.

Every round searches the same problem set (the paper re-runs MCTS over its 747k problems
each round, and coverage grows). For the toy world these are train-pool problems of every
level that the base policy was *not* trained on; otherwise the profile's problem files
through ``rstar.problems``. The set is written once per round as a Parquet file sorted by
problem id, so shard ``i`` is always the same slice, on a retry too.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rstar.atomic import atomic_write
from rstar.config import ProblemsConfig, Profile
from rstar.evaluate.benchmarks import decontaminator
from rstar.problems import LoadReport, LoadResult, load_problems
from rstar.search import SearchProblem
from rstar.store import Catalog, StoreLayout
from rstar.store.schema import PROBLEM_SCHEMA, REJECT_SCHEMA
from rstar.toy.config import ToyConfig
from rstar.toy.world import problem_pool


def toy_problems(toy: ToyConfig, config: ProblemsConfig) -> pa.Table:
    """The configured number of train problems of each level, after those the bootstrap
    trained on."""
    rows = []
    for level, count in config.level_counts().items():
        seen = toy.bootstrap.problems_per_level.get(level, 0)
        for p in problem_pool(level, seen + count, "train", toy.world)[seen:]:
            rows.append(
                {
                    "problem_id": p.id,
                    "question": p.question,
                    "answer": p.answer,
                    "source": "toy",
                    "level": p.level,
                    "split": p.split,
                }
            )
    return pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA)


def source_problems(profile: Profile, progress: bool = True) -> LoadResult:
    """The problems of the profile's ``evolve.problems`` section, sorted by id, with the
    rows left out of problem files (bad, duplicate, or a benchmark's question)."""
    config = profile.evolve.problems
    if config.source == "toy":
        if profile.toy is None:
            raise ValueError(
                f"profile {profile.name!r}: evolve.problems.source is 'toy' but the profile has "
                "no toy: section; set evolve.problems.source to 'files' and list the files"
            )
        table = toy_problems(profile.toy, config)
        loaded = LoadResult(table, REJECT_SCHEMA.empty_table(), LoadReport(len(table), len(table)))
    else:
        clean = decontaminator(profile.decontamination_benchmarks(), config.ngram)
        loaded = load_problems(config.files, decontaminator=clean, progress=progress)
    table = loaded.problems.sort_by("problem_id")
    table = table.slice(0, config.limit) if config.limit else table
    return replace(loaded, problems=table)


def write_problems(table: pa.Table, path: Path) -> int:
    """``table`` (PROBLEM_SCHEMA) to ``path`` atomically; returns the row count."""
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return len(table)


def register_problems(store: StoreLayout, loaded: LoadResult) -> None:
    """Add the problems (curation joins questions from there) and the rows left out of the
    problem files to the catalog."""
    with Catalog(store) as catalog:
        catalog.add_problems(loaded.problems)
        catalog.add_rejects(loaded.rejects)


def shard_count(rows: int, shard_size: int) -> int:
    return -(-rows // shard_size)


def shard_problems(path: Path, shard: int, shard_size: int) -> list[SearchProblem]:
    """Shard ``shard`` (0-based) of the problem file: rows [shard*size, (shard+1)*size)."""
    table = pq.read_table(path).slice(shard * shard_size, shard_size)
    if not len(table):
        raise ValueError(f"{path} has no shard {shard} of {shard_size} problems")
    return [
        SearchProblem(pid, question, answer)
        for pid, question, answer in zip(
            table["problem_id"].to_pylist(),
            table["question"].to_pylist(),
            table["answer"].to_pylist(),
            strict=True,
        )
    ]
