"""The self-evolution round as a Prefect flow (docs/method.md §4), and all four
rounds in order.

    check the round has not finished here -> bootstrap policy (round 1) -> resolve models
      -> open the round's MLflow run
      -> [base policy greedy, round 1] -> [synthesis seeds -> synthesis shards (mapped),
      when the round synthesizes] -> problems -> MCTS shards (mapped)
      -> difficulty buckets -> extra rollouts on unsolved problems (mapped)
      -> SFT rows -> PPM pairs -> train policy -> train PPM
      -> benchmark (greedy, MCTS + PPM) and record it in the catalog -> register models
      (round-N; champion if the validation accuracy is not below the champion's)
      -> finish the round

The shards, the training and the evaluations go through the profile's runner (threads, or
Ray tasks with each stage's resources: flows/runners.py); the rest runs in the flow-run
process, which alone writes the catalog.

Deployed as ``evolve/round-1`` ... ``evolve/round-4`` (prefect.yaml). A failed flow run
retried from the UI or with ``prefect flow-run retry ID`` reuses every completed task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runners import check_runner, shard_runner
from rstar.evolve.round_synthesis import stage_config, total_usage
from rstar.evolve.stages import GREEDY_EVAL, SEARCH_EVAL, RunSpec
from rstar.store import SEARCH
from tasks import evolve as t


def in_waves(
    submit: Callable[[int], PrefectFuture], shards: Sequence[int], concurrency: int
) -> list[Any]:
    """Run ``submit(shard)`` for every shard, at most ``concurrency`` at once; every shard
    finishes (or fails) before the first failure is raised, so a retry redoes only it."""
    futures: list[PrefectFuture] = []
    for start in range(0, len(shards), concurrency):
        wave = [submit(shard) for shard in shards[start : start + concurrency]]
        wait(wave)
        futures += wave
    return [future.result() for future in futures]


@flow(
    name="evolve",
    flow_run_name="round-{round}",
    persist_result=True,
    task_runner=ThreadPoolTaskRunner(max_workers=8),
)
def evolve(
    round: int,
    profile: str = "tiny",
    run_dir: str | None = None,
    quick: bool = False,
    policy: str | None = None,
    ppm: str | None = None,
) -> dict[str, float]:
    """One round: search, curate, train SLM-r(N) and PPM-r(N), evaluate, register.

    Args:
        round: the round to run, 1 to 4; round N > 1 starts from round N-1's registered
            models and refuses to start until round N-1 has completed.
        profile: a shipped profile's name (tiny, qwen2.5-math-7b) or a .yaml path.
        run_dir: where the round's files and store live; default the profile's (with the
            local stack: RSTAR_RUN_DIR).
        quick: the profile's small size (CI: a few minutes a round).
        policy: the policy checkpoint to search with (a directory or models:/policy/N);
            default round N-1's registered policy (round 1: the profile's base).
        ppm: the PPM checkpoint to search with; default round N-1's registered PPM.
    """
    spec = RunSpec(profile, run_dir, quick).absolute()
    prof = spec.load()
    check_runner(prof)
    t.check_round_open(spec, round)
    concurrency = prof.evolve.concurrency
    if round == 1:
        base = t.bootstrap_policy(spec)
    models = t.resolve_models(spec, round, policy, ppm)
    run_id = t.open_round_run(spec, round, models)
    if round == 1:
        t.evaluate_base(spec, base, run_id)
    synthesized = []
    with shard_runner(prof) as submit:
        if stage_config(prof, round) is not None:
            synthesis = t.prepare_synthesis(spec, round)
            synthesized = in_waves(
                lambda shard: submit(
                    "synthesis", t.synthesize_shard, {"spec": spec, "round": round, "shard": shard}
                ),
                range(synthesis["shards"]),
                concurrency,
            )
        prepared = t.prepare_round(spec, round, models)

        def shard_task(stage: str) -> Callable[[int], PrefectFuture]:
            common = {"spec": spec, "round": round, "stage": stage, "models": models}
            return lambda shard: submit(
                "search", t.search_shard, common | {"shard": shard, "run_id": run_id}
            )

        in_waves(shard_task(SEARCH), range(prepared["shards"]), concurrency)
        for extra in range(1, prof.evolve.round(round).extra_passes + 1):
            buckets = t.bucket(spec, round, extra)
            in_waves(shard_task(buckets["stage"]), range(buckets["extra_shards"]), concurrency)
        sft = t.build_sft(spec, round)
        pairs = t.build_pairs(spec, round)
        trained = {"spec": spec, "round": round, "run_id": run_id}
        new_policy = submit(
            "train", t.train_policy, trained | {"models": models, "sft_path": sft["path"]}
        ).result()
        t.heldout_pairs(spec, models.base)
        new_ppm = submit(
            "train",
            t.train_ppm,
            trained | {"policy_path": new_policy["path"], "pairs_path": pairs["path"]},
        ).result()
        evaluated = trained | {"policy_path": new_policy["path"], "ppm_path": new_ppm["path"]}
        greedy = submit("evaluation", t.benchmark, evaluated | {"kind": GREEDY_EVAL}).result()
        t.record_benchmark(spec, round, GREEDY_EVAL)
        searched = submit("evaluation", t.benchmark, evaluated | {"kind": SEARCH_EVAL}).result()
        t.record_benchmark(spec, round, SEARCH_EVAL)
    registered = t.register_models(spec, round, new_policy["path"], new_ppm["path"], greedy, run_id)
    results = {
        "synthesis": total_usage(synthesized),
        "sft": sft,
        "pairs": pairs,
        "policy": new_policy,
        "ppm": new_ppm,
        "greedy": greedy,
        "search": searched,
        "registered": registered,
    }
    return t.finish_round(spec, round, run_id, results)


@flow(name="evolve-all", flow_run_name="rounds-{first}-to-{last}")
def evolve_all(
    profile: str = "tiny",
    run_dir: str | None = None,
    quick: bool = False,
    first: int = 1,
    last: int = 4,
) -> dict[int, dict[str, float]]:
    """Rounds ``first``..``last`` in order, each one a subflow run of ``evolve``.

    Args:
        profile: a shipped profile's name (tiny, qwen2.5-math-7b) or a .yaml path.
        run_dir: where the rounds' files and store live; default the profile's.
        quick: the profile's small size (CI: a few minutes a round).
        first: the first round to run.
        last: the last round to run.
    """
    return {
        round: evolve(round=round, profile=profile, run_dir=run_dir, quick=quick)
        for round in range(first, last + 1)
    }
