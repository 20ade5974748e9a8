"""Benchmarks to evaluate on: the paper's nine (shipped with rstar), any benchmark file in
a layout rstar knows, and the toy world's held-out test set.

``load_benchmark`` takes ``toy``, a name in :data:`PAPER_BENCHMARKS` (``math``,
``math500``, ``aime2024``, ...: the authors' JSON files, package data under
``rstar/data/benchmarks``), or the path of a benchmark file. Files are read by the
problem readers (JSON, JSONL, CSV, Parquet, saved datasets) with their column layouts
(``rstar.problems.layouts``: the authors' ``question``/``answer``, MATH's ``problem``/
``answer``/``solution``, GSM8K's ``#### N``); an optional ``level`` column is kept.

A benchmark keeps **every row**, so that accuracies have the paper's denominators:
a repeated question stays (each row gets its own id), and a row without a usable gold
answer (none given, none extractable from its solution, or one cut off mid-expression)
stays in the denominator and is scored wrong; :attr:`Benchmark.unscorable` says which
rows and why. Deduplication and decontamination belong to training pools
(``rstar.problems.load_problems``), not here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rstar.evaluate.results import EvalProblem
from rstar.grading import unusable_gold
from rstar.problems import Decontaminator, ProblemSource, problem_id
from rstar.problems.layouts import ProblemFormat, parse_level
from rstar.problems.loading import RowRejected, open_source, question_and_answer
from rstar.problems.readers import RawRecord, SourceError
from rstar.store.schema import PROBLEM_SCHEMA, REJECT_SCHEMA
from rstar.toy.config import ToyWorldConfig
from rstar.toy.world import problem_pool

log = logging.getLogger(__name__)

TOY = "toy"
TOY_VAL = "toy-val"  # the toy world's validation split: design choices, the promotion gate


@dataclass(frozen=True)
class BenchmarkInfo:
    """One of the paper's benchmarks, as shipped: its file, size, origin and license
    (docs/evaluation-data.md says more of each)."""

    name: str
    rows: int  # rows of the shipped file (every one counts in the denominator)
    title: str
    source: str
    license: str

    @property
    def file(self) -> str:
        return f"{self.name}.json"


# The paper's benchmarks (rStar-Math, Tables 5-6), in the authors' evaluation files.
PAPER_BENCHMARKS: dict[str, BenchmarkInfo] = {
    b.name: b
    for b in (
        BenchmarkInfo(
            "math",
            5000,
            "MATH test set",
            "Hendrycks et al. 2021, github.com/hendrycks/math",
            "MIT",
        ),
        BenchmarkInfo(
            "math500",
            500,
            "MATH-500 (PRM800K's MATH subset)",
            "Lightman et al. 2023, github.com/openai/prm800k",
            "MIT",
        ),
        BenchmarkInfo(
            "aime2024",
            30,
            "AIME 2024",
            "Mathematical Association of America; problems as collected by AI-MO",
            "(c) MAA",
        ),
        BenchmarkInfo(
            "amc23",
            40,
            "AMC 2023",
            "Mathematical Association of America; problems as collected by AI-MO",
            "(c) MAA",
        ),
        BenchmarkInfo(
            "gsm8k",
            1319,
            "GSM8K test set",
            "Cobbe et al. 2021, github.com/openai/grade-school-math",
            "MIT",
        ),
        BenchmarkInfo(
            "olympiadbench",
            675,
            "OlympiadBench, English math",
            "He et al. 2024, github.com/OpenBMB/OlympiadBench",
            "Apache-2.0",
        ),
        BenchmarkInfo(
            "collegemath",
            2818,
            "CollegeMath test set",
            "Tang et al. 2024 (MathScale), github.com/microsoft/unilm/tree/master/mathscale",
            "MIT",
        ),
        BenchmarkInfo(
            "gaokao2023en",
            385,
            "Gaokao 2023, English",
            "Liao et al. 2024 (MARIO), as in the Qwen2.5-Math evaluation data",
            "Apache-2.0",
        ),
        BenchmarkInfo(
            "omni_math",
            4428,
            "Omni-MATH",
            "Gao et al. 2024, huggingface.co/datasets/KbsdJames/Omni-MATH",
            "Apache-2.0",
        ),
    )
}

_DATA = resources.files("rstar") / "data" / "benchmarks"


@dataclass(frozen=True)
class Benchmark:
    """A named set of problems with gold answers.

    ``unscorable`` holds the rows whose gold answer is unusable (``REJECT_SCHEMA``: row,
    line, reason): their problems have ``answer`` None and count as wrong.
    """

    name: str
    problems: tuple[EvalProblem, ...]
    unscorable: pa.Table = field(default_factory=REJECT_SCHEMA.empty_table, compare=False)

    @property
    def scorable(self) -> int:
        return sum(p.answer is not None for p in self.problems)

    def unscorable_reasons(self) -> Counter[str]:
        """Rows without a usable gold answer, by reason (category before the colon)."""
        return Counter(r.split(":", 1)[0] for r in self.unscorable["reason"].to_pylist())

    def problem_table(self) -> pa.Table:
        """The problems as ``PROBLEM_SCHEMA`` rows (source = the benchmark; split val for
        the toy world's validation set, else test)."""
        n = len(self.problems)
        return pa.table(
            {
                "problem_id": [p.problem_id for p in self.problems],
                "question": [p.question for p in self.problems],
                "answer": [p.answer for p in self.problems],
                "source": [self.name] * n,
                "level": [p.level for p in self.problems],
                "split": ["val" if self.name == TOY_VAL else "test"] * n,
            },
            schema=PROBLEM_SCHEMA,
        )

    def head(self, count: int | None) -> Benchmark:
        """The first ``count`` problems (all when None); problem i is the file's row i."""
        if count is None:
            return self
        kept = pc.less(self.unscorable["row"], count)
        return Benchmark(self.name, self.problems[:count], self.unscorable.filter(kept))


def benchmark_names() -> list[str]:
    """The named benchmarks: ``toy`` and the paper's."""
    return [TOY, TOY_VAL, *PAPER_BENCHMARKS]


def toy_benchmark(
    world: ToyWorldConfig | None = None, per_level: int | None = None, split: str = "test"
) -> Benchmark:
    """The held-out toy-world test set (``toy``), or its validation set (``split="val"``,
    ``toy-val``): ``per_level`` problems of every level."""
    world = world or ToyWorldConfig()
    count = per_level or world.test_per_level
    problems = [
        EvalProblem(p.id, p.question, p.answer, p.level)
        for level in range(1, world.max_level + 1)
        for p in problem_pool(level, count, split, world)
    ]
    return Benchmark(TOY if split == "test" else TOY_VAL, tuple(problems))


class _Rows:
    """Builds a benchmark row by row: ids unique per row, unusable golds recorded."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[EvalProblem] = []
        self.unscorable: dict[str, list] = {column: [] for column in REJECT_SCHEMA.names}
        self.ids: Counter[str] = Counter()

    def add(self, fmt: ProblemFormat, record: RawRecord) -> None:
        if record.error is not None:  # a damaged file would shift every denominator
            where = f"line {record.line}" if record.line else f"row {record.row}"
            raise SourceError(
                f"{self.name}: {where}: {record.error}; the file is damaged or truncated, "
                "so the benchmark cannot be read whole"
            )
        value = record.value if isinstance(record.value, dict) else {}
        try:
            question, answer = question_and_answer(fmt, record)
            reason = unusable_gold(answer)
            if reason is not None:
                raise RowRejected("unusable answer", reason)
        except RowRejected as rejected:
            question = value.get(fmt.question)
            question = question.strip() if isinstance(question, str) else ""
            answer = None
            self._unscorable(record, f"{rejected.category}: {rejected.detail}")
        pid = self._unique_id(question, record.row)
        self.problems.append(EvalProblem(pid, question, answer, parse_level(value.get("level"))))

    def _unique_id(self, question: str, row: int) -> str:
        pid = problem_id(question) if question else f"{self.name}-row-{row}"
        self.ids[pid] += 1
        return pid if self.ids[pid] == 1 else f"{pid}-{self.ids[pid]}"

    def _unscorable(self, record: RawRecord, reason: str) -> None:
        row = (self.name, record.row, record.line, reason, record.raw)
        for column, value in zip(REJECT_SCHEMA.names, row, strict=True):
            self.unscorable[column].append(value)

    def benchmark(self) -> Benchmark:
        table = pa.table(self.unscorable, schema=REJECT_SCHEMA)
        return Benchmark(self.name, tuple(self.problems), table)


def read_benchmark(
    path: str | Path, name: str | None = None, format: str | ProblemFormat | None = None
) -> Benchmark:
    """Every row of a benchmark file (see the module docstring); ``format`` as in
    :class:`rstar.problems.ProblemSource` (default: detected from the columns)."""
    source = ProblemSource(path, format=format, name=name, split="test")
    name = name or Path(path).stem.split(".")[0]
    fmt, records = open_source(source)
    rows = _Rows(name)
    for record in records:
        rows.add(fmt, record)
    bench = rows.benchmark()
    if not bench.problems:
        raise ValueError(f"{path}: holds no rows")
    if bench.scorable == 0:
        raise ValueError(
            f"{path}: no row has a usable gold answer ({dict(bench.unscorable_reasons())}); "
            f"read as layout {fmt.name!r} (question {fmt.question!r}, answer "
            f"{' or '.join(fmt.answer_columns)}): choose another with --format or name the "
            "columns with --question-column/--answer-column"
        )
    reasons = bench.unscorable_reasons()
    if reasons:
        log.info(
            "%s: %d of %d rows have no usable gold answer and count as wrong: %s",
            name,
            sum(reasons.values()),
            len(bench.problems),
            dict(reasons),
        )
    return bench


@contextmanager
def shipped_file(name: str) -> Iterator[Path]:
    """The path of a shipped benchmark's file (package data), while the context is open."""
    with resources.as_file(_DATA / PAPER_BENCHMARKS[name].file) as path:
        yield path


def load_benchmark(
    spec: str | Path,
    *,
    world: ToyWorldConfig | None = None,
    toy_per_level: int | None = None,
    format: str | ProblemFormat | None = None,
) -> Benchmark:
    """``toy``, a name in :data:`PAPER_BENCHMARKS`, or the path of a benchmark file."""
    if str(spec) in (TOY, TOY_VAL):
        return toy_benchmark(world, toy_per_level, "test" if str(spec) == TOY else "val")
    info = PAPER_BENCHMARKS.get(str(spec))
    if info is not None:
        with shipped_file(info.name) as path:
            return read_benchmark(path, info.name)
    path = Path(spec)
    if path.is_file() or path.is_dir():
        return read_benchmark(path, format=format)
    raise ValueError(
        f"unknown benchmark {str(spec)!r}: not a file, and not one of "
        f"{', '.join(benchmark_names())} (`rstar benchmarks` lists them)"
    )


def decontaminator(specs: Iterable[str | Path], n: int = 13) -> Decontaminator | None:
    """A ``Decontaminator`` over the questions of the benchmarks ``specs`` (``toy`` and
    ``toy-val`` are skipped: held out by construction); None when none is left."""
    chosen = [load_benchmark(spec) for spec in specs if str(spec) not in (TOY, TOY_VAL)]
    if not chosen:
        return None
    questions = {b.name: [p.question for p in b.problems if p.question] for b in chosen}
    return Decontaminator(questions, n)
