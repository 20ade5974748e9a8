"""One Prefect task per stage of a round: each loads the profile and calls ``rstar.evolve``.

Every task persists its result, and the default cache key (inputs, task source, flow run
id) makes a retried flow run (the UI's Retry, ``prefect flow-run retry ID``) reuse the
results of its completed tasks: only what failed, and what depends on it, runs again.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from rstar.evolve import progress, round_models, round_synthesis, stages
from rstar.evolve.round_models import RoundModels
from rstar.evolve.stages import RunSpec
from rstar.store import RunLayout

# Test-only switch: "ROUND:STAGE:SHARD" makes that search shard fail on its first attempt
# (a marker file in the run directory remembers the attempt), to exercise flow retries.
FAIL_ONCE_ENV = "RSTAR_TEST_FAIL_SHARD_ONCE"

persisted = task(persist_result=True)


def _fail_once(spec: RunSpec, round: int, stage: str, shard: int) -> None:
    if os.environ.get(FAIL_ONCE_ENV) != f"{round}:{stage}:{shard}":
        return
    marker = RunLayout(spec.load().run_dir).round(round).dir / f".failed-once-{stage}-{shard}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        raise RuntimeError(f"test-only failure of {stage} shard {shard} ({FAIL_ONCE_ENV})")


@persisted(task_run_name="check-round-{round}-is-open")
def check_round_open(spec: RunSpec, round: int) -> None:
    progress.check_round_open(RunLayout(spec.load().run_dir), round)


@persisted(task_run_name="bootstrap-policy")
def bootstrap_policy(spec: RunSpec) -> str:
    return stages.bootstrap_policy(spec.load())


@persisted(task_run_name="resolve-models-round-{round}")
def resolve_models(spec: RunSpec, round: int, policy: str | None, ppm: str | None) -> RoundModels:
    return round_models.round_models(spec.load(), round, policy=policy, ppm=ppm)


@persisted(task_run_name="open-round-run-{round}")
def open_round_run(spec: RunSpec, round: int, models: RoundModels) -> str:
    return stages.open_round_run(spec.load(), round, models)


@persisted(task_run_name="evaluate-base-policy")
def evaluate_base(spec: RunSpec, base_path: str, run_id: str) -> dict[str, float]:
    return stages.evaluate_base(spec.load(), base_path, run_id)


@persisted(task_run_name="prepare-synthesis-round-{round}")
def prepare_synthesis(spec: RunSpec, round: int) -> dict[str, int]:
    return round_synthesis.prepare_synthesis(spec.load(), round)


@persisted(task_run_name="synthesize-round-{round}-shard-{shard}")
def synthesize_shard(spec: RunSpec, round: int, shard: int) -> dict[str, int]:
    """New problems from one seed shard through the teacher; a retry skips what was judged."""
    done = round_synthesis.synthesize_shard(spec.load(), round, shard, progress=False)
    get_run_logger().info(
        "shard %d: %d candidates judged now from %d seeds; %d requests, %d prompt and %d "
        "completion tokens",
        shard,
        done["judged"],
        done["seeds"],
        done["requests"],
        done["prompt_tokens"],
        done["completion_tokens"],
    )
    return done


@persisted(task_run_name="prepare-round-{round}")
def prepare_round(spec: RunSpec, round: int, models: RoundModels) -> dict[str, int]:
    prepared = stages.prepare_round(spec.load(), round, models)
    get_run_logger().info(
        "round %d searches %d problems (%d synthesized) in %d shards; %d input rows left out "
        "(%d benchmark questions): the catalog's rejects table says which and why",
        round,
        prepared["problems"],
        prepared["synthetic"],
        prepared["shards"],
        prepared["rejected"],
        prepared["contaminated"],
    )
    return prepared


@persisted(task_run_name="{stage}-round-{round}-shard-{shard}")
def search_shard(
    spec: RunSpec, round: int, stage: str, shard: int, models: RoundModels, run_id: str
) -> dict[str, Any]:
    """MCTS over one shard: ``stage`` "search" (all problems), "extra_rollouts" (those left
    unsolved) or "escalation_K" (those still unsolved)."""
    _fail_once(spec, round, stage, shard)
    return stages.search_shard(spec.load(), round, stage, shard, models, parent_run_id=run_id)


@persisted(task_run_name="bucket-difficulty-round-{round}-for-extra-search-{extra}")
def bucket(spec: RunSpec, round: int, extra: int = 1) -> dict[str, int]:
    return stages.bucket(spec.load(), round, extra)


@persisted(task_run_name="build-sft-round-{round}")
def build_sft(spec: RunSpec, round: int) -> dict[str, Any]:
    return stages.build_sft(spec.load(), round)


@persisted(task_run_name="build-pairs-round-{round}")
def build_pairs(spec: RunSpec, round: int) -> dict[str, Any]:
    return stages.build_pairs(spec.load(), round)


@persisted(task_run_name="train-policy-round-{round}")
def train_policy(
    spec: RunSpec, round: int, models: RoundModels, sft_path: str, run_id: str
) -> dict[str, Any]:
    return stages.train_round_policy(spec.load(), round, models, sft_path, parent_run_id=run_id)


@persisted(task_run_name="heldout-pairs")
def heldout_pairs(spec: RunSpec, base_path: str) -> dict[str, Any]:
    return stages.heldout_pairs(spec.load(), base_path)


@persisted(task_run_name="train-ppm-round-{round}")
def train_ppm(
    spec: RunSpec, round: int, policy_path: str, pairs_path: str, run_id: str
) -> dict[str, Any]:
    return stages.train_round_ppm(spec.load(), round, policy_path, pairs_path, parent_run_id=run_id)


@persisted(task_run_name="benchmark-round-{round}-{kind}")
def benchmark(
    spec: RunSpec, round: int, kind: str, policy_path: str, ppm_path: str, run_id: str
) -> dict[str, float]:
    """Evaluation ``kind`` ("greedy" or "search") of the round's models (files only)."""
    return stages.benchmark(spec.load(), round, kind, policy_path, ppm_path, parent_run_id=run_id)


