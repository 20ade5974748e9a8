"""The problems a round searches, and how they are cut into shards.

By default every round searches the same problem set (the paper re-runs MCTS over its 747k
problems each round, and coverage grows); with ``each_round: new`` round N searches the
N-th slice of the pool instead. For the toy world these are train-pool problems of every
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
from rstar.toy.world import ToyProblem, problem_pool


def _slice(config: ProblemsConfig, round: int) -> int:
    """How many slices of the pool come before ``round``'s (0 when rounds share one)."""
    return round - 1 if config.each_round == "new" else 0


def toy_round_pool(toy: ToyConfig, config: ProblemsConfig, round: int = 1) -> list[ToyProblem]:
    """The configured number of train problems of each level, after those the bootstrap
    trained on (and, with ``each_round: new``, after those of earlier rounds)."""
    problems = []
    for level, count in config.level_counts().items():
        start = toy.bootstrap.problems_per_level.get(level, 0) + _slice(config, round) * count
        problems += problem_pool(level, start + count, "train", toy.world)[start:]
    return problems


def toy_problems(toy: ToyConfig, config: ProblemsConfig, round: int = 1) -> pa.Table:
    """:func:`toy_round_pool` as the store's problem rows."""
    rows = [
        {
            "problem_id": p.id,
            "question": p.question,
            "answer": p.answer,
            "source": "toy",
            "level": p.level,
            "split": p.split,
        }
        for p in toy_round_pool(toy, config, round)
    ]
    return pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA)


def source_problems(profile: Profile, round: int = 1, progress: bool = True) -> LoadResult:
    """The problems ``round`` searches (the profile's ``evolve.problems`` section), sorted
    by id, with the rows left out of problem files (bad, duplicate, or a benchmark's
    question)."""
    config = profile.evolve.problems
    if config.source == "toy":
        if profile.toy is None:
            raise ValueError(
                f"profile {profile.name!r}: evolve.problems.source is 'toy' but the profile has "
                "no toy: section; set evolve.problems.source to 'files' and list the files"
            )
        table = toy_problems(profile.toy, config, round)
        loaded = LoadResult(table, REJECT_SCHEMA.empty_table(), LoadReport(len(table), len(table)))
    else:
        clean = decontaminator(profile.decontamination_benchmarks(), config.ngram)
        loaded = load_problems(config.files, decontaminator=clean, progress=progress)
    table = loaded.problems.sort_by("problem_id")
    if config.limit:
        start = _slice(config, round) * config.limit
        if start >= table.num_rows:
            raise ValueError(
                f"round {round} searches problems {start + 1}-{start + config.limit} of the "
                f"problem files, which hold {table.num_rows} usable problems: lower "
                "evolve.problems.limit, add problems, or set evolve.problems.each_round: same"
            )
        table = table.slice(start, config.limit)
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
