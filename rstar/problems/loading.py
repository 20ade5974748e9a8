"""Loading problems: map columns, give stable ids, drop duplicates and benchmark copies.

Every row that is not kept becomes a row of the rejects table (source, row, line, reason,
raw text), so nothing is dropped silently and a load never stops on a bad row. The reason
starts with its category ("invalid JSON", "not an object", "empty question", "missing
answer", "no final answer", "duplicate", "contaminated"), then says what exactly.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

import pyarrow as pa
from tqdm.auto import tqdm

from rstar.problems.decontam import Decontaminator
from rstar.problems.ids import problem_id
from rstar.problems.layouts import (
    FORMATS,
    ProblemFormat,
    detect_format,
    get_format,
    parse_level,
)
from rstar.problems.readers import RawRecord, iter_records
from rstar.store.schema import PROBLEM_SCHEMA, REJECT_SCHEMA

log = logging.getLogger(__name__)

_DETECT_SAMPLE = 100  # records looked at to detect a source's format


@dataclass(frozen=True)
class ProblemSource:
    """One source to load.

    path: a .json/.jsonl/.parquet file, a ``save_to_disk`` directory, a data directory or
        a Hugging Face hub id.
    format: a name in ``FORMATS`` or a ``ProblemFormat``; None detects it from the columns.
    name: recorded as the problems' ``source`` (default: the file stem or the dataset id).
    split: the split to read from a dataset, also recorded as the problems' ``split``.
    """

    path: str | Path
    format: str | ProblemFormat | None = None
    name: str | None = None
    split: str = "train"

    @property
    def source_name(self) -> str:
        if self.name:
            return self.name
        path = Path(self.path)
        return path.stem if path.is_file() else str(self.path)


@dataclass
class LoadReport:
    """Counts of one load; ``str()`` is the end-of-load summary."""

    read: int = 0
    kept: int = 0
    formats: dict[str, str] = field(default_factory=dict)  # source -> detected format
    rejected: Counter[str] = field(default_factory=Counter)  # category -> rows
    contaminated: Counter[str] = field(default_factory=Counter)  # benchmark -> rows

    def __str__(self) -> str:
        lines = [f"read {self.read} rows, kept {self.kept} problems"]
        lines += [f"  {source}: format {fmt}" for source, fmt in self.formats.items()]
        lines += [f"  rejected {count}: {reason}" for reason, count in self.rejected.most_common()]
        lines += [
            f"  contaminated with {bench}: {count}"
            for bench, count in sorted(self.contaminated.items())
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class LoadResult:
    problems: pa.Table  # PROBLEM_SCHEMA
    rejects: pa.Table  # REJECT_SCHEMA
    report: LoadReport


class _Builder:
    """Accumulates kept problems and rejects, column by column."""

    def __init__(self, decontaminator: Decontaminator | None) -> None:
        self.decontaminator = decontaminator
        self.problems: dict[str, list] = {name: [] for name in PROBLEM_SCHEMA.names}
        self.rejects: dict[str, list] = {name: [] for name in REJECT_SCHEMA.names}
        self.seen: dict[str, str] = {}  # problem id -> where it was first kept
        self.report = LoadReport()

    def reject(self, source: str, record: RawRecord, category: str, detail: str) -> None:
        self.report.rejected[category] += 1
        row = (source, record.row, record.line, f"{category}: {detail}", record.raw)
        for name, value in zip(REJECT_SCHEMA.names, row, strict=True):
            self.rejects[name].append(value)

    def add(self, source: ProblemSource, fmt: ProblemFormat, record: RawRecord) -> None:
        name = source.source_name
        self.report.read += 1
        try:
            question, answer = question_and_answer(fmt, record)
            pid = problem_id(question)
            if pid in self.seen:
                raise RowRejected("duplicate", f"of {self.seen[pid]} (problem {pid})")
            hit = self.decontaminator.check(question) if self.decontaminator else None
            if hit is not None:
                self.report.contaminated[hit.benchmark] += 1
                raise RowRejected("contaminated", str(hit))
        except RowRejected as rejected:
            self.reject(name, record, rejected.category, rejected.detail)
            return
        self.seen[pid] = f"{name} row {record.row}"
        level = parse_level(record.value.get("level"))
        row = (pid, question, answer, name, level, source.split)
        for column, item in zip(PROBLEM_SCHEMA.names, row, strict=True):
            self.problems[column].append(item)
        self.report.kept += 1


class RowRejected(Exception):
    """A record that gives no problem: ``category`` as in the module docstring, ``detail``
    what exactly."""

    def __init__(self, category: str, detail: str) -> None:
        super().__init__(f"{category}: {detail}")
        self.category, self.detail = category, detail


def question_and_answer(fmt: ProblemFormat, record: RawRecord) -> tuple[str, str]:
    """The stripped question and final answer of a record, or ``RowRejected`` saying why not."""
    if record.error is not None:
        raise RowRejected("invalid JSON", record.error)
    value = record.value
    if not isinstance(value, dict):
        raise RowRejected("not an object", f"found {type(value).__name__}")
    question = value.get(fmt.question)
    if not isinstance(question, str) or not question.strip():
        raise RowRejected("empty question", f"column {fmt.question!r}")
    present = [a for a in fmt.answers if value.get(a.column) not in (None, "")]
    for column in present:
        answer = column.read(value[column.column])
        if answer is not None and answer.strip():
            return question.strip(), answer.strip()
    extracting = [a for a in present if a.extracted]
    if extracting:
        wanted = " or ".join(f"{a.expects} in {a.column!r}" for a in extracting)
        raise RowRejected("no final answer", f"expected {wanted}")
    raise RowRejected("missing answer", f"column {' or '.join(map(repr, fmt.answer_columns))}")


def resolve_format(source: ProblemSource, head: Sequence[RawRecord]) -> ProblemFormat:
    """The source's format: as given, or detected from the columns of its first records."""
    if isinstance(source.format, ProblemFormat):
        return source.format
    if source.format is not None:
        return get_format(source.format)
    detected = detect_format([r.value for r in head if r.error is None])
    if detected is None:
        columns = sorted({k for r in head if isinstance(r.value, dict) for k in r.value})
        raise ValueError(
            f"{source.path}: cannot tell the question and answer columns from the columns "
            f"found, {columns}. Choose a layout with format= (command line: --format), one "
            f"of {', '.join(FORMATS)}, or name the columns with --question-column and "
            "--answer-column (rstar.problems.columns_format)"
        )
    return detected


