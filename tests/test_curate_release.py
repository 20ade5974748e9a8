"""The authors' released SFT and PPM data: import into our row shapes, export back."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rstar.cli import app
from rstar.curate import (
    FINAL,
    PAIR_SCHEMA,
    SFT_SCHEMA,
    STEP,
    read_release_pairs,
    read_release_sft,
    to_dataset,
    write_release_pairs,
    write_release_sft,
)
from rstar.format import build_prompt, parse_trajectory
from rstar.problems import problem_id
from rstar.train.data import read_rows
from tests.conftest import RELEASE_DIR


@pytest.fixture
def release():
    return RELEASE_DIR


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_sft_round_trip(release, tmp_path, suffix):
    rows = read_release_sft(release / "sft_examples.json")
    original = json.loads((release / "sft_examples.json").read_text())
    assert rows.schema == SFT_SCHEMA and len(rows) == len(original) == 8
    first = rows.to_pylist()[0]
    assert first["question"] == original[0]["query"]
    assert first["prompt"] == build_prompt(original[0]["query"])
    assert first["completion"] == original[0]["response"]
    assert first["problem_id"] == problem_id(original[0]["query"])
    assert first["round"] is None and first["leaf_id"] is None
    out = write_release_sft(rows, tmp_path / f"sft{suffix}")
    text = out.read_text()
    written = json.loads(text) if suffix == ".json" else [json.loads(x) for x in text.splitlines()]
    assert written == original


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_ppm_round_trip(release, tmp_path, suffix):
    rows = read_release_pairs(release / "ppm_pair_examples.json")
    original = json.loads((release / "ppm_pair_examples.json").read_text())
    assert rows.schema == PAIR_SCHEMA
    assert rows["kind"].to_pylist() == [FINAL, FINAL, FINAL, STEP, STEP]
    assert [(r["pos_count"], r["neg_count"]) for r in rows.to_pylist()] == [
        (r["pos_count"], r["neg_count"]) for r in original
    ]
    final = rows.to_pylist()[0]
    # The assistant header moved into the prompt: prompt = build_prompt(question), the
    # responses start at <code>, as select_pairs writes full-trajectory pairs.
    question = original[0]["prompt"].removeprefix("<|user|>:\n")
    assert final["prompt"] == build_prompt(question)
    assert final["chosen"].startswith("<code>") and final["rejected"].startswith("<code>")
    assert final["prompt"] + final["chosen"] == original[0]["prompt"] + original[0]["pos"]
    assert final["problem_id"] == problem_id(question)
    step = rows.to_pylist()[3]
    assert (step["prompt"], step["chosen"], step["rejected"]) == (
        original[3]["prompt"],
        original[3]["pos"],
        original[3]["neg"],
    )
    assert parse_trajectory(step["prompt"] + step["chosen"]).question is not None
    out = write_release_pairs(rows, tmp_path / f"ppm{suffix}")
    text = out.read_text()
    written = json.loads(text) if suffix == ".json" else [json.loads(x) for x in text.splitlines()]
    assert written == original
    dataset = to_dataset(rows, ["prompt", "chosen", "rejected"])
    assert len(dataset) == 5 and dataset[3]["chosen"] == original[3]["pos"]


def test_malformed_release_records_name_the_row(tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_text('{"query": "Q", "response": "R"}\n{"query": "Q2"}\n')
    with pytest.raises(
        ValueError, match=r"sft.jsonl row 1 \(line 2\): missing field\(s\) \['response'\]"
    ):
        read_release_sft(path)
    pairs = tmp_path / "ppm.jsonl"
    bad = {"prompt": "no header", "pos": "x", "neg": "y", "pos_count": 1, "neg_count": 1}
    pairs.write_text(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"ppm.jsonl row 0: prompt \+ pos is not in the format"):
        read_release_pairs(pairs)


def test_import_release_command_makes_training_rows(release, tmp_path):
    runner = CliRunner()
    for name, kind, columns, count in (
        ("sft_examples.json", "sft", ("prompt", "completion"), 8),
        ("ppm_pair_examples.json", "ppm", ("prompt", "chosen", "rejected"), 5),
    ):
        out = tmp_path / f"{kind}.jsonl"
        run = runner.invoke(
            app, ["curate", "import-release", str(release / name), "--out", str(out)]
        )
        assert run.exit_code == 0, run.output
        assert f"{count} {kind} rows" in run.output
        rows = read_rows(out, columns)  # what `rstar train sft|ppm --data` reads
        reader = read_release_sft if kind == "sft" else read_release_pairs
        expected = reader(release / name).select(list(columns)).to_pylist()
        assert [{c: row[c] for c in columns} for row in rows] == expected
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({"question": "What is 1 + 1?", "answer": "2"}) + "\n")
    run = runner.invoke(
        app, ["curate", "import-release", str(problems), "--out", str(tmp_path / "x.jsonl")]
    )
    assert run.exit_code == 2 and "['answer', 'question']" in run.output
    assert not (tmp_path / "x.jsonl").exists()
