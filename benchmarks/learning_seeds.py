"""Does one round of self-evolution beat its base on the frontier level? Once per seed.

For issue 15's CI learning test, at two sizes. ``--size quick``: the quick profile's base
(a 64-wide, 2-layer model) trained on level 1 and some level-2 problems (a quarter of its
rows), frontier level 2. ``--size full``: the tiny profile's own base (1.31 M parameters,
levels 1-2 and ``--frontier-rows`` level-3 rows: the profile's 300 unless given), frontier
level 3. One round searches ``--problems``
frontier-level train problems (and a tenth as many of the level below) with 8 rollouts,
SFT of the base on its own verified solutions, greedy on 100 held-out toy test problems
of each level before and after. Every seed changes the base's weights, the search and the
SFT data order; the toy world stays the same. The stages are ``rstar.evolve.stages``'
(what the Prefect flow runs), called in order in this process.

    .venv/bin/python benchmarks/learning_seeds.py --seeds 0,1,2,3,4 --out runs/learning

Prints, and writes to ``<out>/learning.json``, the frontier level's greedy accuracy of the
base and of round 1 per seed (docs/evolve.md: at this size round 1 does not beat its
base yet).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rstar.config import Profile, load_profile
from rstar.evolve import stages
from rstar.evolve.round_models import round_models
from rstar.store import SEARCH

FRONTIER = {"quick": 2, "full": 3}  # the level the base rarely solves, per size


def seeded_profile(
    seed: int,
    run_dir: Path,
    problems: int,
    size: str = "quick",
    frontier_rows: int | None = None,
) -> Profile:
    """The tiny profile (``quick``: its quick size) with every seed set to ``seed``, sized
    for one learning round; ``frontier_rows``: the base's bootstrap rows of the frontier
    level."""
    frontier = FRONTIER[size]
    data = load_profile("tiny", quick=size == "quick", run_dir=run_dir).model_dump()
    data["toy"]["bootstrap"] |= {"seed": seed}
    if size == "quick":
        data["toy"]["bootstrap"] |= {"problems_per_level": {1: 3000, frontier: 1000}}
    if frontier_rows is not None:
        data["toy"]["bootstrap"]["problems_per_level"] |= {frontier: frontier_rows}
    data["search"] |= {"seed": seed, "rollouts": 8}
    data["train"]["policy"] |= {"seed": seed, "epochs": 3}
    data["evolve"]["problems"] = {
        "source": "toy",
        "toy_per_level": {frontier - 1: problems // 10, frontier: problems},
    }
    data["evolve"]["rounds"][1] |= {"extra": None}
    data["evolve"] |= {"shard_size": problems, "promote_on": None}
    data["eval"] |= {"benchmarks": ("toy",), "methods": ("greedy",), "toy_per_level": 100}
    return Profile.model_validate(data)


def first_round(prof: Profile, frontier: int) -> dict[str, float]:
    """Greedy accuracy on the frontier level of the base and of round 1's policy."""
    level = f"eval/toy/greedy/level_{frontier}/accuracy"
    base = stages.bootstrap_policy(prof, progress=False)
    before = stages.evaluate_base(prof, base, progress=False)
    models = round_models(prof, 1)
    prepared = stages.prepare_round(prof, 1, models, progress=False)
    for shard in range(prepared["shards"]):
        stages.search_shard(prof, 1, SEARCH, shard, models, progress=False)
    sft = stages.build_sft(prof, 1)
    policy = stages.train_round_policy(prof, 1, models, sft["path"], progress=False)
    after = stages.benchmark(prof, 1, stages.GREEDY_EVAL, policy["path"], None, progress=False)
    return {"base": before[level], "round_1": after[level], "sft_rows": sft["rows"]}


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
        prof = seeded_profile(seed, run_dir, args.problems, args.size, args.frontier_rows)
        row = first_round(prof, FRONTIER[args.size])
        results[seed] = row | {"seconds": round(time.perf_counter() - started)}
        print(f"seed {seed}: {results[seed]}", flush=True)
    wins = sum(r["round_1"] > r["base"] for r in results.values())
    level = FRONTIER[args.size]
    print(f"round 1 beats the base on level {level} for {wins} of {len(results)} seeds")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
