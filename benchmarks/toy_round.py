"""One self-evolution round on the toy world, stage by stage and timed (docs/training.md).

The tiny base policy (``rstar toy bootstrap``) searches toy train problems with MCTS in
data-generation mode (gold answers score the terminals); the trees go to the store; SFT rows
and PPM pairs are curated from them; the policy is fine-tuned on its own verified
solutions, the PPM is trained from the new policy; finally greedy decoding and MCTS + PPM
are evaluated by level on the held-out toy test set (the base policy greedy too, for
reference). Everything is tracked in one MLflow run ``round-1`` with nested runs.

Each stage is a function with file-path inputs and outputs, so an orchestrator (the
Prefect flow) can call them one by one:

    problems_stage -> search_stage -> curate_stage -> train_policy -> train_ppm -> eval

    .venv/bin/python benchmarks/toy_round.py --run-dir runs/toy-round \
        --base runs/toy/base-policy
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import mlflow
import pyarrow as pa

from rstar.config import ModelConfig, Profile, SandboxConfig, SearchConfig, load_profile
from rstar.curate import CurationConfig, coverage, export_round
from rstar.evaluate.benchmarks import Benchmark, toy_benchmark
from rstar.evaluate.config import EvalConfig
from rstar.evaluate.pipeline import run_evaluation
from rstar.evaluate.results import EvalReport, MethodResult
from rstar.evolve.config import ProblemsConfig
from rstar.evolve.problems import toy_problems
from rstar.models import generation_backend
from rstar.search import MCTS, SearchProblem
from rstar.search.records import trees_to_table
from rstar.store import Catalog, ShardInfo, StoreLayout, write_shard
from rstar.toy.config import ToyConfig
from rstar.tracking import Tracking, log_metrics, start_run
from rstar.train.ppm import train_ppm
from rstar.train.run import torch_threads
from rstar.train.sft import train_policy


def problems_stage(toy: ToyConfig, per_level: int, levels: list[int]) -> pa.Table:
    """Toy train problems of ``levels`` the base policy has never been trained on."""
    return toy_problems(toy, ProblemsConfig(toy_levels=tuple(levels), toy_per_level=per_level))


def search_stage(
    policy: ModelConfig,
    problems: pa.Table,
    store: Path,
    round: int,
    search: SearchConfig,
    sandbox: SandboxConfig,
    shard: int = 0,
) -> ShardInfo:
    """MCTS with gold answers (data generation) over the problems; one shard of trees."""
    rows = problems.to_pylist()
    problems = [SearchProblem(r["problem_id"], r["question"], r["answer"]) for r in rows]
    backend = generation_backend(policy)
    with sandbox.open() as box:
        results = MCTS(backend, box, search).search(problems)
    table = trees_to_table(r.tree for r in results)
    return write_shard(store, table, round=round, stage="search", shard=shard)


def curate_stage(store: Path, round: int, config: CurationConfig) -> dict:
    """SFT rows and PPM pairs of the round, exported as JSONL; with the round's coverage."""
    with Catalog(store) as catalog:
        export = export_round(catalog, round, config)
        covered = coverage(catalog).get(round, 0.0)
    return {**asdict(export), "coverage": covered}


def evaluate_stage(
    policy: Path,
    ppm: Path | None,
    benchmark: Benchmark,
    out_dir: Path,
    config: EvalConfig,
    profile: Profile,
    store: Path,
    round: int,
    tracking: Tracking,
) -> EvalReport:
    """One evaluation of checkpoints on a toy test set (results to the store and MLflow)."""
    return run_evaluation(
        benchmark,
        ModelConfig(path=str(policy)),
        out_dir,
        ppm=ModelConfig(path=str(ppm)) if ppm else None,
        search=profile.search,
        sandbox=profile.sandbox,
        config=config,
        store=store,
        round=round,
        tracking=tracking,
    )


def subset(result: MethodResult, problems: Benchmark) -> MethodResult:
    """``result`` restricted to the problems of ``problems`` (a smaller test set)."""
    ids = {p.problem_id for p in problems.problems}
    rows = tuple(r for r in result.results if r.problem_id in ids)
    return replace(result, results=rows)


