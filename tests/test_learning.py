"""CI asserts learning (issue 15): one round of self-evolution beats its base.

``benchmarks/learning_seeds.py --size full --frontier-rows 600``: the tiny profile's base
model (1.31 M parameters) bootstrapped on levels 1-2 and 600 level-3 rows, one round on
600 train problems of the frontier level (the lowest level the base solves less than half
of on validation: level 3 for seed 0) and 60 of the level below with 8 rollouts, SFT of the
base on its verified solutions, greedy on 100 test problems of that level before and after.
At this size round 1 beat its base on its frontier for 5 of 5 seeds (level 3 by 8-23
points for four; level 2 by 4 for seed 3, whose bootstrap fell short: docs/evolve.md,
"Learning at CI size"). This runs seed 0. Slow (about 10 minutes on 2 cores), so it runs
with RSTAR_SLOW=1 / in CI.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _learning_seeds():
    spec = importlib.util.spec_from_file_location(
        "learning_seeds", REPO / "benchmarks" / "learning_seeds.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_frontier_is_the_lowest_level_below_half_on_validation():
    frontier_level = _learning_seeds().frontier_level
    key = "eval/{}/greedy/level_{}/accuracy".format
    # seed 3's base: 81 / 39 / 0 % on validation -> level 2; the test split is ignored
    seed_3 = {key("toy-val", 1): 0.81, key("toy-val", 2): 0.39, key("toy-val", 3): 0.0}
    assert frontier_level(seed_3 | {key("toy", 1): 0.2}) == 2
    # seed 0's: 96 / 84 / 32 % -> level 3; exactly half is not below half
    seed_0 = {key("toy-val", 1): 0.96, key("toy-val", 2): 0.84, key("toy-val", 3): 0.32}
    assert frontier_level(seed_0) == 3
    assert frontier_level(seed_0 | {key("toy-val", 2): 0.5}) == 3
    # a base that solves at least half of every level: the highest level evaluated
    assert frontier_level({key("toy-val", 1): 0.9, key("toy-val", 2): 0.6}) == 2


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_one_round_beats_its_base_on_the_frontier_level(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "learning_seeds.py"),
            "--size=full",
            "--problems=600",
            "--frontier-rows=600",
            "--seeds=0",
            f"--out={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads((tmp_path / "learning.json").read_text())["0"]
    # level 3 (seed 0's frontier): 32 % -> 55 % when measured (+23; the smallest gain of
    # the seeds at level 3 was +8)
    assert result["frontier"] == 3, result
    assert result["round_1"] >= result["base"] + 0.05, result
    assert result["sft_rows"] >= 200, result
