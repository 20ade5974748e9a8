"""The stages of one self-evolution round, each a function an orchestrator calls as one task.

Inputs are the profile (name or path, run directory, size) and small values; outputs are
small JSON-ready dicts (counts, paths, metrics). Every stage is idempotent: it writes whole
files atomically (a rerun replaces them) and the catalog is opened only by the stages that
run one at a time, never by the search shards, which may run in parallel.

    bootstrap_policy -> prepare_round -> search_shard* (search) -> bucket
        -> search_shard* (extra_rollouts) -> build_sft -> build_pairs
        -> train_round_policy -> train_round_ppm -> benchmark (greedy, search)
        -> register_models -> finish_round
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from rstar import __version__
from rstar.atomic import atomic_dir, atomic_write
from rstar.config import Profile, load_profile
from rstar.curate import data_funnel, difficulty_counts, hard_problems, select_pairs, select_sft
from rstar.curate.export import export_rows
from rstar.evaluate.benchmarks import Benchmark, load_benchmark
from rstar.evaluate.pipeline import (
    RECORDS_DIR,
    load_records,
    metric_name,
    report_metrics,
    run_evaluation,
)
from rstar.evolve.heldout_pairs import build_heldout_pairs
from rstar.evolve.progress import write_round_metrics
from rstar.evolve.report import (
    HEADLINE,
    curve_metrics,
    learning_curves,
    round_metrics,
    rounds_markdown,
    summary_plot,
)
from rstar.evolve.round_models import RoundModels
from rstar.evolve.round_problems import (
    register_problems,
    shard_count,
    shard_problems,
    source_problems,
    write_problems,
)
from rstar.evolve.round_synthesis import stage_config, synthesis_plot, synthesized_problems
from rstar.evolve.round_trees import write_round_trees
from rstar.runtime import torch_threads
from rstar.search import MCTS
from rstar.search.records import trees_to_table
from rstar.search.session import search_session
from rstar.settings import with_overrides
from rstar.store import (
    TRAINING_STAGES,
    Catalog,
    RunLayout,
    extra_index,
    finished_rounds,
    search_stage,
    write_shard,
)
from rstar.store.layout import GREEDY_EVAL, SEARCH_EVAL
from rstar.toy.bootstrap import bootstrap
from rstar.tracking import (
    GIT_COMMIT_TAG,
    POLICY_MODEL,
    PPM_MODEL,
    close_run,
    log_curve,
    log_datasets,
    log_metrics,
    log_run_artifacts,
    open_run,
    promote,
    register_checkpoint,
    run_url,
    source_commit,
    start_run,
    under_run,
)
from rstar.train.ppm import train_ppm
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

    def absolute(self) -> RunSpec:
        """The same run with a profile file and the run directory as absolute paths, so that
        a task resolves them alike in any working directory (a shard on another node)."""
        profile = Path(self.profile)
        named = profile.suffix in {".yaml", ".yml"} and profile.is_file()
        return RunSpec(
            str(profile.resolve()) if named else self.profile,
            str(Path(self.load().run_dir).resolve()),
            self.quick,
        )


class NoTrainingDataError(ValueError):
    """A round's search left nothing to train on; raised before any training starts."""


def bootstrap_policy(prof: Profile, progress: bool = True) -> str:
    """The round-1 base policy: the toy profile builds it when it is missing (atomically:
    a crash leaves no half checkpoint); other profiles must point at an existing model."""
    target, toy = Path(prof.policy.path), prof.toy
    if toy is None or (target / "config.json").is_file():
        return str(prof.policy.local_path())
    with torch_threads(prof.threads):
        atomic_dir(target, lambda tmp: bootstrap(tmp, toy.world, toy.bootstrap, progress=progress))
    return str(target)


def prepare_round(
    prof: Profile, round: int, models: RoundModels, progress: bool = True
) -> dict[str, int]:
    """Write the round's problem file, add the problems and the rows left out of the
    problem files (rejects: bad, duplicate, benchmark questions) to the catalog, mark the
    round started."""
    layout = RunLayout(prof.run_dir)
    loaded = source_problems(prof, round, progress)
    synthetic, contaminated = synthesized_problems(prof, round, loaded.problems)
    if len(synthetic):
        problems = pa.concat_tables([loaded.problems, synthetic]).sort_by("problem_id")
        loaded = replace(loaded, problems=problems)
    rows = write_problems(loaded.problems, layout.round(round).problems)
    register_problems(layout.store, loaded)
    with Catalog(layout.store) as catalog:
        catalog.start_round(
            round, policy=models.search_policy.path, ppm=models.ppm.path if models.ppm else None
        )
    return {
        "problems": rows,
        "shards": shard_count(rows, prof.evolve.shard_size),
        "rejected": len(loaded.rejects),
        "contaminated": sum(loaded.report.contaminated.values()) + contaminated,
        "synthetic": len(synthetic),
    }


