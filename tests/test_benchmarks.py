"""Benchmark files in the layouts users have: every row kept, golds found or reported."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rstar.evaluate.benchmarks import read_benchmark
from rstar.evaluate.pipeline import load_records, write_records
from rstar.evaluate.results import EvalReport
from rstar.problems import SourceError, problem_id
from rstar.problems.layouts import columns_format
from rstar.store import Catalog, StoreLayout

MATH_ROWS = [
    {
        "problem": "What is $1+1$?",
        "solution": "So it is $\\boxed{2}$.",
        "answer": "2",
        "level": "Level 1",
        "subject": "Algebra",
    },
    {  # no answer column value: the gold comes from the solution's box
        "problem": "What is $\\frac{1}{2}+\\frac{1}{2}$?",
        "solution": "It is $\\boxed{1}$.",
        "answer": "",
        "level": "Level 2",
        "subject": "Algebra",
    },
    {  # neither: kept, scored wrong, reported
        "problem": "Prove it.",
        "solution": "A proof with no box.",
        "level": "Level 5",
        "subject": "Geometry",
    },
    {  # the same question again: its own problem
        "problem": "What is $1+1$?",
        "solution": "$\\boxed{2}$",
        "answer": "2",
        "level": "Level 1",
        "subject": "Algebra",
    },
]


def _lines(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_a_math_layout_keeps_every_row_and_reports_the_ones_without_a_gold(tmp_path):
    path = tmp_path / "math_test.jsonl"
    path.write_text(_lines(MATH_ROWS))
    bench = read_benchmark(path)
    first = problem_id("What is $1+1$?")
    assert [(p.problem_id, p.answer, p.level) for p in bench.problems] == [
        (first, "2", 1),
        (problem_id("What is $\\frac{1}{2}+\\frac{1}{2}$?"), "1", 2),
        (problem_id("Prove it."), None, 5),
        (f"{first}-2", "2", 1),
    ]
    assert bench.name == "math_test" and bench.scorable == 3
    assert bench.unscorable.select(["row", "line", "reason"]).to_pylist() == [
        {
            "row": 2,
            "line": 3,
            "reason": "no final answer: expected a \\boxed{} answer in 'solution'",
        }
    ]
    assert bench.head(2).problems == bench.problems[:2] and len(bench.head(2).unscorable) == 0
    assert len(bench.head(3).unscorable) == 1


def test_parquet_and_saved_datasets_read_the_same_as_jsonl(tmp_path):
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(_lines(MATH_ROWS))
    parquet = tmp_path / "m.parquet"
    columns = ("problem", "solution", "answer", "level", "subject")
    table = pa.table({c: [row.get(c) for row in MATH_ROWS] for c in columns})
    pq.write_table(table, parquet)
    saved = tmp_path / "m_saved"
    datasets.Dataset(table).save_to_disk(str(saved))
    expected = read_benchmark(jsonl, name="m").problems
    assert read_benchmark(parquet, name="m").problems == expected
    assert read_benchmark(saved, name="m").problems == expected


def test_a_gsm8k_layout_takes_the_gold_after_the_hashes(tmp_path):
    path = tmp_path / "gsm.json"
    rows = [
        {"question": "How many?", "answer": "Count them.\n#### 1,234"},
        {"question": "How few?", "answer": "Some.\n#### 3"},
        {"question": "How odd?", "answer": "No marker here."},
    ]
    path.write_text(json.dumps(rows, indent=1))
    bench = read_benchmark(path)
    assert [p.answer for p in bench.problems] == ["1234", "3", None]
    assert bench.unscorable["reason"].to_pylist() == [
        "no final answer: expected a '#### X' line in 'answer'"
    ]


def test_csv_with_columns_of_ones_own(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text('task,gold\nWhat is 2+3?,5\n"Two\nlines?",7\nEmpty?,\n')
    with pytest.raises(ValueError, match=r"columns found, \['gold', 'task'\].*--question-column"):
        read_benchmark(path)
    bench = read_benchmark(path, format=columns_format("task", "gold"))
    assert [(p.question, p.answer) for p in bench.problems] == [
        ("What is 2+3?", "5"),
        ("Two\nlines?", "7"),
        ("Empty?", None),
    ]
    assert bench.unscorable.select(["row", "line", "reason"]).to_pylist() == [
        {"row": 2, "line": 5, "reason": "missing answer: column 'gold'"}
    ]


def test_files_that_are_not_utf8_or_cut_off_name_the_line(tmp_path):
    jsonl = tmp_path / "latin.jsonl"
    jsonl.write_bytes(
        b'{"question": "ok?", "answer": "1"}\n{"question": "caf\xe9?", "answer": "2"}\n'
    )
    with pytest.raises(SourceError, match=r"latin.jsonl: line 2 is not UTF-8"):
        read_benchmark(jsonl)
    listed = tmp_path / "latin.json"
    listed.write_bytes(
        b'[\n{"question": "ok?", "answer": "1"},\n{"question": "\xe9", "answer": "2"}]'
    )
    with pytest.raises(SourceError, match=r"latin.json: line 3 is not UTF-8"):
        read_benchmark(listed)
    cut = tmp_path / "cut.json"
    cut.write_text('[\n{"question": "a?", "answer": "1"},\n{"question": "b?", "ans')
    with pytest.raises(SourceError, match=r"cut: line 3: .*damaged or truncated"):
        read_benchmark(cut)


def test_a_file_with_no_usable_gold_at_all_says_which_columns_it_read(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps([{"question": "a?", "answer": ""}, {"question": "b?"}]))
    with pytest.raises(ValueError, match=r"no row has a usable gold answer.*layout 'rstar'"):
        read_benchmark(path)


def test_rows_without_a_gold_land_in_the_rejects_table(tmp_path):
    path = tmp_path / "math_test.jsonl"
    path.write_text(_lines(MATH_ROWS))
    bench = read_benchmark(path)
    store = StoreLayout.for_run(tmp_path / "run")
    report = EvalReport(bench.name, len(bench.problems), 1)
    load_records(store, write_records(store, bench, report, round=0, out_dir=tmp_path / "eval"))
    with Catalog(store, read_only=True) as catalog:
        rejects = catalog.sql("SELECT source, row, line, reason FROM rejects").to_pylist()
        problems = catalog.sql("SELECT count(*) AS n FROM problems").to_pylist()
    assert rejects == [
        {
            "source": "math_test",
            "row": 2,
            "line": 3,
            "reason": "no final answer: expected a \\boxed{} answer in 'solution'",
        }
    ]
    assert problems == [{"n": 4}]
