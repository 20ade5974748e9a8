"""The stages of one self-evolution round, each a function an orchestrator calls as one task.

Inputs are the profile (name or path, run directory, size) and small values; outputs are
small JSON-ready dicts (counts, paths, metrics). Every stage is idempotent: it writes whole
files atomically (a rerun replaces them) and the catalog is opened only by the stages that
run one at a time, never by the search shards, which may run in parallel.

    bootstrap_policy -> prepare_round -> search_shard* -> bucket -> extra_shard*
        -> build_sft -> build_pairs -> train_policy -> train_ppm
        -> benchmark (greedy, search) -> register_models -> finish_round
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from rstar.config import Profile, load_profile
from rstar.curate import difficulty_counts, hard_problems, select_pairs, select_sft
from rstar.curate.export import export_rows
from rstar.evaluate.benchmarks import Benchmark, load_benchmark
from rstar.evaluate.config import EvalConfig
from rstar.evaluate.pipeline import report_metrics, run_evaluation
from rstar.evolve.models import RoundModels, tracking_for
from rstar.evolve.paths import RoundPaths
from rstar.evolve.problems import (
    register_problems,
    shard_count,
    shard_problems,
    source_problems,
    write_problems,
)
from rstar.evolve.report import finish_round, round_metrics, summary_plot
from rstar.models import generation_backend, ppm_scorer
from rstar.search import MCTS
from rstar.search.records import trees_to_table
from rstar.store import EXTRA_ROLLOUTS, SEARCH, Catalog, write_shard
from rstar.toy.bootstrap import bootstrap
from rstar.toy.config import ToyConfig
from rstar.tracking import (
    POLICY_MODEL,
    PPM_MODEL,
    close_run,
    log_metrics,
    open_run,
    register_checkpoint,
    start_run,
    under_run,
)
from rstar.train.ppm import train_ppm
from rstar.train.run import publish, torch_threads
from rstar.train.sft import policy_init, train_policy


@dataclass(frozen=True)
class RunSpec:
    """Which run a stage works on: a profile (name or path), its run directory and size.

    Orchestrators pass this small value between tasks (and hash it for their caches)
    instead of the loaded profile.
    """

    profile: str = "tiny"
    run_dir: str | None = None
    quick: bool = False

    def load(self) -> Profile:
        return load_profile(self.profile, self.run_dir, quick=self.quick)


def bootstrap_policy(prof: Profile, progress: bool = True) -> str:
    """The round-1 base policy: the toy profile builds it when it is missing (atomically:
    a crash leaves no half checkpoint); other profiles must point at an existing model."""
    target = Path(prof.policy.path)
    if prof.toy is None or (target / "config.json").is_file():
        return str(prof.policy.local_path())
    toy = ToyConfig.model_validate(prof.toy)
    publish(target, lambda tmp: bootstrap(tmp, toy.world, toy.bootstrap, progress=progress))
    return str(target)


def prepare_round(
    prof: Profile, round: int, models: RoundModels, progress: bool = True
) -> dict[str, int]:
    """Write the round's problem file, add the problems and the rows left out of the
    problem files (rejects: bad, duplicate, benchmark questions) to the catalog, mark the
    round started."""
    paths = RoundPaths(prof.run_dir, round)
    loaded = source_problems(prof, progress)
    rows = write_problems(loaded.problems, paths.problems)
    register_problems(paths.store.root, loaded)
    with Catalog(paths.store) as catalog:
        catalog.start_round(
            round, policy=models.search_policy.path, ppm=models.ppm.path if models.ppm else None
        )
    return {
        "problems": rows,
        "shards": shard_count(rows, prof.evolve.shard_size),
        "rejected": len(loaded.rejects),
        "contaminated": sum(loaded.report.contaminated.values()),
    }


def search_shard(
    prof: Profile,
    round: int,
    shard: int,
    models: RoundModels,
    *,
    extra: bool = False,
    parent_run_id: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """MCTS (data generation: gold answers grade the terminals) over one shard of the
    round's problems, or of its unsolved ones (``extra``); the trees become one Parquet
    shard of stage ``search`` / ``extra_rollouts``, replacing an earlier attempt's."""
    paths = RoundPaths(prof.run_dir, round)
    settings = prof.evolve.round(round)
    stage = EXTRA_ROLLOUTS if extra else SEARCH
    rollouts = settings.extra_rollouts if extra else settings.rollouts
    if rollouts is None:
        raise ValueError(f"round {round} has no extra rollouts configured")
    source = paths.extra_problems if extra else paths.problems
    problems = shard_problems(source, shard, prof.evolve.shard_size)
    search = prof.search.model_copy(
        update={
            "rollouts": rollouts,
            "seed": prof.search.seed + 1_000_003 * round + 7919 * shard + (1 if extra else 0),
            **({"error_threshold": settings.error_threshold} if settings.error_threshold else {}),
        }
    )
    started = time.perf_counter()
    with torch_threads(prof.evolve.search_threads):
        backend = generation_backend(models.search_policy.with_progress(progress))
        scorer = ppm_scorer(models.ppm.with_progress(progress)) if models.ppm else None
        with prof.sandbox.open() as box:
            results = MCTS(backend, box, search, ppm=scorer, progress=progress).search(problems)
    info = write_shard(
        paths.store, trees_to_table(r.tree for r in results), round=round, stage=stage, shard=shard
    )
    terminals = [t for r in results for t in r.terminals]
    summary = {
        "stage": stage,
        "shard": shard,
        "problems": len(problems),
        "trajectories": len(terminals),
        "correct": sum(bool(t.correct) for t in terminals),
        "solved": sum(any(t.correct for t in r.terminals) for r in results),
        "seconds": time.perf_counter() - started,
        "file": str(info.path),
    }
    with under_run(parent_run_id), start_run(tracking_for(prof), f"{stage}-shard-{shard}"):
        log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float)})
    return summary


