"""Problems in: column mappings per source format, rejects, ids, dedup, decontamination."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rstar.cli import app
from rstar.problems import (
    Decontaminator,
    ProblemSource,
    SourceError,
    columns_format,
    load_problems,
    normalize_question,
    problem_id,
)
from rstar.store import PROBLEM_SCHEMA, REJECT_SCHEMA, Catalog, StoreLayout
from tests.conftest import shipped_rows


def problems(result) -> list[tuple]:
    rows = result.problems.to_pylist()
    return [(r["question"], r["answer"], r["source"], r["level"], r["split"]) for r in rows]


def rejects(result) -> list[tuple]:
    return [(r["source"], r["row"], r["line"], r["reason"]) for r in result.rejects.to_pylist()]


def test_problem_ids_are_stable_hashes_of_the_normalised_question():
    assert problem_id("What is 1 + 1?") == "e265702b26f3ffa7"  # pinned: stored data uses it
    assert problem_id("  What  is 1 +\n1? ") == problem_id("What is 1 + 1?")
    assert problem_id("What is x + x?") != problem_id("What is X + X?")  # case matters in math
    assert normalize_question("ｘ²\t+ 1 ") == "x2 + 1"  # NFKC, whitespace collapsed


def test_authors_format_json_list(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(
        json.dumps(
            [
                {"index": 0, "question": "What is 2 + 3?", "answer": "5"},
                {"index": 1, "question": "Solve $x^2 = 4$, $x > 0$.", "answer": 2},
            ],
            indent=4,
        )
    )
    result = load_problems([path], progress=False)
    assert result.report.formats == {"bench": "rstar"}
    assert problems(result) == [
        ("What is 2 + 3?", "5", "bench", None, "train"),
        ("Solve $x^2 = 4$, $x > 0$.", "2", "bench", None, "train"),
    ]
    assert result.problems["problem_id"].to_pylist()[0] == problem_id("What is 2 + 3?")
    assert result.problems.schema == PROBLEM_SCHEMA


def test_gsm8k_jsonl(tmp_path):
    path = tmp_path / "gsm8k_train.jsonl"
    rows = [
        {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"},
        {"question": "A car costs $1,200 twice. Total?", "answer": "2 * 1200\n#### 2,400"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = load_problems([path], progress=False)
    assert result.report.formats == {"gsm8k_train": "gsm8k"}
    assert [p[1] for p in problems(result)] == ["7", "2400"]


def test_numina_parquet_with_math_levels(tmp_path):
    path = tmp_path / "numina.parquet"
    pq.write_table(
        pa.table(
            {
                "problem": ["Find $2^{10}$.", "Compute $\\frac{1}{2} + \\frac{1}{3}$."],
                "solution": [
                    "We have $2^{10} = \\boxed{1024}$.",
                    "Sum: $\\frac{5}{6}$, so \\boxed{\\frac{5}{6}}.",
                ],
                "level": ["Level 3", "Level 5"],
            }
        ),
        path,
    )
    result = load_problems([ProblemSource(path, name="math")], progress=False)
    assert result.report.formats == {"math": "numina"}
    assert problems(result) == [
        ("Find $2^{10}$.", "1024", "math", 3, "train"),
        ("Compute $\\frac{1}{2} + \\frac{1}{3}$.", "\\frac{5}{6}", "math", 5, "train"),
    ]


def test_metamath_dataset_saved_to_disk(tmp_path):
    data = datasets.Dataset.from_dict(
        {
            "query": ["What is 6 times 7?", "Half of 9?"],
            "response": ["6 * 7 = 42.\nThe answer is: 42", "9 / 2\nThe answer is: 4.5"],
            "type": ["GSM_Rephrased", "MATH_AnsAug"],
        }
    )
    data.save_to_disk(tmp_path / "metamath")
    result = load_problems([ProblemSource(tmp_path / "metamath", name="metamath")], progress=False)
    assert result.report.formats == {"metamath": "metamath"}
    assert [(p[0], p[1]) for p in problems(result)] == [
        ("What is 6 times 7?", "42"),
        ("Half of 9?", "4.5"),
    ]
    splits = datasets.DatasetDict({"test": data})
    splits.save_to_disk(tmp_path / "with_splits")
    tested = load_problems([ProblemSource(tmp_path / "with_splits", split="test")], progress=False)
    assert tested.problems["split"].to_pylist() == ["test", "test"]
    with pytest.raises(SourceError, match="no split 'train'; splits: test"):
        load_problems([tmp_path / "with_splits"], progress=False)


def test_format_override_and_custom_columns(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps({"question": "Q?", "answer": "x\n#### 3"}) + "\n")
    as_rstar = load_problems([ProblemSource(path, format="rstar")], progress=False)
    assert as_rstar.problems["answer"].to_pylist() == ["x\n#### 3"]
    custom = tmp_path / "custom.jsonl"
    custom.write_text(json.dumps({"prompt": "Q2?", "gold": " 8 "}) + "\n")
    fmt = columns_format("prompt", "gold")
    assert load_problems([ProblemSource(custom, format=fmt)], progress=False).problems[
        "answer"
    ].to_pylist() == ["8"]
    with pytest.raises(ValueError, match=r"columns found, \['gold', 'prompt'\]\. Choose"):
        load_problems([custom], progress=False)


def test_bad_rows_become_rejects_with_file_line_and_reason(tmp_path):
    path = tmp_path / "messy.jsonl"
    path.write_text(
        "\n".join(
            [
                '{"question": "Good one?", "answer": "1 + 1\\n#### 2"}',  # line 1
                '{"question": "Broken", "answer": ',  # 2: bad JSON
                "",  # 3: blank lines are skipped
                '{"question": "   ", "answer": "#### 4"}',  # 4: empty question
                '{"question": "No answer?"}',  # 5
                '{"question": "No marker?", "answer": "it is 5"}',  # 6
                "[1, 2]",  # 7: not an object
                '{"question": "Good  one?", "answer": "#### 2"}',  # 8: duplicate of line 1
            ]
        )
        + "\n"
    )
    result = load_problems([ProblemSource(path, format="gsm8k")], progress=False)
    assert problems(result) == [("Good one?", "2", "messy", None, "train")]
    assert rejects(result) == [
        ("messy", 1, 2, "invalid JSON: Expecting value (column 34)"),
        ("messy", 2, 4, "empty question: column 'question'"),
        ("messy", 3, 5, "missing answer: column 'answer'"),
        ("messy", 4, 6, "no final answer: expected a '#### X' line in 'answer'"),
        ("messy", 5, 7, "not an object: found list"),
        ("messy", 6, 8, f"duplicate: of messy row 0 (problem {problem_id('Good one?')})"),
    ]
    assert result.rejects["raw"][1].as_py() == '{"question": "   ", "answer": "#### 4"}'
    assert result.rejects.schema == REJECT_SCHEMA
    assert dict(result.report.rejected) == {
        "invalid JSON": 1,
        "empty question": 1,
        "missing answer": 1,
        "no final answer": 1,
        "not an object": 1,
        "duplicate": 1,
    }
    assert (result.report.read, result.report.kept) == (7, 1)
    assert "rejected 1: invalid JSON" in str(result.report)


def test_json_list_rejects_carry_lines_and_a_broken_list_stops_cleanly(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(
        "[\n"
        '  {"question": "A?", "answer": "1"},\n'  # line 2
        '  {"question": "B?",\n   "answer": null},\n'  # line 3
        '  {"question": "C?", "answer": "3"}\n'  # line 5
        '  {"question": "D?", "answer": "4"}\n'  # line 6: missing comma
        "]\n"
    )
    result = load_problems([path], progress=False)
    assert [p[0] for p in problems(result)] == ["A?", "C?"]
    assert rejects(result) == [
        ("list", 1, 3, "missing answer: column 'answer'"),
        ("list", 3, 6, "invalid JSON: expected ',' or ']' after a list element"),
    ]


def test_unreadable_sources_raise_clear_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(SourceError, match=r"unknown file type '\.txt'"):
        load_problems([text], progress=False)
    bad = tmp_path / "bad.json"
    bad.write_text("hello")
    with pytest.raises(SourceError, match="expected a JSON list"):
        load_problems([bad], progress=False)
    with pytest.raises(SourceError, match="HF_HUB_OFFLINE is set"):
        load_problems(["some-org/not-downloadable"], progress=False)


def test_duplicates_across_sources_keep_the_first(tmp_path):
    first = tmp_path / "a.jsonl"
    first.write_text(json.dumps({"question": "What is 7 - 2?", "answer": "5"}) + "\n")
    second = tmp_path / "b.jsonl"
    second.write_text(json.dumps({"question": "What is 7 -  2?", "answer": "6"}) + "\n")
    result = load_problems([first, second], progress=False)
    assert problems(result) == [("What is 7 - 2?", "5", "a", None, "train")]
    assert rejects(result) == [
        ("b", 0, 1, f"duplicate: of a row 0 (problem {problem_id('What is 7 - 2?')})")
    ]


BENCHMARKS = {
    "bench_a": [
        "A train leaves the station at noon traveling sixty miles per hour toward a city "
        "that is three hundred miles away; when does it arrive?",
        "What is 2 + 2?",
    ],
    "bench_b": ["Find the number of positive divisors of 3600."],
}


def test_decontamination_exact_and_ngram():
    checker = Decontaminator(BENCHMARKS, n=13)
    exact = checker.check("what is 2+2 ?")  # same tokens, other case and spacing
    assert (exact.benchmark, exact.index, exact.kind) == ("bench_a", 1, "exact")
    assert str(exact) == "exact match with bench_a #1"
    # 13 consecutive tokens of bench_a #0 inside a different question:
    copied = checker.check(
        "Suppose a train leaves the station at noon traveling sixty miles per hour toward "
        "a city far away. How far does it go by 2pm?"
    )
    assert (copied.benchmark, copied.index, copied.kind) == ("bench_a", 0, "13-gram")
    # 12 shared tokens are not enough:
    assert (
        checker.check("A train leaves the station at noon traveling sixty miles per hour") is None
    )
    # Short questions only match exactly:
    assert checker.check("What is 2 + 2 + 2?") is None
    assert checker.check("Find the number of positive divisors of 3600, please.") is None


def test_load_reports_contamination_per_benchmark(tmp_path):
    names = ["aime2024", "amc23", "gsm8k", "math500"]
    for name in names:
        (tmp_path / f"{name}.json").write_text(json.dumps(shipped_rows(name)))
    checker = Decontaminator.from_files([tmp_path / f"{name}.json" for name in names])
    assert checker.names == names
    gsm8k_first = shipped_rows("gsm8k")[0]
    path = tmp_path / "train.jsonl"
    rows = [
        {"question": gsm8k_first["question"].upper(), "answer": "18"},
        {"question": "Janet's ducks lay 16 eggs per day. She eats three for breakfast every "
         "morning and bakes muffins for her friends every day with four. How many are left?",
         "answer": "9"},
        {"question": "What is 5 + 5?", "answer": "10"},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = load_problems([path], decontaminator=checker, progress=False)
    assert problems(result) == [("What is 5 + 5?", "10", "train", None, "train")]
    assert [r[3] for r in rejects(result)] == [
        "contaminated: exact match with gsm8k #0",
        "contaminated: 13-gram overlap with gsm8k #0",
    ]
    assert dict(result.report.contaminated) == {"gsm8k": 2}
    assert "contaminated with gsm8k: 2" in str(result.report)


def test_loaded_problems_and_rejects_go_into_the_catalog(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"question": "Q1?", "answer": "1"}\n{"question": "Q2?"}\n')
    result = load_problems([path], progress=False)
    with Catalog(tmp_path / "store") as catalog:
        assert catalog.add_problems(result.problems) == 1
        catalog.add_rejects(result.rejects)
        assert catalog.sql("SELECT source, line, reason FROM rejects").to_pylist() == [
            {"source": "mixed", "line": 2, "reason": "missing answer: column 'answer'"}
        ]


def test_load_command_fills_the_catalog_and_reports(tmp_path):
    gsm8k_first = shipped_rows("gsm8k")[0]
    path = tmp_path / "mine.jsonl"
    rows = [
        {"question": gsm8k_first["question"], "answer": "18"},
        {"question": "What is 5 + 5?", "answer": "10"},
        {"question": "What is 6 + 6?"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{oops\n")
    runner = CliRunner()

    def load(*options: str) -> dict[str, str]:
        command = ["problems", "load", str(path), "--run-dir", str(tmp_path), *options]
        run = runner.invoke(app, command)
        assert run.exit_code == 0, run.output
        cells = [line.strip("│ ").split("│") for line in run.output.splitlines() if "│" in line]
        return {key.strip(): value.strip() for key, value in cells}

    report = load()
    assert report["rows read"] == "4" and report["problems kept"] == "1"
    assert report["new in the catalog"] == "1"
    assert report["left out: contaminated"] == "1" and report["of which gsm8k questions"] == "1"
    assert report["left out: missing answer"] == "1" and report["left out: invalid JSON"] == "1"
    assert load()["new in the catalog"] == "0"  # loading again adds nothing
    with Catalog(StoreLayout.for_run(tmp_path), read_only=True) as catalog:
        rejects = catalog.sql("SELECT source, line, reason FROM rejects ORDER BY line").to_pylist()
    assert [(r["source"], r["line"]) for r in rejects] == [("mine", 1), ("mine", 3), ("mine", 4)]
    assert rejects[0]["reason"] == "contaminated: exact match with gsm8k #0"
    assert load("--no-decontaminate")["new in the catalog"] == "1"
    assert load("--decontaminate", "math500")["problems kept"] == "2"  # gsm8k not checked


def test_load_command_names_an_unreadable_source(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("What is 1 + 1?")
    run = CliRunner().invoke(app, ["problems", "load", str(path), "--run-dir", str(tmp_path)])
    assert run.exit_code == 2
    assert "notes.txt" in run.output and "unknown file type" in run.output
    assert not StoreLayout.for_run(tmp_path).catalog_path.exists()
