"""Curation from hand-built trees: difficulty, coverage, SFT rows and PPM pairs.

Every expected row below is worked out by hand from the trees in this file.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from rstar.cli import app
from rstar.config import load_profile
from rstar.curate import (
    FINAL,
    PAIR_TRAINING_COLUMNS,
    SFT_TRAINING_COLUMNS,
    STEP,
    CurationConfig,
    coverage,
    data_funnel,
    difficulty,
    export_round,
    hard_problems,
    select_pairs,
    select_sft,
    to_dataset,
)
from rstar.evolve.stages import NoTrainingDataError, build_pairs, build_sft
from rstar.format import (
    Trajectory,
    build_prompt,
    parse_step,
    parse_trajectory,
    render_response,
    render_trajectory,
)
from rstar.store import PROBLEM_SCHEMA, Catalog, RunLayout, StoreLayout, write_shard
from tests.store_trees import tree_table

# The ranking rules below are checked with every failure as a negative (``ANY``); what the
# default (negatives lead to a wrong final answer) changes is checked on its own.
ANY = CurationConfig(negatives="any_failure")
Q1, Q2, Q3, Q4 = "What is 1 + 1?", "What is 2 + 2?", "What is 3 + 3?", "What is 4 + 4?"

# Step texts as the policy writes them (first step opens <code>).
A = "<code>\n# Step 1: add the numbers\nx = 1 + 1\n<end_of_step>"
A_TYPO = "<code>\n# Step 1: add the numbers\nx = 1 + 2\n<end_of_step>"  # 1 edit from A
B = "<code>\n# Step 1: guess that their product is the answer\nx = 1 * 1\n<end_of_step>"
C = "<code>\n# Step 1: write the sum as a product\nx = 2 * 1\n<end_of_step>"
E = "<code>\n# Step 1: count up from one\nx = sum([1, 1])\n<end_of_step>"
F = "<code>\n# Step 1: not explored yet\ny = 0\n<end_of_step>"
FINAL_CODE = "\n\n# Now print the final answer\nprint(x)\n<end_of_code>"
BAD_STEP = "\n\n# Step 2: divide by zero by mistake\nz = x / 0\n<end_of_step>"


def answer(value: str) -> str:
    return f"\n<answer>The answer is \\boxed{{{value}}}.<end_of_answer>"


# (node_id, parent_id, kind, text, q, visits, terminal_reason, correct, exec_ok, output)
P1 = [
    (1, 0, "code", A, 0.5, 3, None, None, True, ""),
    (3, 1, "final_code", FINAL_CODE, 0.75, 2, None, None, True, "2"),
    (5, 3, "answer", answer("2"), 1.0, 1, "answer", True, True, ""),
    (6, 3, "answer", answer("3"), -1.0, 1, "answer", False, True, ""),
    (4, 1, "code", BAD_STEP, -1.0, 1, "code_error", None, False, "ZeroDivisionError"),
    (2, 0, "code", B, -0.5, 1, None, None, True, ""),
    (7, 2, "final_code", FINAL_CODE, -0.5, 1, None, None, True, "1"),
    (8, 7, "answer", answer("1"), -1.0, 1, "answer", False, True, ""),
    (9, 0, "code", C, -0.25, 1, None, None, True, ""),
    (10, 9, "final_code", FINAL_CODE, 0.25, 1, None, None, True, "2"),
    (11, 10, "answer", answer("2"), 1.0, 1, "answer", True, True, ""),
    (12, 0, "code", A_TYPO, -1.0, 1, "code_error", None, False, "NameError"),
    (13, 0, "code", F, 0.0, 0, None, None, True, ""),
    (14, 0, "code", E, -0.5, 1, None, None, True, ""),
    (15, 14, "final_code", FINAL_CODE, 0.5, 1, None, None, True, "2"),
    (16, 15, "answer", answer("2"), 1.0, 1, "answer", True, True, ""),
]
# Trajectories of P1 (avg / min Q over the steps):
#   5: 1-3-5     0.75 / 0.5   correct      6: 1-3-6    1/12 / -1  wrong
#   4: 1-4      -0.25 / -1    code error   8: 2-7-8    -2/3 / -1  wrong
#  11: 9-10-11   1/3 / -0.25  correct     12: 12         -1 / -1  code error
#  16: 14-15-16  1/3 / -0.5   correct     (13 never visited: no trajectory)

P2 = [  # every trajectory correct; the best one passes through a failed (retried) step
    (1, 0, "code", A, 0.5, 1, None, None, True, ""),
    (2, 1, "code", BAD_STEP, 0.5, 1, None, None, False, "ZeroDivisionError"),
    (3, 2, "final_code", FINAL_CODE, 1.0, 1, None, None, True, "4"),
    (4, 3, "answer", answer("4"), 1.0, 1, "answer", True, True, ""),
    (5, 0, "code", B, 0.25, 1, None, None, True, ""),
    (6, 5, "final_code", FINAL_CODE, 0.75, 1, None, None, True, "4"),
    (7, 6, "answer", answer("4"), 1.0, 1, "answer", True, True, ""),
    (8, 0, "code", C, 0.5, 1, None, None, True, ""),
    (9, 8, "final_code", FINAL_CODE, 0.5, 1, None, None, True, "4"),
    (10, 9, "answer", answer("4"), 1.0, 1, "answer", True, True, ""),
    (11, 0, "code", E, 0.75, 1, None, None, True, ""),
    (12, 11, "final_code", FINAL_CODE, 0.25, 1, None, None, True, "4"),
    (13, 12, "answer", answer("4"), 1.0, 1, "answer", True, True, ""),
]
# P2: 4 has avg 0.75 but a code error; 7, 10, 13 all average 2/3; min Q 0.25, 0.5, 0.25.

P3_SEARCH = [(1, 0, "code", A, -1.0, 1, "max_depth", None, True, "")]
P3_EXTRA = [
    (1, 0, "code", C, 0.5, 1, None, None, True, ""),
    (2, 1, "final_code", FINAL_CODE, 0.5, 1, None, None, True, "6"),
    (3, 2, "answer", answer("6"), 1.0, 1, "answer", True, True, ""),
]
P4 = [(1, 0, "code", A, 0.0, 0, None, None, True, "")]  # searched, no trajectory at all


def completion(*steps: str, output: str) -> str:
    """Steps joined, with the output block after the final-code step (written out)."""
    text = ""
    for step in steps:
        text += step
        if step == FINAL_CODE:
            text += f"\n<output>{output}<end_of_output>"
    return text


@pytest.fixture
def catalog(tmp_path):
    """The hand-built trees of round 1 in the store of run directory ``tmp_path``."""
    store = StoreLayout.for_run(tmp_path)
    search = pa.concat_tables(
        [tree_table("p1", P1), tree_table("p2", P2), tree_table("p3", P3_SEARCH)]
    )
    write_shard(store, search, round=1, stage="search", shard=0)
    write_shard(store, tree_table("p4", P4), round=1, stage="search", shard=1)
    with Catalog(store) as cat:
        cat.add_problems(
            pa.table(
                {
                    "problem_id": ["p1", "p2", "p3", "p4"],
                    "question": [Q1, Q2, Q3, Q4],
                    "answer": ["2", "4", "6", "8"],
                    "source": ["hand"] * 4,
                    "level": pa.nulls(4, pa.int32()),
                    "split": ["train"] * 4,
                }
            )
        )
        yield cat


def add_extra_rollouts(catalog: Catalog) -> None:
    write_shard(
        catalog.layout, tree_table("p3", P3_EXTRA), round=1, stage="extra_rollouts", shard=0
    )


def test_difficulty_and_hard_list_after_search(catalog):
    rows = difficulty(catalog, 1).to_pylist()
    # p1: 7 trajectories, 2 of them code errors (4, 12): 5 answered, 3 correct
    keys = ("problem_id", "num_trajectories", "num_answered", "num_correct", "difficulty")
    assert [tuple(row[k] for k in keys) for row in rows] == [
        ("p1", 7, 5, 3, "medium"),
        ("p2", 4, 4, 4, "easy"),
        ("p3", 1, 0, 0, "hard"),  # its one trajectory hit the depth limit
        ("p4", 0, 0, 0, "hard"),
    ]
    hard = hard_problems(catalog, 1)
    assert hard["problem_id"].to_pylist() == ["p3", "p4"]
    assert hard["question"].to_pylist() == [Q3, Q4] and hard["answer"].to_pylist() == ["6", "8"]
    assert coverage(catalog) == {1: 0.5}


def test_extra_rollouts_count_towards_the_round(catalog):
    add_extra_rollouts(catalog)
    assert hard_problems(catalog, 1)["problem_id"].to_pylist() == ["p4"]
    assert coverage(catalog) == {1: 0.75}
    p3 = difficulty(catalog, 1).filter(pa.compute.equal(difficulty(catalog, 1)["problem_id"], "p3"))
    # the search's depth-limit trajectory is not an answer: the one answer is correct
    assert p3.to_pylist()[0]["difficulty"] == "easy"


def test_sft_rows(catalog):
    add_extra_rollouts(catalog)
    rows = select_sft(catalog, 1)
    picked = rows.select(["problem_id", "stage", "leaf_id", "avg_q", "min_q"]).to_pylist()
    assert picked == [
        # p1: 5 (avg 0.75); 11 and 16 tie at 1/3, 11 has the higher min Q.
        {"problem_id": "p1", "stage": "search", "leaf_id": 5, "avg_q": 0.75, "min_q": 0.5},
        {"problem_id": "p1", "stage": "search", "leaf_id": 11, "avg_q": 1 / 3, "min_q": -0.25},
        # p2: 4 has a code error; 10 (min 0.5), then 7 and 13 tie on both, lower leaf id.
        {"problem_id": "p2", "stage": "search", "leaf_id": 10, "avg_q": 2 / 3, "min_q": 0.5},
        {"problem_id": "p2", "stage": "search", "leaf_id": 7, "avg_q": 2 / 3, "min_q": 0.25},
        # p3: its only correct trajectory came from the extra rollouts.
        {"problem_id": "p3", "stage": "extra_rollouts", "leaf_id": 3, "avg_q": 2 / 3, "min_q": 0.5},
    ]
    first = rows.to_pylist()[0]
    assert first["question"] == Q1
    assert first["prompt"] == (
        "<|user|>:\nWhat is 1 + 1?\n"
        "<|assistant|>: Let's think step by step and solve the problem with code."
    )
    assert first["completion"] == (
        "<code>\n# Step 1: add the numbers\nx = 1 + 1\n<end_of_step>"
        "\n\n# Now print the final answer\nprint(x)\n<end_of_code>"
        "\n<output>2<end_of_output>"
        "\n<answer>The answer is \\boxed{2}.<end_of_answer>"
    )
    steps = tuple(parse_step(text) for text in (A, FINAL_CODE, answer("2")))
    assert first["completion"] == render_response(Trajectory(Q1, steps, output="2"))
    for row in rows.to_pylist():  # every row is a well-formed trajectory of the format
        full = row["prompt"] + row["completion"]
        assert render_trajectory(parse_trajectory(full)) == full


def test_sft_per_problem_is_configurable(catalog):
    rows = select_sft(catalog, 1, CurationConfig(sft_per_problem=1))
    assert rows.select(["problem_id", "leaf_id"]).to_pylist() == [
        {"problem_id": "p1", "leaf_id": 5},
        {"problem_id": "p2", "leaf_id": 10},
    ]


def test_sft_rows_of_all_rounds_keep_the_best_per_problem(catalog):
    # round 2 finds p1's trajectory A / final code / 2 again, now with every Q at 1
    again = [
        (1, 0, "code", A, 1.0, 1, None, None, True, ""),
        (2, 1, "final_code", FINAL_CODE, 1.0, 1, None, None, True, "2"),
        (3, 2, "answer", answer("2"), 1.0, 1, "answer", True, True, ""),
    ]
    write_shard(catalog.layout, tree_table("p1", again), round=2, stage="search", shard=0)
    union = CurationConfig(sft_rounds="all")
    with pytest.raises(FileNotFoundError, match=r"round=1/sft.jsonl is missing.*--round 1"):
        select_sft(catalog, 2, union)
    export_round(catalog, 1)  # round 1's rows: p1 5 (avg 0.75) and 11; p2 10 and 7
    assert select_sft(catalog, 2)["leaf_id"].to_pylist() == [3]  # this round only
    rows = select_sft(catalog, 2, union)
    got = rows.select(["problem_id", "round", "leaf_id", "avg_q"]).to_pylist()
    # p1: round 2's copy of round 1's leaf 5 (the same completion) wins on average Q and
    # stands for both; then 11 from round 1. p2 was not searched again: its round-1 rows.
    assert [tuple(r.values()) for r in got] == [
        ("p1", 2, 3, 1.0),
        ("p1", 1, 11, 1 / 3),
        ("p2", 1, 10, 2 / 3),
        ("p2", 1, 7, 2 / 3),
    ]
    assert rows["completion"][0].as_py() == completion(A, FINAL_CODE, answer("2"), output="2")
    assert rows.schema == select_sft(catalog, 1).schema


def test_step_pairs(catalog):
    pairs = select_pairs(catalog, 1, ANY.model_copy(update={"final_step_pairs": False}))
    prompt = build_prompt(Q1)
    # Root group of p1: positives (lead to a correct answer) 1 (Q 0.5), 9 (-0.25), 14
    # (-0.5, third: left out); negatives 12 (-1, code error), 2 (-0.5). Of the 4 pairs,
    # 1 vs 12 is 1 edit apart (< 20) and 9 vs 2 has margin 0.25 (< 0.5): both dropped.
    # Group under 1: 3 (leads to answer 5, correct) vs 4 (code error). Answer siblings
    # 5 / 6 are left to the relaxed rule. p2 has no wrong step, p3/p4 no pair.
    expected = [
        (prompt, A, B, 2, 2, 1, 2, 0.5, -0.5),
        (prompt, C, A_TYPO, 2, 2, 9, 12, -0.25, -1.0),
        (prompt + A, FINAL_CODE, BAD_STEP, 1, 1, 3, 4, 0.75, -1.0),
    ]
    got = pairs.select(
        [
            "prompt",
            "chosen",
            "rejected",
            "pos_count",
            "neg_count",
            "chosen_node",
            "rejected_node",
            "chosen_q",
            "rejected_q",
        ]
    ).to_pylist()
    assert [tuple(row.values()) for row in got] == expected
    assert set(pairs["kind"].to_pylist()) == {STEP}
    assert set(pairs["problem_id"].to_pylist()) == {"p1"}


def test_filters_are_configurable(catalog):
    config = ANY.model_copy(
        update={"final_step_pairs": False, "min_q_margin": 0, "min_edit_distance": 0}
    )
    pairs = select_pairs(catalog, 1, config)
    got = pairs.select(["chosen_node", "rejected_node"]).to_pylist()
    assert [(r["chosen_node"], r["rejected_node"]) for r in got] == [
        (1, 12),
        (1, 2),
        (9, 12),
        (9, 2),
        (3, 4),
    ]
    top1 = select_pairs(catalog, 1, config.model_copy(update={"pairs_top_k": 1}))
    got = top1.select(["chosen_node", "rejected_node", "pos_count", "neg_count"]).to_pylist()
    assert [tuple(r.values()) for r in got] == [(1, 12, 1, 1), (3, 4, 1, 1)]


def test_final_step_pairs(catalog):
    pairs = select_pairs(catalog, 1, ANY)
    final = pairs.filter(pa.compute.equal(pairs["kind"], FINAL))
    # p1 positives: 5 (avg 0.75), 11 (1/3, beats 16 on min Q); negatives, lowest average:
    # 12 (-1), 8 (-2/3). All four margins are >= 0.5. p2 has no incorrect trajectory.
    got = final.select(["chosen_node", "rejected_node", "chosen_q", "rejected_q"]).to_pylist()
    assert [tuple(r.values()) for r in got] == [
        (5, 12, 0.75, -1.0),
        (5, 8, 0.75, -2 / 3),
        (11, 12, 1 / 3, -1.0),
        (11, 8, 1 / 3, -2 / 3),
    ]
    first = final.to_pylist()[0]
    assert first["prompt"] == build_prompt(Q1)
    assert first["chosen"] == completion(A, FINAL_CODE, answer("2"), output="2")
    assert first["rejected"] == A_TYPO
    assert final.to_pylist()[1]["rejected"] == completion(B, FINAL_CODE, answer("1"), output="1")
    assert (first["pos_count"], first["neg_count"]) == (2, 2)
    # Step pairs come first.
    assert pairs["kind"].to_pylist() == [STEP] * 3 + [FINAL] * 4


def test_final_pairs_pool_the_stages(catalog):
    add_extra_rollouts(catalog)
    pairs = select_pairs(catalog, 1, ANY)
    p3 = pairs.filter(pa.compute.equal(pairs["problem_id"], "p3")).to_pylist()
    # p3: correct in the extra rollouts (avg 2/3), wrong in the search (avg -1).
    assert [(r["kind"], r["chosen_stage"], r["chosen_node"]) for r in p3] == [
        (FINAL, "extra_rollouts", 3)
    ]
    assert (p3[0]["rejected_stage"], p3[0]["rejected_node"]) == ("search", 1)
    assert p3[0]["chosen"] == completion(C, FINAL_CODE, answer("6"), output="6")


def test_final_margin_filter(catalog):
    pairs = select_pairs(catalog, 1, ANY.model_copy(update={"min_q_margin": 1.2}))
    final = pairs.filter(pa.compute.equal(pairs["kind"], FINAL))
    got = final.select(["chosen_node", "rejected_node"]).to_pylist()
    # margins: 5-12 1.75, 5-8 17/12, 11-12 4/3, 11-8 1.0 (dropped)
    assert [tuple(r.values()) for r in got] == [(5, 12), (5, 8), (11, 12)]


def test_negatives_lead_to_a_wrong_answer_by_default(catalog):
    add_extra_rollouts(catalog)
    pairs = select_pairs(catalog, 1)
    got = pairs.select(["kind", "chosen_node", "rejected_node", "pos_count", "neg_count"])
    # Step pairs, p1's root group: 12 only crashed (no answer below it) and is no negative;
    # 2 leads to the wrong answer 8. Positives 1 (Q 0.5) and 9 (-0.25): 1 vs 2 (margin 1.0)
    # is kept, 9 vs 2 (0.25) dropped. Under 1, step 4 only crashed: no pair.
    # Final pairs, p1: negatives are the wrong answers 8 (avg -2/3) and 6 (1/12), lowest
    # first; 11 vs 6 has margin 1/4 < 0.5, and 5 vs 6 differ in one character (< 20).
    # p3's search trajectory hit the depth limit: it is no negative, so p3 has no pair.
    assert [tuple(r.values()) for r in got.to_pylist()] == [
        (STEP, 1, 2, 2, 1),
        (FINAL, 5, 8, 2, 2),
        (FINAL, 11, 8, 2, 2),
    ]
    kept = select_pairs(catalog, 1, CurationConfig(min_edit_distance=0))
    assert kept.to_pylist()[2]["rejected"] == completion(A, FINAL_CODE, answer("3"), output="2")
    assert len(kept) == 4


def test_missing_problem_is_a_clear_error(tmp_path):
    write_shard(tmp_path, tree_table("p2", P2), round=1, stage="search", shard=0)
    with Catalog(tmp_path) as cat, pytest.raises(LookupError, match=r"p2.*add_problems"):
        select_sft(cat, 1)


def test_export_round_writes_jsonl_and_registers(catalog):
    add_extra_rollouts(catalog)
    exported = export_round(catalog, 1, ANY)
    assert (exported.sft_rows, exported.pair_rows) == (5, 8)
    sft = [json.loads(line) for line in exported.sft_path.read_text().splitlines()]
    assert [row["leaf_id"] for row in sft] == [5, 11, 10, 7, 3]
    assert sft[0]["completion"] == completion(A, FINAL_CODE, answer("2"), output="2")
    registered = catalog.sql("SELECT name, kind, num_rows FROM datasets ORDER BY name")
    assert registered.to_pylist() == [
        {"name": "round1/ppm_pairs", "kind": "ppm", "num_rows": 8},
        {"name": "round1/sft", "kind": "sft", "num_rows": 5},
    ]
    dataset = to_dataset(select_sft(catalog, 1), SFT_TRAINING_COLUMNS)
    assert dataset.column_names == ["prompt", "completion"]
    assert dataset[0]["completion"] == sft[0]["completion"]
    pairs = to_dataset(select_pairs(catalog, 1, ANY), PAIR_TRAINING_COLUMNS)
    assert pairs.column_names == ["prompt", "chosen", "rejected"] and len(pairs) == 8


def test_a_round_without_trees_gives_empty_tables(tmp_path):
    with Catalog(tmp_path) as cat:  # no shard at all: the views are empty placeholders
        assert select_sft(cat, 1).num_rows == 0
        assert select_pairs(cat, 1).num_rows == 0
        assert difficulty(cat, 1).num_rows == 0 and coverage(cat) == {}


def test_the_export_command_curates_a_round_with_the_profiles_rules(catalog, tmp_path):
    add_extra_rollouts(catalog)
    catalog.close()  # the command opens the catalog itself
    layout = StoreLayout.for_run(tmp_path)

    def export(*options: str) -> tuple[list[dict], list[dict]]:
        command = ["curate", "export", "--round", "1", "--run-dir", str(tmp_path), *options]
        run = CliRunner().invoke(app, command)
        assert run.exit_code == 0, run.output
        buckets = [line.split()[1:5] for line in run.output.splitlines() if "problems" in line]
        # p2 and p3 (its one answer, from the extra rollouts, correct) easy; p1 medium;
        # p4 (no trajectory) hard
        assert buckets == [
            ["easy", "problems", "│", "2"],
            ["medium", "problems", "│", "1"],
            ["hard", "problems", "│", "1"],
        ]
        return tuple(  # type: ignore[return-value]
            [json.loads(line) for line in layout.dataset_path(1, name).read_text().splitlines()]
            for name in ("sft", "ppm_pairs")
        )

    # the paper's 20-character filter, given on the command line: the hand-checked rows
    sft, pairs = export("--min-edit-distance", "20", "--negatives", "any_failure")
    assert [row["leaf_id"] for row in sft] == [5, 11, 10, 7, 3] and len(pairs) == 8
    # the tiny profile keeps near-identical steps: one more pair, A against its 1-edit typo
    sft, with_typo = export("--negatives", "any_failure")
    assert len(sft) == 5 and len(with_typo) == 9
    (extra,) = [p for p in with_typo if p not in pairs]
    assert (extra["chosen"], extra["rejected"]) == (A, A_TYPO)


def test_the_export_command_refuses_a_round_without_trees(catalog, tmp_path):
    catalog.close()
    run = CliRunner().invoke(app, ["curate", "export", "--round", "2", "--run-dir", str(tmp_path)])
    assert run.exit_code == 2
    assert "round 2 has no search trees" in run.output
    assert not StoreLayout.for_run(tmp_path).dataset_path(2, "sft").exists()


def test_the_data_funnel_counts_problems_at_each_condition(catalog):
    # p1: wrong answers beside correct ones; p2: all correct; p3: its one trajectory hit the
    # depth limit; p4: no trajectory
    counts = [4, 3, 2, 2]
    assert list(data_funnel(catalog, 1, "wrong_answer").values()) == [*counts, 1]
    add_extra_rollouts(catalog)  # p3 gains a correct answer beside its depth-limit one
    assert list(data_funnel(catalog, 1, "wrong_answer").values()) == [4, 3, 3, 3, 1]
    assert list(data_funnel(catalog, 1, "any_failure").values()) == [4, 3, 3, 3, 2]


def test_a_round_without_pairs_stops_before_training_with_the_counts(tmp_path):
    prof = load_profile("tiny", str(tmp_path))
    store = RunLayout(prof.run_dir).store
    write_shard(store, tree_table("p2", P2), round=1, stage="search", shard=0)
    with Catalog(store) as cat:
        cat.add_problems(
            pa.Table.from_pylist(
                [{"problem_id": "p2", "question": Q2, "answer": "4", "split": "train"}],
                schema=PROBLEM_SCHEMA,
            )
        )
    assert build_sft(prof, 1)["rows"] == 2  # p2's two best correct trajectories ...
    message = (  # ... but with every trajectory correct there is no negative
        r"round 1 produced no ppm_pairs rows, so nothing is trained or registered\. .*"
        r"searched 1, with a trajectory 1, with an answer 1, with a correct answer 1, "
        r"with a correct and a negative 0 \(curate.negatives: wrong_answer\)"
    )
    with pytest.raises(NoTrainingDataError, match=message):
        build_pairs(prof, 1)
    assert not store.dataset_path(1, "ppm_pairs").exists()


def test_reward_rows_of_the_pointwise_baselines(catalog):
    """The Q-value PRM regresses every visited step on its Q (node 13, never visited, has
    no row); the outcome RM every answered trajectory on +1 / -1 (crashes and depth limits
    have no row)."""
    from rstar.curate.reward_rows import OUTCOME, Q_VALUE, reward_rows

    steps = reward_rows(catalog, 1, Q_VALUE, ("search",)).to_pylist()
    p1 = [r for r in steps if r["problem_id"] == "p1"]
    assert [r["target"] for r in p1] == [
        0.5, -0.5, 0.75, -1.0, 1.0, -1.0, -0.5, -1.0, -0.25, 0.25, 1.0, -1.0, -0.5, 0.5, 1.0
    ]  # nodes 1-12, 14-16 in id order  # fmt: skip
    assert p1[0]["text"] == build_prompt(Q1) + A
    assert p1[2]["text"] == build_prompt(Q1) + completion(A, FINAL_CODE, output="2")
    assert p1[3]["text"] == build_prompt(Q1) + A + BAD_STEP
    assert len(steps) == 15 + 13 + 1  # p1, p2 (all 13 nodes visited), p3's depth-limited step

    outcomes = reward_rows(catalog, 1, OUTCOME, ("search",)).to_pylist()
    assert [(r["problem_id"], r["target"]) for r in outcomes] == [
        ("p1", 1.0), ("p1", -1.0), ("p1", -1.0), ("p1", 1.0), ("p1", 1.0),  # leaves 5 6 8 11 16
        ("p2", 1.0), ("p2", 1.0), ("p2", 1.0), ("p2", 1.0),  # leaves 4 7 10 13
    ]  # fmt: skip
    assert outcomes[1]["text"] == build_prompt(Q1) + completion(
        A, FINAL_CODE, answer("3"), output="2"
    )


def test_q_value_targets_are_clipped_to_the_range_of_the_score(catalog):
    steps = [(1, 0, "code", A, 1.5, 2, None, None, True, "")]
    steps += [(2, 1, "code", B, -1.25, 1, "answer", False, True, "")]
    write_shard(catalog.layout, tree_table("p1", steps), round=2, stage="search", shard=0)
    from rstar.curate.reward_rows import Q_VALUE, reward_rows

    rows = reward_rows(catalog, 2, Q_VALUE, ("search",))
    assert rows["target"].to_pylist() == [1.0, -1.0]