def bucket(prof: Profile, round: int) -> dict[str, int]:
    """Difficulty of the round's problems from their trees (easy: all trajectories
    correct, medium: some, hard: none) and the file of hard ones for the extra search."""
    paths = RoundPaths(prof.run_dir, round)
    with Catalog(paths.store) as catalog:
        counts = difficulty_counts(catalog, round)
        hard = hard_problems(catalog, round)
    extra = prof.evolve.round(round).extra_rollouts
    shards = 0
    if extra and len(hard):
        write_problems(hard, paths.extra_problems)
        shards = shard_count(len(hard), prof.evolve.shard_size)
    return {**counts, "extra_shards": shards}


def build_sft(prof: Profile, round: int) -> dict[str, Any]:
    """The round's SFT rows (verified trajectories with the highest average Q)."""
    return _export(prof, round, "sft", "sft", select_sft)


def build_pairs(prof: Profile, round: int) -> dict[str, Any]:
    """The round's PPM preference pairs (same-prefix steps by Q, and final-answer pairs)."""
    return _export(prof, round, "ppm_pairs", "ppm", select_pairs)


def train_round_policy(
    prof: Profile,
    round: int,
    models: RoundModels,
    sft_path: str,
    *,
    parent_run_id: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """SLM-r(N): SFT from the base model or the previous policy (``train.policy.init_from``)."""
    paths = RoundPaths(prof.run_dir, round)
    init = policy_init(prof.train.policy, models.base, models.previous_policy)
    with under_run(parent_run_id):
        result = train_policy(
            sft_path,
            init,
            paths.policy,
            prof.train.policy,
            tracking=tracking_for(prof),
            progress=progress,
        )
    return {"path": str(paths.policy), "init": str(init), **result.metrics, "rows": result.rows}


def train_round_ppm(
    prof: Profile,
    round: int,
    policy_path: str,
    pairs_path: str,
    *,
    parent_run_id: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """PPM-r(N), initialised from the round's new policy, on the round's pairs."""
    paths = RoundPaths(prof.run_dir, round)
    with under_run(parent_run_id):
        result = train_ppm(
            pairs_path,
            policy_path,
            paths.ppm,
            prof.train.ppm,
            tracking=tracking_for(prof),
            progress=progress,
        )
    return {"path": str(paths.ppm), **result.metrics}


def benchmark(
    prof: Profile,
    round: int,
    policy_path: str,
    ppm_path: str | None,
    *,
    searches: bool,
    parent_run_id: str | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Greedy pass@1 (``searches=False``), or the budgeted methods (MCTS + PPM choosing
    among k trajectories...), on each of the round's benchmarks. Round 0 is the base
    policy. Results go to the store; returns the accuracies (overall, pass@k, per level)
    under the names of ``rstar.evaluate.pipeline.report_metrics``."""
    settings = prof.evolve.evaluation
    paths = RoundPaths(prof.run_dir, round)
    policy = prof.policy.at(policy_path)
    ppm = prof.ppm_at(ppm_path) if ppm_path else None
    config = EvalConfig(
        methods=settings.search_methods if searches else ("greedy",),
        trajectories=settings.trajectories,
        scaling=settings.scaling if searches else (),
        max_problems=settings.max_problems,
        num_threads=prof.evolve.search_threads,
    )
    metrics: dict[str, float] = {}
    for name in settings.benchmarks:
        bench = _benchmark(prof, name, settings.search_per_level if searches else None)
        with under_run(parent_run_id):
            report = run_evaluation(
                bench,
                policy,
                paths.eval_dir / f"{bench.name}-{'search' if searches else 'greedy'}",
                ppm=ppm,
                search=prof.search,
                sandbox=prof.sandbox,
                config=config,
                store=paths.store,
                round=round,
                tracking=tracking_for(prof),
                progress=progress,
            )
        metrics |= {name: v for (name, step), v in report_metrics(report).items() if step is None}
    return metrics


def register_models(
    prof: Profile, round: int, policy_path: str, ppm_path: str, parent_run_id: str | None = None
) -> dict[str, str]:
    """The round's policy and PPM as model versions ``policy`` / ``ppm`` aliased round-N."""
    tracking = tracking_for(prof)
    with under_run(parent_run_id), start_run(tracking, "register", tags={"round": round}):
        policy = register_checkpoint(tracking, POLICY_MODEL, policy_path, round)
        ppm = register_checkpoint(tracking, PPM_MODEL, ppm_path, round)
    return {"policy": policy.version, "ppm": ppm.version}


def evaluate_base(
    prof: Profile, base_path: str, parent_run_id: str | None = None, progress: bool = True
) -> dict[str, float]:
    """Round 0: the base policy's greedy accuracy, the line every round is compared with."""
    store = RoundPaths(prof.run_dir, 0).store
    with Catalog(store) as catalog:
        catalog.start_round(0, policy=base_path)
    metrics = benchmark(
        prof, 0, base_path, None, searches=False, parent_run_id=parent_run_id, progress=progress
    )
    finish_round(store, 0, metrics)
    return metrics


def complete_round(
    prof: Profile, round: int, run_id: str, stage_results: Mapping[str, Mapping[str, Any]]
) -> dict[str, float]:
    """The round's metrics on its MLflow run (with the summary plot), and the round
    recorded as completed in the catalog: the next round may start."""
    paths = RoundPaths(prof.run_dir, round)
    metrics = round_metrics(paths.store, round, stage_results)
    plot = summary_plot(metrics, round, paths.summary_plot)
    close_run(tracking_for(prof), run_id, metrics, [plot])
    finish_round(paths.store, round, metrics)
    return metrics


def open_round_run(prof: Profile, round: int, models: RoundModels) -> str:
    """The round's parent MLflow run (experiment ``evolve.experiment``); returns its id."""
    settings = prof.evolve.round(round)
    params = {"profile": prof.name, **settings.model_dump(), **models.as_params()}
    return open_run(tracking_for(prof), f"round-{round}", tags={"round": round}, params=params)


def _benchmark(prof: Profile, name: str, per_level: int | None) -> Benchmark:
    toy = ToyConfig.model_validate(prof.toy or {})
    count = per_level or prof.evolve.evaluation.greedy_per_level
    return load_benchmark(name, world=toy.world, toy_per_level=count)


def _export(prof: Profile, round: int, name: str, kind: str, select: Any) -> dict[str, Any]:
    paths = RoundPaths(prof.run_dir, round)
    with Catalog(paths.store) as catalog:
        rows: pa.Table = select(catalog, round, prof.curate)
        if not len(rows):
            raise ValueError(
                f"round {round} produced no {name} rows (no problem of {paths.problems} has a "
                "usable trajectory): there is nothing to train on. Search more problems or "
                "more rollouts (evolve.problems, evolve.rounds) or start from a stronger policy."
            )
        path = export_rows(catalog, round, name, kind, rows)
    return {"path": str(path), "rows": len(rows)}
