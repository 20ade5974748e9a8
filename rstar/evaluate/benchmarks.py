"""Benchmarks to evaluate on: files in the authors' JSON format, and the toy world's test set.

A benchmark file is a JSON list (or JSONL) of ``{"question", "answer"}`` records, as in
``shared/benchmarks`` (math500, gsm8k, aime2024, amc23); an optional ``level`` column is
kept. ``load_benchmark`` takes the name of a file there, the path of any such file, or
``toy`` for the held-out toy-world test set, every level of it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from rstar.evaluate.results import EvalProblem
from rstar.problems import Decontaminator, ProblemSource, load_problems
from rstar.store.schema import PROBLEM_SCHEMA
from rstar.toy.config import ToyWorldConfig
from rstar.toy.world import problem_pool

log = logging.getLogger(__name__)

TOY = "toy"
BENCHMARKS_ENV = "RSTAR_BENCHMARKS_DIR"
# shared/ lies beside the checkout (repo/../shared), as CI clones it.
DEFAULT_BENCHMARKS_DIR = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"


@dataclass(frozen=True)
class Benchmark:
    """A named set of problems with gold answers."""

    name: str
    problems: tuple[EvalProblem, ...]

    def problem_table(self) -> pa.Table:
        """The problems as ``PROBLEM_SCHEMA`` rows (source = the benchmark, split test)."""
        n = len(self.problems)
        return pa.table(
            {
                "problem_id": [p.problem_id for p in self.problems],
                "question": [p.question for p in self.problems],
                "answer": [p.answer for p in self.problems],
                "source": [self.name] * n,
                "level": [p.level for p in self.problems],
                "split": ["test"] * n,
            },
            schema=PROBLEM_SCHEMA,
        )

    def head(self, count: int | None) -> Benchmark:
        """The first ``count`` problems (all when None)."""
        return self if count is None else Benchmark(self.name, self.problems[:count])


def benchmarks_dir() -> Path:
    """Where named benchmarks are looked up: ``$RSTAR_BENCHMARKS_DIR`` or shared/benchmarks."""
    return Path(os.environ.get(BENCHMARKS_ENV) or DEFAULT_BENCHMARKS_DIR)


def benchmark_names(directory: Path | None = None) -> list[str]:
    """The named benchmarks: ``toy`` and the JSON files in the benchmarks directory."""
    directory = directory or benchmarks_dir()
    files = sorted(p.stem for p in directory.glob("*.json*")) if directory.is_dir() else []
    return [TOY, *files]


def toy_benchmark(world: ToyWorldConfig | None = None, per_level: int | None = None) -> Benchmark:
    """The held-out toy-world test set: ``per_level`` problems of every level."""
    world = world or ToyWorldConfig()
    count = per_level or world.test_per_level
    problems = [
        EvalProblem(p.id, p.question, p.answer, p.level)
        for level in range(1, world.max_level + 1)
        for p in problem_pool(level, count, "test", world)
    ]
    return Benchmark(TOY, tuple(problems))


def file_benchmark(path: str | Path, name: str | None = None) -> Benchmark:
    """A benchmark file in the authors' format; rows without a question or answer are
    skipped with a warning (they are counted in the log), duplicates too."""
    path = Path(path)
    name = name or path.stem.split(".")[0]
    loaded = load_problems(
        [ProblemSource(path, format="rstar", name=name, split="test")], progress=False
    )
    if loaded.report.rejected:
        log.warning("%s: skipped rows: %s", path, dict(loaded.report.rejected))
    table = loaded.problems
    if len(table) == 0:
        raise ValueError(f"{path}: no usable problems (every row lacked a question or answer)")
    problems = [
        EvalProblem(pid, question, answer, level)
        for pid, question, answer, level in zip(
            table["problem_id"].to_pylist(),
            table["question"].to_pylist(),
            table["answer"].to_pylist(),
            table["level"].to_pylist(),
            strict=True,
        )
    ]
    return Benchmark(name, tuple(problems))


def load_benchmark(
    spec: str | Path,
    *,
    directory: Path | None = None,
    world: ToyWorldConfig | None = None,
    toy_per_level: int | None = None,
) -> Benchmark:
    """``toy``, the name of a file in the benchmarks directory, or a path to such a file."""
    if str(spec) == TOY:
        return toy_benchmark(world, toy_per_level)
    directory = directory or benchmarks_dir()
    path = Path(spec)
    if path.is_file():
        return file_benchmark(path)
    for suffix in (".json", ".jsonl"):
        named = directory / f"{spec}{suffix}"
        if named.is_file():
            return file_benchmark(named)
    raise ValueError(
        f"unknown benchmark {str(spec)!r}: not a file, and not one of "
        f"{', '.join(benchmark_names(directory))} (looked in {directory}; set "
        f"{BENCHMARKS_ENV} to look elsewhere)"
    )


def decontaminator(specs: Iterable[str | Path], n: int = 13) -> Decontaminator | None:
    """A ``Decontaminator`` over the questions of the benchmarks ``specs`` (``toy`` is
    skipped: its test split is held out by construction); None when none is left."""
    chosen = [load_benchmark(spec) for spec in specs if str(spec) != TOY]
    if not chosen:
        return None
    return Decontaminator({b.name: [p.question for p in b.problems] for b in chosen}, n)
