"""Evaluation with the real sandbox and grader: scripted policies give hand-computed accuracies."""

from __future__ import annotations

import json

import duckdb
import pytest
from matplotlib.image import imread

from rstar.config import SearchConfig
from rstar.evaluate.benchmarks import PAPER_BENCHMARKS, Benchmark, benchmark_names, load_benchmark
from rstar.evaluate.config import EvalConfig
from rstar.evaluate.pipeline import (
    eval_shard,
    load_records,
    report_metrics,
    write_outputs,
    write_records,
)
from rstar.evaluate.results import EvalProblem
from rstar.evaluate.runner import MissingPPMError, evaluate_problems
from rstar.format import ASSISTANT_TAG, OUTPUT_END, USER_TAG, parse_step
from rstar.grading import gold_answers, is_correct
from rstar.models import Completion, GenerationParams
from rstar.problems import problem_id
from rstar.store import StoreLayout
from tests.conftest import shipped_rows
from tests.scripted import ReplayBackend, ScriptedPPM

# Rows of each shipped benchmark without a usable gold answer (scored wrong, counted).
UNSCORABLE = {
    "gaokao2023en": {"missing answer": 2},
    "omni_math": {"missing answer": 9, "unusable answer": 9},
}


class OracleBackend:
    """A policy that knows the gold answers: one final code step, then the boxed gold answer."""

    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        out = []
        for prompt in prompts:
            question = prompt.split(f"{USER_TAG}:\n", 1)[1].split(f"\n{ASSISTANT_TAG}", 1)[0]
            gold = self.answers[question]
            if prompt.endswith(OUTPUT_END):
                text = _oracle_answer(gold) if gold is not None else "\n<answer>?<end_of_answer>"
            else:
                text = "<code>\n# Now print the final answer\nprint('done')\n<end_of_code>"
            out.append([Completion(text, text[-15:], False, 1)] * params.n)
        return out


def _oracle_answer(gold: str) -> str:
    return f"\n<answer>The answer is \\boxed{{{gold_answers(gold)[0]}}}.<end_of_answer>"


@pytest.mark.parametrize("name", PAPER_BENCHMARKS)
def test_an_oracle_scores_every_scorable_problem_of_each_benchmark(name, sandbox):
    bench = load_benchmark(name)
    assert len(bench.problems) == PAPER_BENCHMARKS[name].rows == len(shipped_rows(name))
    assert dict(bench.unscorable_reasons()) == UNSCORABLE.get(name, {})
    assert len({p.problem_id for p in bench.problems}) == len(bench.problems)
    # Every row through the grading the evaluation applies: the answer step parsed as the
    # search parses it, graded as grade_terminals grades it.
    wrong = [
        p.problem_id
        for p in bench.problems
        if p.answer is not None
        and not is_correct(parse_step(_oracle_answer(p.answer)).answer, p.answer)
    ]
    assert wrong == []
    # The whole pipeline (policy, sandbox, search, grading) on the first rows.
    head = bench.head(40)
    oracle = OracleBackend({p.question: p.answer for p in head.problems})
    config = EvalConfig(methods=("greedy",), scaling=())
    report = evaluate_problems(
        name, head.problems, oracle, sandbox, SearchConfig(), config, progress=False
    )
    [greedy] = report.results
    assert greedy.correct == head.scorable and len(greedy.results) == len(head.problems)
    assert report.unscorable == len(head.problems) - head.scorable
    assert report.scaling is None


# Problem P1 (gold 7): four candidate solutions, in order A, B, C, D.
# Problem P2 (gold 5, its question carries the tag [Q]): one solution E, correct.
SOLUTIONS = {"A": 5, "B": 7, "C": 5, "D": 7, "E": 5}


def _final(tag: str) -> str:
    return f"<code>\n# Now print the final answer [{tag}1]\nprint({SOLUTIONS[tag]})\n<end_of_code>"


def _answer(tag: str) -> str:
    return f"\n<answer>[{tag}2] The answer is \\boxed{{{SOLUTIONS[tag]}}}.<end_of_answer>"


SCRIPT = {"ROOT": [_final(t) for t in "ABCD"], "Q": [_final("E")]}
SCRIPT |= {f"{tag}1": [_answer(tag)] for tag in SOLUTIONS}


class FirstN(ReplayBackend):
    """The scripted candidates, the first ``n`` of them (greedy: the first one)."""

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        return [comps[: params.n] for comps in super().generate(prompts, params)]


