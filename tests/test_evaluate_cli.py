"""The command line end to end on tiny models: `rstar train sft|ppm`, then `rstar eval`."""

from __future__ import annotations

import json

import duckdb
import pytest
from typer.testing import CliRunner

from rstar.cli import app
from rstar.format import build_prompt
from rstar.store import StoreLayout
from tests.tiny_models import tiny_checkpoint

SOLUTION = "<code>\n# Step 1: add\nx = 2 + 3\n<end_of_step>"
runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory laid out as the tiny profile expects: base policy, round-1 data."""
    root = tmp_path_factory.mktemp("run")
    tiny_checkpoint(root / "toy" / "base-policy", [build_prompt("What is 2 plus 3?") + SOLUTION])
    layout = StoreLayout.for_run(root)
    layout.dataset_path(1, "sft").parent.mkdir(parents=True)
    sft = {"prompt": build_prompt("What is 2 plus 3?"), "completion": SOLUTION}
    layout.dataset_path(1, "sft").write_text((json.dumps(sft) + "\n") * 4)
    pairs = [
        {
            "problem_id": f"p{i}",
            "prompt": build_prompt(f"What is {i} plus 3?"),
            "chosen": SOLUTION,
            "rejected": "<code>\nx = 1\n<end_of_step>",
        }
        for i in range(4)
    ]
    layout.dataset_path(1, "ppm_pairs").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (root / "bench.json").write_text(
        json.dumps(
            [
                {"question": "What is 2 plus 3?", "answer": "5"},
                {"question": "What is 4 plus 3?", "answer": "7"},
            ]
        )
    )
    return root


@pytest.fixture(autouse=True)
def env(run_dir, monkeypatch):
    monkeypatch.setenv("RSTAR_RUN_DIR", str(run_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def test_a_round_trains_and_evaluates_from_the_command_line(run_dir):
    code, out = invoke(
        "train", "sft", "--round", "1", "--max-steps", "2", "--threads", "1", "--no-track"
    )
    assert code == 0, out
    assert "SFT from" in out and "2 steps" in out
    assert (run_dir / "round-1" / "policy" / "model.safetensors").is_file()

    code, out = invoke(
        "train", "ppm", "--round", "1", "--max-steps", "2", "--threads", "1", "--no-track"
    )
    assert code == 0, out
    assert "held-out pair accuracy" in out and "(1 pairs)" in out  # ceil(5% of 4 problems)
    assert (run_dir / "round-1" / "ppm" / "model.safetensors").is_file()

    code, out = invoke(
        "eval",
        "--benchmark",
        str(run_dir / "bench.json"),
        "--method",
        "greedy",
        "--method",
        "mcts",
        "--trajectories",
        "2",
        "--scaling",
        "1,2",
        "--round",
        "1",
        "--policy",
        str(run_dir / "round-1" / "policy"),
        "--ppm",
        str(run_dir / "round-1" / "ppm"),
        "--threads",
        "1",
        "--no-track",
    )
    assert code == 0, out
    out_dir = run_dir / "round-1" / "eval" / "bench"
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["problems"] == 2 and list(summary["methods"]) == ["greedy", "mcts@2"]
    assert summary["scaling"]["budgets"] == [1, 2]
    assert (out_dir / "scaling.png").stat().st_size > 0
    con = duckdb.connect(str(StoreLayout.for_run(run_dir).catalog_path), read_only=True)
    counts = con.sql(
        "SELECT method, count(*) FROM eval_results WHERE round = 1 GROUP BY 1 ORDER BY 1"
    ).fetchall()
    con.close()
    assert counts == [("greedy", 2), ("mcts@2", 2)]


def test_clear_errors_exit_with_code_2(run_dir):
    code, out = invoke("train", "sft", "--no-track")
    assert code == 2 and "give --data, or --round" in out
    code, out = invoke("eval", "--benchmark", "nope", "--no-track")
    assert code == 2 and "unknown benchmark 'nope'" in out
    code, out = invoke(
        "eval",
        "--benchmark",
        str(run_dir / "bench.json"),
        "--method",
        "mcts",
        "--no-track",
        "--no-store",
    )
    # the profile serves round 2's PPM by default: without it, the error says how to make it
    assert code == 2 and f"{run_dir}/round-2/ppm does not exist" in out
    assert "python -m flows.main --last 2" in out


def test_benchmarks_lists_the_papers_nine_with_their_sizes():
    code, out = invoke("benchmarks")
    assert code == 0, out
    for name, rows, scorable in [
        ("math", 5000, 5000),
        ("math500", 500, 500),
        ("aime2024", 30, 30),
        ("amc23", 40, 40),
        ("gsm8k", 1319, 1319),
        ("olympiadbench", 675, 675),
        ("collegemath", 2818, 2818),
        ("gaokao2023en", 385, 383),
        ("omni_math", 4428, 4410),
    ]:
        assert f"│ {name} │ {rows} │ {scorable} │" in out


def test_eval_takes_a_shipped_benchmark_by_name(run_dir):
    code, out = invoke(
        "eval", "--benchmark", "aime2024", "--method", "greedy", "--max-problems", "2",
        "--threads", "1", "--no-track", "--no-store",
    )  # fmt: skip
    assert code == 0, out
    summary = json.loads((run_dir / "round-0" / "eval" / "aime2024" / "summary.json").read_text())
    assert (summary["benchmark"], summary["problems"], summary["unscorable"]) == ("aime2024", 2, 0)


def test_eval_reads_columns_of_ones_own_and_counts_rows_without_a_gold(run_dir, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("task,gold\nWhat is 2 plus 3?,5\nWhat is 9 plus 1?,\n")
    code, out = invoke("eval", "--benchmark", str(path), "--method", "greedy", "--no-track")
    assert code == 2 and "columns found, ['gold', 'task']" in out and "--answer-column" in out
    code, out = invoke(
        "eval", "--benchmark", str(path), "--question-column", "task", "--answer-column", "gold",
        "--method", "greedy", "--threads", "1", "--no-track",
    )  # fmt: skip
    assert code == 0, out
    assert "1 of 2 problems have no usable gold answer and count as wrong" in out
    summary = json.loads((run_dir / "round-0" / "eval" / "mine" / "summary.json").read_text())
    assert (summary["problems"], summary["unscorable"]) == (2, 1)
    con = duckdb.connect(str(StoreLayout.for_run(run_dir).catalog_path), read_only=True)
    rejects = con.sql("SELECT row, line, reason FROM rejects WHERE source = 'mine'").fetchall()
    con.close()
    assert rejects == [(1, 3, "missing answer: column 'gold'")]