@persisted(task_run_name="record-benchmark-round-{round}-{kind}")
def record_benchmark(spec: RunSpec, round: int, kind: str) -> int:
    """Evaluation ``kind``'s per-problem rows into the catalog (the orchestrator's job)."""
    return stages.record_benchmark(spec.load(), round, kind)


@persisted(task_run_name="register-models-round-{round}")
def register_models(
    spec: RunSpec,
    round: int,
    policy_path: str,
    ppm_path: str,
    greedy: dict[str, float],
    run_id: str,
) -> dict[str, Any]:
    return stages.register_models(spec.load(), round, policy_path, ppm_path, greedy, run_id)


@persisted(task_run_name="finish-round-{round}")
def finish_round(
    spec: RunSpec, round: int, run_id: str, results: dict[str, dict[str, Any]]
) -> dict[str, float]:
    """The round's metrics recorded, and its results as artifacts of its flow run."""
    prof = spec.load()
    metrics = stages.finish_round(prof, round, run_id, results)
    _publish(round, stages.round_results(prof, round, run_id, metrics))
    return metrics


def _publish(round: int, results: dict[str, Any]) -> None:
    """The Prefect UI's view of a round: the per-round table, its key numbers, its MLflow run."""
    create_markdown_artifact(
        results["table"],
        key="rounds-table",
        description=f"the rounds so far, after round {round}",
    )
    create_table_artifact(
        results["numbers"], key=f"round-{round}-numbers", description=f"round {round}: key numbers"
    )
    if results["mlflow_url"] is not None:
        create_link_artifact(
            results["mlflow_url"],
            link_text=f"round {round} in MLflow",
            key=f"round-{round}-mlflow",
            description="the round's MLflow run: metrics, plots, child runs",
        )
    else:  # a file tracking store has no page to link to
        create_markdown_artifact(
            f"MLflow run `{results['mlflow_run']}` in `{results['tracking_uri']}`; to browse it: "
            f"`mlflow ui --backend-store-uri {results['tracking_uri']}`",
            key=f"round-{round}-mlflow",
        )