def open_source(source: ProblemSource) -> tuple[ProblemFormat, Iterator[RawRecord]]:
    """The source's format and all its records, in order."""
    records = iter_records(source.path, split=source.split)
    head = list(islice(records, _DETECT_SAMPLE))
    return resolve_format(source, head), chain(head, records)


def load_problems(
    sources: Iterable[ProblemSource | str | Path],
    *,
    decontaminator: Decontaminator | None = None,
    progress: bool = True,
) -> LoadResult:
    """Load problems from ``sources`` in order; the first copy of a question wins.

    Raises only for a source that cannot be read at all (``SourceError``) or whose format
    cannot be detected (ValueError); bad rows go to the rejects table.
    """
    builder = _Builder(decontaminator)
    for item in sources:
        source = item if isinstance(item, ProblemSource) else ProblemSource(item)
        fmt, records = open_source(source)
        builder.report.formats[source.source_name] = fmt.name
        rows = tqdm(
            records,
            desc=f"loading {source.source_name}",
            unit="row",
            disable=not progress,
        )
        for record in rows:
            builder.add(source, fmt, record)
    report = builder.report
    log.log(logging.WARNING if report.rejected else logging.INFO, "problem load: %s", report)
    return LoadResult(
        pa.table(builder.problems, schema=PROBLEM_SCHEMA),
        pa.table(builder.rejects, schema=REJECT_SCHEMA),
        report,
    )