def level_row(name: str, result: MethodResult) -> str:
    cells = " ".join(f"L{lv} {c / n:4.0%}" for lv, (n, c) in result.by_level().items())
    return (
        f"{name:28s} {result.accuracy:6.1%}  {cells}  pass@k {result.pass_at_k:.1%} "
        f"(n={len(result.results)})"
    )


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

    run_dir = args.run_dir.resolve()
    profile = load_profile("tiny", run_dir=run_dir)
    profile = profile.model_copy(
        update={"search": profile.search.model_copy(update={"rollouts": args.rollouts})}
    )
    toy = ToyConfig.model_validate(profile.toy or {})
    store = StoreLayout.for_run(run_dir).root
    tracking = Tracking.for_run(run_dir)
    threads = {"num_threads": args.threads}
    greedy_set = toy_benchmark(toy.world, args.greedy_per_level)
    search_set = toy_benchmark(toy.world, args.search_per_level)
    greedy_config = EvalConfig(methods=("greedy",), scaling=(), **threads)
    search_config = EvalConfig(
        methods=("mcts", "majority"),
        trajectories=args.trajectories,
        scaling=tuple(int(k) for k in args.scaling.split(",") if k),
        **threads,
    )
    times: dict[str, float] = {}
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}}

    def timed(name: str, started: float) -> None:
        times[name] = round(time.perf_counter() - started, 1)
        print(f"== {name}: {times[name]} s", flush=True)

    with start_run(tracking, "round-1", tags={"round": 1}), torch_threads(args.threads):
        t = time.perf_counter()
        levels = [int(lv) for lv in args.levels.split(",")]
        problems = problems_stage(toy, args.per_level, levels)
        with Catalog(store) as catalog:
            catalog.add_problems(problems)
        base_policy = profile.policy.model_copy(update={"path": str(args.base)})
        shard = search_stage(base_policy, problems, store, 1, profile.search, profile.sandbox)
        timed("search", t)

        t = time.perf_counter()
        curated = curate_stage(store, 1, profile.curate)
        timed("curate", t)
        report["data"] = {
            "nodes": shard.num_nodes,
            "trajectories": shard.num_trajectories,
            **curated,
        }
        log_metrics(
            {
                "search/trajectories": shard.num_trajectories,
                "search/coverage": curated["coverage"],
                "curate/sft_rows": curated["sft_rows"],
                "curate/pairs": curated["pair_rows"],
            }
        )

        t = time.perf_counter()
        policy = train_policy(
            curated["sft_path"],
            args.base,
            run_dir / "round-1" / "policy",
            profile.train.policy.model_copy(update=threads),
            round=1,
            tracking=tracking,
        )
        timed("sft", t)
        report["sft"] = {
            "steps": policy.steps,
            "rows": policy.rows,
            "first_loss": policy.first_loss,
            "last_loss": policy.last_loss,
        }

        t = time.perf_counter()
        ppm = train_ppm(
            curated["pairs_path"],
            policy.out_dir,
            run_dir / "round-1" / "ppm",
            profile.train.ppm.model_copy(update=threads),
            round=1,
            tracking=tracking,
        )
        timed("ppm", t)
        report["ppm"] = ppm.metrics

        eval_dir = run_dir / "eval"
        t = time.perf_counter()
        base = evaluate_stage(
            args.base,
            None,
            greedy_set,
            eval_dir / "round-0" / "toy-greedy",
            greedy_config,
            profile,
            store,
            0,
            tracking,
        )
        timed("eval base greedy", t)
        t = time.perf_counter()
        new = evaluate_stage(
            policy.out_dir,
            None,
            greedy_set,
            eval_dir / "round-1" / "toy-greedy",
            greedy_config,
            profile,
            store,
            1,
            tracking,
        )
        timed("eval round-1 greedy", t)
        t = time.perf_counter()
        searched = evaluate_stage(
            policy.out_dir,
            ppm.out_dir,
            search_set,
            eval_dir / "round-1" / "toy-search",
            search_config,
            profile,
            store,
            1,
            tracking,
        )
        timed("eval round-1 mcts + majority", t)
        rows = [
            ("base policy, greedy", base.results[0]),
            ("round-1 policy, greedy", new.results[0]),
            ("round-1 greedy (MCTS subset)", subset(new.results[0], search_set)),
            *((f"round-1 {r.label} (PPM r1)", r) for r in searched.results),
        ]
        report["eval"] = {
            name: {
                "accuracy": r.accuracy,
                "pass_at_k": r.pass_at_k,
                "by_level": r.by_level(),
                "seconds": r.seconds,
            }
            for name, r in rows
        }
        report["scaling"] = asdict(searched.scaling) if searched.scaling else None
        report["times"] = times
        (run_dir / "toy_round.json").write_text(json.dumps(report, indent=2, default=str))
        mlflow.log_artifact(str(run_dir / "toy_round.json"))
    print(
        json.dumps({k: report[k] for k in ("data", "sft", "ppm", "times")}, indent=2, default=str)
    )
    for name, result in rows:
        print(level_row(name, result))
    if searched.scaling:
        curve = searched.scaling
        for method, values in curve.accuracy.items():
            points = zip(curve.budgets, values, curve.pass_at_k[method], strict=True)
            print(
                f"scaling {method}: " + " ".join(f"k={k} {v:.1%} ({p:.1%})" for k, v, p in points)
            )


if __name__ == "__main__":
    main()
