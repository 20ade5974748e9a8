"""The main job at the quick size, from nothing: bootstrap, four rounds, the table.

What CI's end-to-end run is; slow (a few minutes), so it runs with RSTAR_SLOW=1 / in CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from http_stub import start
from mlflow import MlflowClient
from test_round_synthesis import SOLVE, WRITE, Teacher

from rstar.config import PROFILES_DIR, load_profile
from rstar.store import Catalog, RunLayout, StoreLayout, finished_rounds
from rstar.tracking import activate, file_digest, round_alias

REPO = Path(__file__).resolve().parents[1]
RSTAR = str(Path(sys.executable).parent / "rstar")

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


KEY = "sk-main-job-teacher"


@pytest.fixture
def teacher():
    """A scripted teacher over real HTTP on 127.0.0.1 (rstar serve's toy teacher needs a
    trained checkpoint; what a round does with its answers is the point here)."""
    httpd = start(Teacher)
    httpd.requests, httpd.keys = [], set()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def synthesis_profile(path: Path, port: int) -> Path:
    """The tiny profile with round 2 synthesizing through the teacher on ``port``."""
    raw = yaml.safe_load((PROFILES_DIR / "tiny.yaml").read_text())
    raw["evolve"]["synthesis"] |= {
        "rounds": [2],
        "toy_seeds_per_level": {1: 3, 2: 3},
        "hard_seeds": 2,
        "shard_size": 4,
    }
    raw["evolve"]["synthesis"]["teacher"] |= {
        "base_url": f"http://127.0.0.1:{port}/v1",
        "api_key_env": "MAIN_JOB_TEACHER_KEY",
    }
    raw["evolve"]["synthesis"]["filter"] |= {
        "problem_prompt": WRITE + "{question}",
        "solve_prompt": SOLVE + "{question}",
        "problem_stop": [],
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.mark.slow
def test_quick_main_job_runs_four_rounds_and_prints_the_table(tmp_path, teacher):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RSTAR_"))}
    profile = synthesis_profile(tmp_path / "tiny.yaml", teacher.server_address[1])
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [RSTAR, "evolve", "--quick", "--profile", str(profile), "--run-dir", str(run_dir)],
        cwd=REPO,
        env=env | {"MAIN_JOB_TEACHER_KEY": KEY},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    table = RunLayout(run_dir).rounds_table.read_text()
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
    # a calm terminal: a line per stage, the table after the base and after each round (each
    # with the base's row), the libraries' output in the log file it names at the start
    (log,) = RunLayout(run_dir).logs_dir.glob("evolve-*.log")
    assert done.stdout.index(str(log)) < done.stdout.index("round 1:")
    assert done.stdout.count("│ 0 (base) │") == 5
    assert "round 4: finished greedy" in done.stdout
    assert "Finished in state Completed" not in done.stdout + done.stderr
    assert "Finished in state Completed" in log.read_text()

    rounds = finished_rounds(StoreLayout.for_run(run_dir))
    assert sorted(rounds) == [0, 1, 2, 3, 4]
    for number in (1, 2, 3, 4):
        assert rounds[number].keys() >= ROUND_METRICS, number

    with Catalog(StoreLayout.for_run(run_dir)) as catalog:
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
    # round 2 searched its 12 toy problems and what the teacher wrote (all kept: 5 or 10 of
    # 10 answers agree) from 6 toy seeds and 2 of round 1's unsolved problems, less any that
    # fell into a held-out split
    problems = {r["round"]: r["problems"] for r in searched if r["stage"] == "search"}
    assert {n: p for n, p in problems.items() if n != 2} == {1: 12, 3: 12, 4: 12}
    with Catalog(StoreLayout.for_run(run_dir)) as catalog:
        seeded = catalog.sql("SELECT question, seed_problem_id FROM synthetic_problems")
        (unsolved,) = (
            catalog.sql(
                "SELECT count(*) FROM problem_summary WHERE round = 1 AND difficulty = 'hard'"
            )
            .to_pylist()[0]
            .values()
        )
    candidates = 6 + min(2, unsolved)
    assert rounds[2]["synthesis/candidates"] == rounds[2]["synthesis/kept"] == candidates
    assert 12 < problems[2] == 12 + len(seeded) <= 12 + candidates
    assert all(q.endswith(" Then twice as many?") for q in seeded["question"].to_pylist())
    assert rounds[2]["synthesis/requests"] == 2 * candidates  # one write, one solve a seed
    assert teacher.keys == {f"Bearer {KEY}"}
    assert not any("synthesis/candidates" in rounds[n] for n in (1, 3, 4))
    # rounds 3 and 4 searched with the previous round's PPM, rounds 1 and 2 without one
    assert [r["ppm"] is not None for r in used] == [False, False, False, True, True]

    tracking = load_profile(profile, run_dir, quick=True).resolved_tracking()
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
        assert ("synthesis.png" in artifacts) == (run.info.run_name == "round-2")
        pages = [a.path for a in client.list_artifacts(run.info.run_id, "trees")]
        assert pages and all(p.startswith(("trees/solved-", "trees/unsolved-")) for p in pages)
        # lineage: the rstar version, the resolved profile, the datasets by content digest
        assert "profile.yaml" in artifacts and run.data.tags["rstar.version"]
        logged = client.get_run(run.info.run_id).inputs.dataset_inputs
        inputs = {i.dataset.name: i.dataset for i in logged}
        assert inputs.keys() == {"problems", "sft", "ppm_pairs"}
        problems = RunLayout(run_dir).round(int(run.data.tags["round"])).problems
        assert inputs["problems"].digest == file_digest(problems)[:16]
        assert not any(KEY in value for value in run.data.params.values())
    # one curve per key metric over the rounds, in the learning-curves run
    (curves,) = client.search_runs([experiment_id], "tags.`rstar.learning_curves` = 'true'")
    history = client.get_metric_history(curves.info.run_id, "eval/toy/greedy/accuracy")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
        (n, rounds[n]["eval/toy/greedy/accuracy"]) for n in range(5)
    ]
    experiment = client.get_experiment(experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    for model, short in (("policy", "SLM"), ("ppm", "PPM")):
        for number in (1, 2, 3, 4):
            version = client.get_model_version_by_alias(model, round_alias(number))
            toy = 100 * rounds[number]["eval/toy/greedy/accuracy"]
            assert version.description.startswith(f"{short}-r{number}, round {number} of ")
            assert f"greedy accuracy: toy {toy:.1f} %" in version.description
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
    assert RunLayout(run_dir).heldout_pairs.is_file()