def search_shard(
    prof: Profile,
    round: int,
    stage: str,
    shard: int,
    models: RoundModels,
    *,
    parent_run_id: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """MCTS (data generation: gold answers grade the terminals) over one shard of the
    round's problems (``stage`` search), or of its unsolved ones (``stage`` extra_rollouts,
    then escalation_1, 2...: each on what is still unsolved after the ones before); the
    trees become one Parquet shard of that stage, replacing an earlier attempt's."""
    layout = RunLayout(prof.run_dir)
    if stage not in TRAINING_STAGES:
        raise ValueError(f"stage must be one of {TRAINING_STAGES}, got {stage!r}")
    extra = extra_index(stage)
    files = layout.round(round)
    source = files.extra_problems(extra) if extra else files.problems
    problems = shard_problems(source, shard, prof.evolve.shard_size)
    search = prof.round_search(round, extra=extra)
    seed = search.seed + 1_000_003 * round + 7919 * shard + extra
    search = search.model_copy(update={"seed": seed})
    started = time.perf_counter()
    models = models.resolved(prof.resolved_tracking().tracking_uri)
    with search_session(
        models.search_policy, models.ppm, prof.sandbox, threads=prof.threads, progress=progress
    ) as session:
        mcts = MCTS(session.policy, session.sandbox, search, ppm=session.ppm, progress=progress)
        results = mcts.search(problems)
    info = write_shard(
        layout.store, trees_to_table(r.tree for r in results), round=round, stage=stage, shard=shard
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
    tracking = prof.resolved_tracking()
    with under_run(parent_run_id), start_run(tracking, f"{stage}-shard-{shard}"):
        log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float)})
    return summary


def bucket(prof: Profile, round: int, extra: int = 1) -> dict[str, int]:
    """Difficulty of the round's problems from their trees so far (easy: every answered
    trajectory correct, medium: some, hard: none) and the file of the hard ones for the
    ``extra``-th search of unsolved problems (1: the extra search, 2...: escalation)."""
    layout = RunLayout(prof.run_dir)
    with Catalog(layout.store) as catalog:
        counts = difficulty_counts(catalog, round)
        hard = hard_problems(catalog, round)
    shards = 0
    if extra <= prof.evolve.round(round).extra_passes and len(hard):
        write_problems(hard, layout.round(round).extra_problems(extra))
        shards = shard_count(len(hard), prof.evolve.shard_size)
    return {**counts, "extra_shards": shards, "stage": search_stage(extra)}


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
    out = RunLayout(prof.run_dir).round(round).policy
    models = models.resolved(prof.resolved_tracking().tracking_uri)
    init = policy_init(prof.train.policy, models.base, models.previous_policy)
    with under_run(parent_run_id), torch_threads(prof.threads):
        result = train_policy(
            sft_path,
            init,
            out,
            prof.train.policy,
            tracking=prof.resolved_tracking(),
            progress=progress,
        )
    return {"path": str(out), "init": str(init), **result.metrics, "rows": result.rows}


def heldout_pairs(prof: Profile, base_path: str, progress: bool = True) -> dict[str, Any]:
    """The run's fixed held-out PPM pairs (rstar.evolve.heldout_pairs), built once."""
    path = build_heldout_pairs(prof, base_path, progress)
    if path is None:
        return {"path": None, "pairs": 0}
    return {"path": str(path), "pairs": path.read_text().count("\n")}


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
    layout = RunLayout(prof.run_dir)
    out, fixed = layout.round(round).ppm, layout.heldout_pairs
    with under_run(parent_run_id), torch_threads(prof.threads):
        result = train_ppm(
            pairs_path,
            policy_path,
            out,
            prof.train.ppm,
            fixed_pairs=fixed if fixed.is_file() else None,
            tracking=prof.resolved_tracking(),
            progress=progress,
        )
    return {"path": str(out), **result.metrics}


def _benchmarks(prof: Profile, kind: str) -> list[Benchmark]:
    """The profile's ``eval.benchmarks`` at the size of evaluation ``kind``."""
    if kind not in (GREEDY_EVAL, SEARCH_EVAL):
        raise ValueError(f"kind must be {GREEDY_EVAL} or {SEARCH_EVAL}, got {kind!r}")
    settings = prof.eval
    searches = kind == SEARCH_EVAL
    per_level = (settings.toy_search_per_level if searches else None) or settings.toy_per_level
    world = prof.toy.world if prof.toy else None
    return [
        load_benchmark(name, world=world, toy_per_level=per_level) for name in settings.benchmarks
    ]