# PPM: every first step 0 (so MCTS tries them in order); answers A .9, B .5, C -.5, D .95.
PPM = ScriptedPPM(
    {"A1": 0.0, "B1": 0.0, "C1": 0.0, "D1": 0.0, "E1": 0.0}
    | {"A2": 0.9, "B2": 0.5, "C2": -0.5, "D2": 0.95, "E2": 0.3}
)
PROBLEMS = (
    EvalProblem("p1", "Seven?", "7", level=1),
    EvalProblem("p2", "[Q] Five?", "5", level=2),
)


@pytest.fixture(scope="module")
def report(sandbox):
    config = EvalConfig(
        methods=("greedy", "mcts", "best_of_n", "majority"), trajectories=2, scaling=(1, 2, 4)
    )
    search = SearchConfig(candidates=4, temperature=1.0, error_threshold=1)
    return evaluate_problems(
        "scripted",
        PROBLEMS,
        FirstN(SCRIPT),
        sandbox,
        search,
        config,
        ppm=PPM,
        progress=False,
    )


def test_methods_choose_their_hand_computed_answers(report):
    by_label = {r.label: r for r in report.results}
    assert list(by_label) == ["greedy", "mcts@2", "best_of_n@2", "majority@2"]
    # greedy takes the first candidate: A (5, wrong) on P1, E on P2
    assert [r.prediction for r in by_label["greedy"].results] == ["5", "5"]
    # k=2: trajectories A (.9) and B (.5); the PPM picks A; the vote ties 5 vs 7 and keeps
    # the group of the best-ranked trajectory, A's
    for label in ("mcts@2", "best_of_n@2", "majority@2"):
        result = by_label[label]
        assert [r.prediction for r in result.results] == ["5", "5"]
        assert [r.correct for r in result.results] == [False, True]
        assert result.accuracy == 0.5 and result.by_level() == {1: (1, 0), 2: (1, 1)}
        assert result.pass_at_k == 1.0  # B, correct, was among the two trajectories of P1
    assert [r.score for r in by_label["mcts@2"].results] == [0.9, 0.3]
    assert [r.answers for r in by_label["best_of_n@2"].results] == [2, 1]
    assert by_label["greedy"].results[0].score == 0.9  # the PPM scored the greedy answer too
    assert by_label["greedy"].pass_at_k == 0.5


