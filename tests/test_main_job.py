"""The main job at the quick size, from nothing: bootstrap, four rounds, the table.

What CI's end-to-end run is; slow (a few minutes), so it runs with RSTAR_SLOW=1 / in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from rstar.config import load_profile
from rstar.store import Catalog, RunLayout, StoreLayout, finished_rounds
from rstar.tracking import activate, round_alias

REPO = Path(__file__).resolve().parents[1]

ROUND_METRICS = {
    "coverage",
    "difficulty/easy",
    "difficulty/medium",
    "difficulty/hard",
    "trajectories",
    "sft_rows",
    "pairs",
    "sft/final_loss",
    "ppm/heldout_pair_accuracy",  # the fixed pairs; a round's own held-out may be empty
    "eval/toy/greedy/accuracy",
    "eval/toy/mcts/accuracy",
    "eval/toy/majority/accuracy",
    "eval/toy-val/greedy/accuracy",
    "champion",
}


@pytest.mark.slow
def test_quick_main_job_runs_four_rounds_and_prints_the_table(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RSTAR_"))}
    done = subprocess.run(
        [sys.executable, "-m", "flows.main", "--quick", "--run-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    table = RunLayout(tmp_path).rounds_table.read_text()
    assert "Self-evolution on the toy world" in table
    assert [line.split("│")[1].strip() for line in table.splitlines() if "│" in line] == [
        "0 (base)",
        "1",
        "2",
        "3",
        "4",
    ]
    body = [line for line in table.splitlines() if "│" in line]
    assert body and all(line in done.stdout for line in body)  # printed as written

    rounds = finished_rounds(StoreLayout.for_run(tmp_path))
    assert sorted(rounds) == [0, 1, 2, 3, 4]
    for number in (1, 2, 3, 4):
        assert rounds[number].keys() >= ROUND_METRICS, number

    with Catalog(StoreLayout.for_run(tmp_path)) as catalog:
        searched = catalog.sql(
            "SELECT round, stage, count(DISTINCT problem_id) AS problems FROM nodes "
            "WHERE stage != 'eval' GROUP BY ALL ORDER BY ALL"
        ).to_pylist()
        used = catalog.sql("SELECT round, policy, ppm FROM rounds ORDER BY round").to_pylist()
        overlap = catalog.sql(
            "SELECT count(*) AS n FROM (SELECT problem_id FROM nodes WHERE stage = 'search' "
            "GROUP BY problem_id HAVING count(DISTINCT round) > 1)"
        ).to_pylist()
    assert overlap == [{"n": 0}]  # each_round: new, every round searched problems of its own
    assert {(r["round"], r["stage"]) for r in searched} >= {(n, "search") for n in (1, 2, 3, 4)}
    assert all(r["problems"] == 12 for r in searched if r["stage"] == "search")
    # rounds 3 and 4 searched with the previous round's PPM, rounds 1 and 2 without one
    assert [r["ppm"] is not None for r in used] == [False, False, False, True, True]

    tracking = load_profile("tiny", tmp_path, quick=True).resolved_tracking()
    experiment_id = activate(tracking)
    client = MlflowClient()
    parents = client.search_runs(
        [experiment_id], "tags.round != ''", order_by=["attributes.start_time ASC"]
    )
    round_runs = [r for r in parents if r.info.run_name.startswith("round-")]
    assert [r.info.run_name for r in round_runs] == ["round-1", "round-2", "round-3", "round-4"]
    for run in round_runs:
        assert run.data.metrics.keys() >= ROUND_METRICS
        assert run.info.status == "FINISHED"
        children = client.search_runs(
            [experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
        )
        names = {c.info.run_name for c in children}
        assert {"sft", "ppm", "register", "search-shard-0", "eval-toy"} <= names
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert {"summary.png", "learning-curves.png"} <= set(artifacts)
    for model in ("policy", "ppm"):
        for number in (1, 2, 3, 4):
            assert client.get_model_version_by_alias(model, round_alias(number))
    # the champion is the last round that did not score below it on toy-val greedy
    val = {n: rounds[n]["eval/toy-val/greedy/accuracy"] for n in (1, 2, 3, 4)}
    promoted = [n for n in (1, 2, 3, 4) if rounds[n]["champion"] == 1.0]
    assert promoted[0] == 1 and all(val[n] >= max(val[m] for m in promoted if m < n)
                                    for n in promoted[1:])  # fmt: skip
    champion = client.get_model_version_by_alias("policy", "champion")
    assert (
        champion.version
        == client.get_model_version_by_alias("policy", round_alias(promoted[-1])).version
    )
    # the fixed held-out pairs were built once, from toy-val problems, and measured each round
    assert RunLayout(tmp_path).heldout_pairs.is_file()
