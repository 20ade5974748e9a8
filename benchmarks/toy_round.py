"""One self-evolution round on the toy world at a larger size than the main job's, timed.

The stages of ``rstar.evolve.stages`` (what the Prefect flow ``evolve`` runs as tasks),
called in order in this process: the base policy's greedy accuracy; MCTS in
data-generation mode over unseen toy train problems; difficulty buckets; SFT rows and PPM
pairs; SFT of the base policy on its own verified solutions; the PPM from the new policy;
greedy, and MCTS + PPM with a majority-vote baseline and a test-time scaling curve, by
level on the held-out toy test set. Sizes are the tiny profile's, with the options below
laid over it; the round is recorded in the store and in MLflow (experiment ``evolve``) as
the main job records its rounds.

    .venv/bin/python benchmarks/toy_round.py --run-dir runs/toy-round \
        --base runs/toy/base-policy
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from rstar.config import Profile, load_profile
from rstar.evolve import stages
from rstar.evolve.report import rounds_table
from rstar.evolve.round_models import round_models
from rstar.store import SEARCH, Catalog, RunLayout, finished_rounds


def round_profile(args: argparse.Namespace) -> Profile:
    """The tiny profile with this benchmark's sizes: round 1 searches ``--levels`` with
    ``--rollouts`` and no extra search; the evaluation runs MCTS and majority voting."""
    data = load_profile("tiny", run_dir=args.run_dir).model_dump()
    data["policy"] |= {"path": str(args.base), "create_with": None}
    data["threads"] = args.threads
    data["evolve"]["problems"] |= {
        "toy_levels": tuple(int(lv) for lv in args.levels.split(",")),
        "toy_per_level": args.per_level,
    }
    round_one = data["evolve"]["rounds"][1]
    round_one |= {"search": {**round_one["search"], "rollouts": args.rollouts}, "extra": None}
    data["eval"] |= {
        "methods": ("greedy", "mcts", "majority"),
        "toy_per_level": args.greedy_per_level,
        "toy_search_per_level": args.search_per_level,
        "trajectories": args.trajectories,
        "scaling": tuple(int(k) for k in args.scaling.split(",") if k),
    }
    return Profile.model_validate(data)


def greedy_on_search_set(prof: Profile) -> float:
    """Round 1's greedy accuracy on the problems the MCTS evaluation used (same problems)."""
    with Catalog(RunLayout(prof.run_dir).store) as catalog:
        rows = catalog.sql(
            "SELECT avg(CAST(g.correct AS DOUBLE)) AS accuracy FROM eval_results g "
            "WHERE g.round = 1 AND g.method = 'greedy' AND g.problem_id IN "
            "(SELECT problem_id FROM eval_results WHERE round = 1 AND method LIKE 'mcts@%')"
        ).to_pylist()
    return rows[0]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/toy-round"))
    parser.add_argument("--base", type=Path, default=Path("runs/toy/base-policy"))
    parser.add_argument("--per-level", type=int, default=100, help="train problems per level")
    parser.add_argument("--levels", default="2,3,4", help="train levels searched")
    parser.add_argument("--rollouts", type=int, default=8, help="MCTS rollouts per problem")
    parser.add_argument("--greedy-per-level", type=int, default=100, help="test set for greedy")
    parser.add_argument("--search-per-level", type=int, default=15, help="test set for MCTS")
    parser.add_argument("--trajectories", type=int, default=8, help="trajectories at test time")
    parser.add_argument("--scaling", default="1,2,4,8", help="budgets of the scaling curve")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    args.run_dir, args.base = args.run_dir.resolve(), args.base.resolve()

    prof = round_profile(args)
    times: dict[str, float] = {}

    def timed(name: str, stage: Callable[..., Any], *params: Any, **options: Any) -> Any:
        started = time.perf_counter()
        result = stage(*params, **options)
        times[name] = round(time.perf_counter() - started, 1)
        print(f"== {name}: {times[name]} s", flush=True)
        return result

    models = round_models(prof, 1)
    run = stages.open_round_run(prof, 1, models)
    timed("greedy, base policy", stages.evaluate_base, prof, str(args.base), run)
    prepared = timed("problems", stages.prepare_round, prof, 1, models)
    for shard in range(prepared["shards"]):
        timed(
            f"search shard {shard}",
            stages.search_shard,
            prof, 1, SEARCH, shard, models, parent_run_id=run,
        )  # fmt: skip
    buckets = timed("difficulty", stages.bucket, prof, 1)
    sft = timed("SFT rows", stages.build_sft, prof, 1)
    pairs = timed("PPM pairs", stages.build_pairs, prof, 1)
    policy = timed(
        "SFT", stages.train_round_policy, prof, 1, models, sft["path"], parent_run_id=run
    )
    ppm = timed(
        "PPM", stages.train_round_ppm, prof, 1, policy["path"], pairs["path"], parent_run_id=run
    )
    evaluated = {
        kind: timed(
            f"eval round 1, {kind}",
            stages.benchmark,
            prof, 1, kind, policy["path"], ppm["path"], parent_run_id=run,
        )
        for kind in (stages.GREEDY_EVAL, stages.SEARCH_EVAL)
    }  # fmt: skip
    for kind in evaluated:
        stages.record_benchmark(prof, 1, kind)
    results = {"sft": sft, "pairs": pairs, "policy": policy, "ppm": ppm, **evaluated}
    metrics = stages.finish_round(prof, 1, run, results)

    console = Console(width=200)
    layout = RunLayout(prof.run_dir)
    console.print(rounds_table(finished_rounds(layout.store)))
    accuracy = {k: v for k, v in metrics.items() if k.count("/") == 3 and k.endswith("/accuracy")}
    accuracy["round-1 greedy on the MCTS problems"] = greedy_on_search_set(prof)
    summary = layout.round(1).eval_dir("toy", stages.SEARCH_EVAL) / "summary.json"
    scaling = json.loads(summary.read_text())["scaling"]
    report = {
        "problems": prepared["problems"],
        "difficulty": buckets,
        "sft_rows": sft["rows"],
        "pairs": pairs["rows"],
        "ppm_pair_accuracy": ppm.get("ppm/pair_accuracy"),
        "accuracy": accuracy,
        "scaling": scaling,
        "seconds": times,
    }
    console.print_json(data=report)
    (args.run_dir / "toy_round.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
