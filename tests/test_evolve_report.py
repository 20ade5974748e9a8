"""Round metrics from hand-built trees, the per-round table and the summary plot."""

from __future__ import annotations

import pyarrow as pa
import pytest
from rich.console import Console

from rstar.evolve.report import rounds_table, search_metrics, summary_plot
from rstar.store import Catalog, write_shard
from rstar.store.schema import PROBLEM_SCHEMA
from tests.store_trees import tree_table
from tests.test_curate import P1, P2, P3_EXTRA, P3_SEARCH, P4


@pytest.fixture
def catalog(tmp_path):
    search = pa.concat_tables([tree_table("p1", P1), tree_table("p2", P2)])
    write_shard(tmp_path, search, round=1, stage="search", shard=0)
    write_shard(
        tmp_path,
        pa.concat_tables([tree_table("p3", P3_SEARCH), tree_table("p4", P4)]),
        round=1,
        stage="search",
        shard=1,
    )
    write_shard(tmp_path, tree_table("p3", P3_EXTRA), round=1, stage="extra_rollouts", shard=0)
    problems = [
        {
            "problem_id": pid,
            "question": pid,
            "answer": "2",
            "source": "t",
            "level": lv,
            "split": "train",
        }
        for pid, lv in (("p1", 1), ("p2", 1), ("p3", 2), ("p4", 2))
    ]
    with Catalog(tmp_path) as cat:
        cat.add_problems(pa.Table.from_pylist(problems, schema=PROBLEM_SCHEMA))
        yield cat


def test_search_metrics_count_every_stage_of_the_round(catalog):
    # p1: 7 trajectories, 3 of 5 answered correct (medium); p2: 4 of 4 (easy); p3: the
    # search's one failed trajectory plus the extra search's correct one, 1 of 1 answered
    # (easy); p4: no trajectory (hard)
    assert search_metrics(catalog, 1) == {
        "problems": 4,
        "coverage": 0.75,
        "trajectories": 13,
        "correct_trajectories": 8,
        "difficulty/easy": 0.5,
        "difficulty/medium": 0.25,
        "difficulty/hard": 0.25,
        "coverage/level_1": 1.0,
        "coverage/level_2": 0.5,
    }
    with pytest.raises(ValueError, match="round 2 has no searched problems"):
        search_metrics(catalog, 2)


ROUND_1 = {
    "coverage": 0.75,
    "difficulty/easy": 0.25,
    "difficulty/medium": 0.5,
    "difficulty/hard": 0.25,
    "coverage/level_1": 1.0,
    "coverage/level_2": 0.5,
    "sft_rows": 7,
    "pairs": 12,
    "ppm/pair_accuracy": 0.625,
    "eval/toy/greedy/accuracy": 0.5,
    "eval/toy/greedy/level_1/accuracy": 1.0,
    "eval/toy/greedy/level_2/accuracy": 0.0,
    "eval/toy/mcts/accuracy": 0.25,
    "eval/toy/mcts/level_1/accuracy": 0.5,
    "eval/toy/mcts/level_2/accuracy": 0.0,
}
BASE = {
    "eval/toy/greedy/accuracy": 0.4,
    "eval/toy/greedy/level_1/accuracy": 0.8,
    "eval/toy/greedy/level_2/accuracy": 0.0,
}


def test_the_table_has_the_base_line_and_one_row_per_round():
    console = Console(record=True, width=200)
    # another budgeted method (sorted before mcts) does not take the MCTS + PPM column
    majority = {"eval/toy/majority/accuracy": 0.9, "eval/toy/majority/level_1/accuracy": 0.9}
    console.print(rounds_table({0: BASE, 1: ROUND_1 | majority}))
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in console.export_text().splitlines()
        if line.startswith("│")
    ]
    assert rows == [
        ["0 (base)", "-", "-", "80 0", "40", "- -", "-", "-", "-", "-"],
        ["1", "75", "25/50/25", "100 0", "50", "50 0", "25", "7", "12", "62"],
    ]


def test_summary_plot_is_a_png(tmp_path):
    path = summary_plot(ROUND_1, 1, tmp_path / "plots" / "summary.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
