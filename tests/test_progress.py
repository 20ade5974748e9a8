"""Where a run directory stands, from its files: each stage's file in turn, the ETA, the
checks before a job starts, and the `rstar evolve` / `rstar status` commands."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rstar.cli import app
from rstar.cli.evolve import parse_rounds
from rstar.evolve.progress import (
    RoundFinishedError,
    RoundStatus,
    RunDirError,
    check_round_open,
    check_run_dir,
    eta_seconds,
    round_status,
    run_status,
    write_round_metrics,
    write_run_record,
)
from rstar.store import Catalog, RunLayout

runner = CliRunner()


def said(result) -> str:
    """A command's output with the console's line wrapping undone."""
    return " ".join(result.output.split())


def _rows(path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"problem_id": [f"p{i}" for i in range(n)]}), path)


def _shards(layout: RunLayout, stage: str, count: int) -> None:
    for shard in range(count):
        _rows(layout.store.shard_path(1, stage, shard), 1)


def test_each_stage_is_the_first_whose_file_is_missing(tmp_path):
    layout = RunLayout(tmp_path)
    files = layout.round(1)
    assert round_status(layout, 1, shard_size=2) is None  # not started
    assert round_status(layout, 0, 2) == RoundStatus(0, "base policy")
    files.dir.mkdir(parents=True)
    assert round_status(layout, 1, 2) == RoundStatus(1, "problems")
    _rows(files.problems, 5)  # 5 problems, 2 a shard: 3 shards
    assert round_status(layout, 1, 2) == RoundStatus(1, "search", 0, 3)
    _shards(layout, "search", 1)
    status = round_status(layout, 1, 2)
    assert (status.stage, status.done, status.total) == ("search", 1, 3)
    assert status.describe() == "1 of 3 shards"
    _shards(layout, "search", 3)
    assert round_status(layout, 1, 2).stage == "SFT rows and PPM pairs"  # no extra search
    _rows(files.extra_problems(1), 3)  # 3 left unsolved: 2 shards of extra rollouts
    assert round_status(layout, 1, 2) == RoundStatus(1, "extra rollouts", 0, 2)
    _shards(layout, "extra_rollouts", 2)
    _rows(files.extra_problems(2), 1)  # escalation on the 1 still unsolved
    assert round_status(layout, 1, 2) == RoundStatus(1, "escalation 1", 0, 1)
    _shards(layout, "escalation_1", 1)
    expected = [
        ("SFT rows and PPM pairs", lambda: _rows(layout.store.dataset_path(1, "ppm_pairs"), 1)),
        ("policy training", lambda: files.policy.mkdir()),
        ("PPM training", lambda: files.ppm.mkdir()),
        ("greedy evaluation", lambda: _summary(files.eval_dir("toy", "greedy"))),
        ("MCTS + PPM evaluation", lambda: _summary(files.eval_dir("toy", "search"))),
        ("registration", lambda: write_round_metrics(layout, 1, {"eval/toy/greedy/accuracy": 0.4})),
    ]
    for stage, finish in expected:
        assert round_status(layout, 1, 2) == RoundStatus(1, stage), stage
        finish()
    status = round_status(layout, 1, 2)
    assert status.finished and status.metrics == {"eval/toy/greedy/accuracy": 0.4}
    assert status.describe() == "greedy 40.0 %"
    assert [s.round for s in run_status(tmp_path, [1, 2, 3], 2)] == [0, 1]


def _summary(folder) -> None:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text("{}")


def test_the_eta_is_the_mean_pace_of_finished_rounds_times_the_rounds_left():
    statuses = [
        RoundStatus(0, "finished", metrics={}, finished_at=100.0),
        RoundStatus(1, "finished", metrics={}, finished_at=400.0),  # 300 s
        RoundStatus(2, "finished", metrics={}, finished_at=600.0),  # 200 s
        RoundStatus(3, "search", 1, 4),
    ]
    # rounds 3 and 4 left at 250 s each, round 3 started 100 s ago
    assert eta_seconds(statuses, [1, 2, 3, 4], now=700.0) == 400.0
    assert eta_seconds(statuses[:1], [1, 2, 3, 4], now=700.0) is None  # no round yet
    assert eta_seconds(statuses[:3], [1, 2], now=700.0) == 0.0


def test_a_job_refuses_a_run_dir_of_another_profile_or_a_missing_previous_round(tmp_path):
    layout = RunLayout(tmp_path)
    record = check_run_dir(layout, "tiny", "tiny", True, 1, 4)
    assert record == {"profile": "tiny", "profile_name": "tiny", "quick": True}
    write_run_record(layout, record)
    with pytest.raises(RunDirError, match="holds rounds of profile 'tiny' at its quick size") as e:
        check_run_dir(layout, "tiny", "tiny", False, 1, 4)
    assert f"rstar evolve --profile tiny --quick --rounds 1-4 --run-dir {tmp_path}" in str(e.value)
    with Catalog(layout.store) as catalog:  # round 1 finished, round 2 started only
        for number in (0, 1, 2):
            catalog.start_round(number)
        catalog.finish_round(0)
        catalog.finish_round(1)
    with pytest.raises(RunDirError, match=r"no finished round 2 \(finished rounds: 1\)") as e:
        check_run_dir(layout, "tiny", "tiny", True, 3, 4)
    assert "rstar evolve --profile tiny --quick --rounds 2-4" in str(e.value)
    assert check_run_dir(layout, "tiny", "tiny", True, 2, 4) == record
    # round 1 again would mix a second run's trees into the first's
    with pytest.raises(RoundFinishedError, match="round 1 has already finished") as e:
        check_run_dir(layout, "tiny", "tiny", True, 1, 4)
    assert "rstar evolve --profile tiny --quick --rounds 2-4" in str(e.value)
    with pytest.raises(RoundFinishedError, match="--rounds 2-2 --run-dir"):
        check_run_dir(layout, "tiny", "tiny", True, 1, 1)


def test_a_round_that_finished_is_not_started_again(tmp_path):
    layout = RunLayout(tmp_path)
    check_round_open(layout, 1)  # nothing there yet
    with Catalog(layout.store) as catalog:
        catalog.start_round(1)
        check_round_open(layout, 1)  # started, not finished: a retry may go on
        catalog.finish_round(1)
    with pytest.raises(RoundFinishedError, match="round 1 has already finished") as e:
        check_round_open(layout, 1)
    assert "prefect deployment run evolve/round-2" in str(e.value)
    check_round_open(layout, 2)


def test_rounds_are_a_round_or_a_rising_range():
    assert parse_rounds("2-4") == (2, 4)
    assert parse_rounds("3") == (3, 3)
    for bad in ("0-2", "4-2", "two", "1-"):
        with pytest.raises(ValueError, match="--rounds"):
            parse_rounds(bad)


def test_evolve_says_what_to_run_before_any_work_and_status_reads_the_files(tmp_path):
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["evolve", "--quick", "--rounds", "3-4", "--run-dir", str(run_dir)])
    assert result.exit_code == 2
    assert "round 3 starts from round 2's models" in said(result)
    assert "--rounds 1-4" in said(result)
    assert not run_dir.exists()  # nothing written

    result = runner.invoke(app, ["status", str(run_dir)])
    assert result.exit_code == 2 and "no run directory here" in said(result)

    layout = RunLayout(run_dir)
    write_run_record(layout, {"profile": "tiny", "profile_name": "tiny", "quick": True})
    write_round_metrics(layout, 0, {"eval/toy/greedy/accuracy": 0.32})
    _rows(layout.round(1).problems, 12)  # the quick profile: 6 problems a shard
    _rows(layout.store.shard_path(1, "search", 0), 1)
    result = runner.invoke(app, ["status", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "greedy 32.0 %" in said(result)
    assert "search │ 1 of 2 shards" in said(result)
    assert json.loads(layout.run_record.read_text())["quick"] is True