def benchmark(
    prof: Profile,
    round: int,
    kind: str,
    policy_path: str,
    ppm_path: str | None,
    *,
    parent_run_id: str | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Evaluation ``kind`` of the round's models on each of ``eval.benchmarks``: greedy
    pass@1 (``greedy``), or the budgeted methods of ``eval.methods``, MCTS + PPM choosing
    among k trajectories... (``search``). Round 0 is the base policy. Writes files only
    (trees as store shards, rows as records for :func:`record_benchmark`), so it runs on
    any node that sees the run directory; returns the accuracies (overall, pass@k, per
    level) under the names of ``rstar.evaluate.pipeline.report_metrics``."""
    searches = kind == SEARCH_EVAL
    settings = prof.eval
    config = with_overrides(
        settings,
        methods=settings.budgeted_methods() if searches else (GREEDY_EVAL,),
        scaling=settings.scaling if searches else (),
    )
    layout = RunLayout(prof.run_dir)
    metrics: dict[str, float] = {}
    for bench in _benchmarks(prof, kind):
        with under_run(parent_run_id):
            report = run_evaluation(
                bench,
                prof.policy.at(policy_path),
                layout.round(round).eval_dir(bench.name, kind),
                ppm=prof.ppm_at(ppm_path) if ppm_path else None,
                search=prof.search,
                sandbox=prof.sandbox,
                config=config,
                store=layout.store,
                catalog=False,
                round=round,
                tracking=prof.resolved_tracking(),
                threads=prof.threads,
                progress=progress,
            )
        metrics |= {name: v for (name, step), v in report_metrics(report).items() if step is None}
    return metrics


def record_benchmark(prof: Profile, round: int, kind: str) -> int:
    """The rows :func:`benchmark` wrote for evaluation ``kind`` into the catalog (from the
    process that holds it); returns how many benchmarks were recorded."""
    layout = RunLayout(prof.run_dir)
    benches = _benchmarks(prof, kind)
    for bench in benches:
        load_records(layout.store, layout.round(round).eval_dir(bench.name, kind) / RECORDS_DIR)
    return len(benches)


def register_models(
    prof: Profile,
    round: int,
    policy_path: str,
    ppm_path: str,
    greedy: Mapping[str, float],
    parent_run_id: str | None = None,
) -> dict[str, Any]:
    """The round's policy and PPM as model versions ``policy`` / ``ppm`` aliased round-N,
    and aliased ``champion`` too when their greedy accuracy on ``evolve.promote_on`` (from
    ``greedy``, the round's greedy evaluation) is not below the champion's."""
    tracking = prof.resolved_tracking()
    gate = f"eval/{metric_name(prof.promotion_benchmark())}/greedy/accuracy"
    if gate not in greedy:
        raise KeyError(f"the round's greedy evaluation has no {gate} (evolve.promote_on)")
    accuracies = ", ".join(
        f"{name.split('/')[1]} {100 * value:.1f} %"
        for name, value in greedy.items()
        if name.count("/") == 3 and name.endswith("/greedy/accuracy")
    )
    about = f"round {round} of {prof.name}; the policy's greedy accuracy: {accuracies}"
    with under_run(parent_run_id), start_run(tracking, "register", tags={"round": round}):
        policy = register_checkpoint(
            tracking, POLICY_MODEL, policy_path, round, f"SLM-r{round}, {about}"
        )
        ppm = register_checkpoint(tracking, PPM_MODEL, ppm_path, round, f"PPM-r{round}, {about}")
    versions = {POLICY_MODEL: policy.version, PPM_MODEL: ppm.version}
    promoted = promote(tracking, versions, greedy[gate], gate)
    return {"policy": policy.version, "ppm": ppm.version, "champion": promoted}


def evaluate_base(
    prof: Profile, base_path: str, parent_run_id: str | None = None, progress: bool = True
) -> dict[str, float]:
    """Round 0: the base policy's greedy accuracy, the line every round is compared with."""
    store = RunLayout(prof.run_dir).store
    with Catalog(store) as catalog:
        catalog.start_round(0, policy=base_path)
    metrics = benchmark(
        prof, 0, GREEDY_EVAL, base_path, None, parent_run_id=parent_run_id, progress=progress
    )
    record_benchmark(prof, 0, GREEDY_EVAL)
    log_curve(prof.resolved_tracking(), 0, curve_metrics(metrics))
    with Catalog(store) as catalog:
        catalog.finish_round(0, metrics)
    write_round_metrics(RunLayout(prof.run_dir), 0, metrics)
    return metrics


def finish_round(
    prof: Profile, round: int, run_id: str, stage_results: Mapping[str, Mapping[str, Any]]
) -> dict[str, float]:
    """The round's metrics on its MLflow run (with the summary plot), and the round
    recorded as finished in the catalog: the next round may start."""
    layout, tracking = RunLayout(prof.run_dir), prof.resolved_tracking()
    files = layout.round(round)
    metrics = round_metrics(layout.store, round, stage_results)
    plot = summary_plot(metrics, round, files.summary_plot)
    curves = learning_curves(
        finished_rounds(layout.store) | {round: metrics}, layout.learning_curves
    )
    synthesis = synthesis_plot(layout.store, round, files.synthesis_plot)
    plots = [plot, curves] + ([synthesis] if synthesis is not None else [])
    with Catalog(layout.store) as catalog:
        trees = write_round_trees(catalog, round, files.trees_dir)
    datasets = [
        ("problems", files.problems, "search"),
        ("sft", layout.store.dataset_path(round, "sft"), "training"),
        ("ppm_pairs", layout.store.dataset_path(round, "ppm_pairs"), "training"),
    ]
    log_datasets(tracking, run_id, datasets)
    close_run(tracking, run_id, metrics, plots, {"trees": trees})
    log_curve(tracking, round, curve_metrics(metrics), [curves])
    with Catalog(layout.store) as catalog:
        catalog.finish_round(round, metrics)
    write_round_metrics(layout, round, metrics)
    return metrics


def round_results(
    prof: Profile, round: int, run_id: str, metrics: Mapping[str, float]
) -> dict[str, Any]:
    """What a finished round shows where it ran (the Prefect UI's artifacts): the
    per-round table so far in Markdown, the round's key numbers (percentages and counts),
    and its MLflow run (``mlflow_url`` when the tracking URI is a server, else None)."""
    tracking = prof.resolved_tracking()
    numbers = [
        {"number": label, "value": f"{100 * metrics[key]:.1f} %"}
        for label, key in HEADLINE.items()
        if key in metrics
    ]
    numbers += [
        {"number": label, "value": f"{metrics[key]:.0f}"}
        for label, key in (("SFT rows", "sft_rows"), ("PPM pairs", "pairs"))
        if key in metrics
    ]
    return {
        "table": rounds_markdown(finished_rounds(RunLayout(prof.run_dir).store)),
        "numbers": numbers,
        "mlflow_run": run_id,
        "mlflow_url": run_url(tracking, run_id),
        "tracking_uri": tracking.tracking_uri,
    }


def open_round_run(prof: Profile, round: int, models: RoundModels) -> str:
    """The round's parent MLflow run (experiment ``tracking.experiment``); returns its id."""
    settings = prof.evolve.round(round)
    params = {"profile": prof.name, **settings.model_dump(), **models.as_params()}
    if (synthesis := stage_config(prof, round)) is not None:  # names and sizes, never the key
        params |= {
            "synthesis_teacher": synthesis.teacher.path,
            "synthesis_base_url": synthesis.teacher.base_url,
            "synthesis_min_agree": synthesis.filter.min_agree,
            "synthesis_num_solutions": synthesis.filter.num_solutions,
        }
    tracking = prof.resolved_tracking()
    tags: dict[str, Any] = {"round": round, "rstar.version": __version__}
    if (commit := source_commit()) is not None:
        tags[GIT_COMMIT_TAG] = commit
    run_id = open_run(tracking, f"round-{round}", tags=tags, params=params)
    resolved = RunLayout(prof.run_dir).round(round).profile
    text = yaml.safe_dump(prof.model_dump(mode="json"), sort_keys=False)
    atomic_write(resolved, lambda tmp: tmp.write_text(text))
    log_run_artifacts(tracking, run_id, [resolved])
    return run_id


def _export(prof: Profile, round: int, name: str, kind: str, select: Any) -> dict[str, Any]:
    layout = RunLayout(prof.run_dir)
    with Catalog(layout.store) as catalog:
        rows: pa.Table = select(catalog, round, prof.curate)
        if not len(rows):
            funnel = data_funnel(catalog, round, prof.curate.negatives)
            raise NoTrainingDataError(
                f"round {round} produced no {name} rows, so nothing is trained or registered. "
                f"Problems of {layout.round(round).problems}: "
                + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in funnel.items())
                + f" (curate.negatives: {prof.curate.negatives}). Search problems the policy "
                "solves sometimes (evolve.problems), more rollouts (evolve.rounds.N.search, "
                ".extra), or start from a stronger policy."
            )
        path = export_rows(catalog, round, name, kind, rows)
    return {"path": str(path), "rows": len(rows)}