def test_scaling_curve_has_the_hand_computed_values(report, tmp_path):
    # k=4 adds C (5, -.5) and D (7, .95): the PPM picks D; the vote ties 2-2 and keeps D's group
    assert report.scaling.budgets == (1, 2, 4)
    assert report.scaling.accuracy == {
        "mcts": [0.5, 0.5, 1.0],
        "best_of_n": [0.5, 0.5, 1.0],
        "majority": [0.5, 0.5, 1.0],
    }
    # pass@k: P1 has a correct trajectory (B) from k=2 on
    assert report.scaling.pass_at_k == {m: [0.5, 1.0, 1.0] for m in report.scaling.accuracy}
    # one sampling run (the largest budget) served every sampled budget
    assert sorted(report.searches) == ["greedy", "mcts@1", "mcts@2", "mcts@4", "sample@4"]
    summary_path, png = write_outputs(report, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert imread(png).shape[:2] == (400, 600)
    summary = json.loads(summary_path.read_text())
    assert summary["scaling"]["accuracy"]["mcts"] == [0.5, 0.5, 1.0]
    assert summary["methods"]["mcts@2"]["by_level"]["1"] == {
        "problems": 1,
        "correct": 0,
        "accuracy": 0.0,
    }


def test_metrics_use_stable_names(report):
    metrics = report_metrics(report)
    assert metrics[("eval/scripted/mcts/accuracy", None)] == 0.5
    assert metrics[("eval/scripted/greedy/level_2/accuracy", None)] == 1.0
    assert metrics[("eval/scripted/best_of_n/pass_at_k", None)] == 1.0
    assert metrics[("eval/scripted/mcts/scaling_pass_at_k", 1)] == 0.5
    assert [metrics[("eval/scripted/majority/scaling_accuracy", k)] for k in (1, 2, 4)] == [
        0.5,
        0.5,
        1.0,
    ]


def test_results_and_trees_go_to_the_store(report, tmp_path):
    bench = Benchmark("scripted", PROBLEMS)
    out = tmp_path / "eval"
    with pytest.raises(FileNotFoundError, match=r"eval/records: no evaluation records here"):
        load_records(tmp_path, out / "records")
    # The files first (any node that sees the run directory can write them), then the catalog.
    records = write_records(tmp_path, bench, report, round=3, out_dir=out)
    assert sorted(p.name for p in records.iterdir()) == ["problems.parquet", "results.parquet"]
    assert not StoreLayout(tmp_path).catalog_path.exists()  # files only: no catalog opened
    load_records(tmp_path, records)
    # A retry writes and loads again: it replaces, never duplicates.
    load_records(tmp_path, write_records(tmp_path, bench, report, round=3, out_dir=out))
    con = duckdb.connect(str(StoreLayout(tmp_path).catalog_path), read_only=True)
    rows = con.sql(
        "SELECT method, problem_id, prediction, correct, score FROM eval_results "
        "WHERE round = 3 AND method = 'mcts@2' ORDER BY problem_id"
    ).fetchall()
    assert rows == [("mcts@2", "p1", "5", False, 0.9), ("mcts@2", "p2", "5", True, 0.3)]
    summary = dict(
        con.sql("SELECT method, accuracy FROM eval_summary WHERE benchmark = 'scripted'").fetchall()
    )
    assert summary == {"greedy": 0.5, "mcts@2": 0.5, "best_of_n@2": 0.5, "majority@2": 0.5}
    levels = con.sql("SELECT problem_id, level, split FROM problems ORDER BY 1").fetchall()
    assert levels == [("p1", 1, "test"), ("p2", 2, "test")]
    trees = con.sql(
        "SELECT shard, count(DISTINCT problem_id), count(*) FILTER (WHERE terminal AND correct) "
        "FROM nodes WHERE round = 3 AND stage = 'eval' GROUP BY shard"
    ).fetchall()
    con.close()
    expected = report.searches["mcts@4"]
    shard = eval_shard("scripted", "mcts@4")
    correct = sum(n.correct is True for r in expected for n in r.tree if n.terminal)
    assert (shard, 2, correct) in trees and correct == 3  # B and D on P1, E on P2
    assert len(trees) == len(report.searches)


def test_methods_that_rank_with_the_ppm_need_one(sandbox):
    with pytest.raises(MissingPPMError, match=r"\['best_of_n', 'mcts'\]"):
        evaluate_problems(
            "scripted",
            PROBLEMS,
            FirstN(SCRIPT),
            sandbox,
            SearchConfig(),
            EvalConfig(methods=("greedy", "best_of_n"), scaling=(1, 2), scaling_methods=("mcts",)),
        )


def test_benchmarks_load_by_name_path_or_toy(tmp_path):
    assert benchmark_names() == ["toy", "toy-val", *PAPER_BENCHMARKS]
    assert list(PAPER_BENCHMARKS) == [
        "math", "math500", "aime2024", "amc23", "gsm8k",
        "olympiadbench", "collegemath", "gaokao2023en", "omni_math",
    ]  # fmt: skip
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"question": "1+1?", "answer": "2", "level": "Level 3"}\n{"question": "no answer"}\n'
    )
    mine = load_benchmark(path)
    assert mine.name == "mine" and mine.problems == (
        EvalProblem(problem_id("1+1?"), "1+1?", "2", 3),
        EvalProblem(problem_id("no answer"), "no answer", None, None),
    )
    assert mine.scorable == 1 and dict(mine.unscorable_reasons()) == {"missing answer": 1}
    with pytest.raises(ValueError, match=r"unknown benchmark 'math5000'.*math500"):
        load_benchmark("math5000")
    toy = load_benchmark("toy", toy_per_level=3)
    assert [p.level for p in toy.problems] == [lv for lv in range(1, 7) for _ in range(3)]
    assert all(p.problem_id.startswith("toy-") for p in toy.problems)
    assert toy.head(4).problems == toy.problems[:4]
    val = load_benchmark("toy-val", toy_per_level=3)
    assert val.name == "toy-val" and len(val.problems) == 18
    # registered in a store as what they are: validation problems
    assert set(val.problem_table()["split"].to_pylist()) == {"val"}
    assert set(toy.problem_table()["split"].to_pylist()) == {"test"}
    assert not {p.problem_id for p in val.problems} & {p.problem_id for p in toy.problems}
