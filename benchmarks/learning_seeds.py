"""Does one round of self-evolution beat its base on the frontier level? Once per seed.

For issue 15's CI learning test, at two sizes. ``--size quick``: the quick profile's base
(a 64-wide, 2-layer model) trained on level 1 and some level-2 problems (a quarter of its
rows), frontier level 2. ``--size full``: the tiny profile's own base (1.31 M parameters,
levels 1-2 and ``--frontier-rows`` level-3 rows: the profile's 300 unless given), frontier
level 3. The round's frontier is the lowest level the base solves less than half of
greedily on the toy validation split (never the test split): the size's level for a base
that learned it, a lower one for a base whose bootstrap fell short. One round searches
``--problems`` frontier-level train problems (and a tenth as many of the level below) with
8 rollouts, SFT of the base on its own verified solutions, greedy on 100 held-out toy test
problems of each level before and after. Every seed changes the base's weights, the search and the
SFT data order; the toy world stays the same. The stages are ``rstar.evolve.stages``'
(what the Prefect flow runs), called in order in this process.

    .venv/bin/python benchmarks/learning_seeds.py --seeds 0,1,2,3,4 --out runs/learning

Prints, and writes to ``<out>/learning.json``, the frontier level and its greedy accuracy
of the base and of round 1 per seed (docs/evolve.md, "Learning at CI size").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rstar.config import Profile, load_profile
from rstar.evolve import round_synthesis, stages
from rstar.evolve.round_models import round_models
from rstar.store import SEARCH

FRONTIER = {"quick": 2, "full": 3}  # the level the base is bootstrapped to reach, per size
FRONTIER_BELOW = 0.5  # the frontier: the lowest level the base solves less often than this


def seeded_profile(
    seed: int,
    run_dir: Path,
    problems: int,
    size: str = "quick",
    frontier_rows: int | None = None,
    frontier: int | None = None,
    synthesis: dict | None = None,
) -> Profile:
    """The tiny profile (``quick``: its quick size) with every seed set to ``seed``, sized
    for one learning round on ``frontier`` (the size's level unless given);
    ``frontier_rows``: the base's bootstrap rows of the size's level; ``synthesis``: round
    1's ``evolve.synthesis`` section (seeds of the searched level)."""
    level = FRONTIER[size]
    searched = frontier or level
    data = load_profile("tiny", quick=size == "quick", run_dir=run_dir).model_dump()
    data["toy"]["bootstrap"] |= {"seed": seed}
    if size == "quick":
        data["toy"]["bootstrap"] |= {"problems_per_level": {1: 3000, level: 1000}}
    if frontier_rows is not None:
        data["toy"]["bootstrap"]["problems_per_level"] |= {level: frontier_rows}
    data["search"] |= {"seed": seed, "rollouts": 8}
    data["train"]["policy"] |= {"seed": seed, "epochs": 3}
    data["evolve"]["problems"] = {
        "source": "toy",
        "toy_per_level": {searched: problems}
        | ({searched - 1: problems // 10} if searched > 1 else {}),
    }
    if synthesis is not None:  # its seeds_per_level: seeds of the searched level
        section = {k: v for k, v in synthesis.items() if k != "seeds_per_level"}
        seeds = {"toy_seeds_per_level": {searched: synthesis["seeds_per_level"]}}
        data["evolve"]["synthesis"] = section | seeds
    data["evolve"]["rounds"][1] |= {"extra": None}
    data["evolve"] |= {"shard_size": problems, "promote_on": None}
    data["eval"] |= {
        # the base's validation accuracy chooses the frontier; round 1 needs the test only
        "benchmarks": ("toy", "toy-val") if frontier is None else ("toy",),
        "methods": ("greedy",),
        "toy_per_level": 100,
    }
    return Profile.model_validate(data)


def frontier_level(metrics: dict[str, float], below: float = FRONTIER_BELOW) -> int:
    """The lowest level whose greedy accuracy on the toy validation split is below
    ``below`` (the highest level evaluated when the base solves at least that of each)."""
    accuracy = {
        int(key.split("/")[3].removeprefix("level_")): value
        for key, value in metrics.items()
        if key.startswith("eval/toy-val/greedy/level_") and key.endswith("/accuracy")
    }
    return min((lv for lv, a in accuracy.items() if a < below), default=max(accuracy))


def first_round(
    seed: int,
    run_dir: Path,
    problems: int,
    size: str,
    frontier_rows: int | None,
    synthesis: dict | None = None,
) -> dict[str, float]:
    """Greedy test accuracy on the frontier level of the base and of round 1's policy,
    the frontier chosen from the base's validation accuracy; with ``synthesis`` (see
    ``seeded_profile``) the round also searches the problems its teacher wrote."""
    prof = seeded_profile(seed, run_dir, problems, size, frontier_rows)
    base = stages.bootstrap_policy(prof, progress=False)
    before = stages.evaluate_base(prof, base, progress=False)
    frontier = frontier_level(before)
    prof = seeded_profile(seed, run_dir, problems, size, frontier_rows, frontier, synthesis)
    level = f"eval/toy/greedy/level_{frontier}/accuracy"
    models = round_models(prof, 1)
    for shard in range(round_synthesis.prepare_synthesis(prof, 1)["shards"]):
        round_synthesis.synthesize_shard(prof, 1, shard, progress=False)
    prepared = stages.prepare_round(prof, 1, models, progress=False)
    for shard in range(prepared["shards"]):
        stages.search_shard(prof, 1, SEARCH, shard, models, progress=False)
    sft = stages.build_sft(prof, 1)
    policy = stages.train_round_policy(prof, 1, models, sft["path"], progress=False)
    after = stages.benchmark(prof, 1, stages.GREEDY_EVAL, policy["path"], None, progress=False)
    return {
        "frontier": frontier,
        "base": before[level],
        "round_1": after[level],
        "sft_rows": sft["rows"],
        "problems": prepared["problems"],
        "synthetic": prepared["synthetic"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--size", choices=sorted(FRONTIER), default="quick")
    parser.add_argument("--problems", type=int, default=200, help="frontier problems searched")
    parser.add_argument(
        "--frontier-rows", type=int, default=None, help="the base's rows of the frontier level"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/learning"))
    args = parser.parse_args()
    results = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        started = time.perf_counter()
        run_dir = args.out.resolve() / f"seed-{seed}"
        row = first_round(seed, run_dir, args.problems, args.size, args.frontier_rows)
        results[seed] = row | {"seconds": round(time.perf_counter() - started)}
        print(f"seed {seed}: {results[seed]}", flush=True)
    wins = sum(r["round_1"] > r["base"] for r in results.values())
    print(f"round 1 beats the base on its frontier level for {wins} of {len(results)} seeds")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
