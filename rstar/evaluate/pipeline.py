"""One evaluation stage with file-path inputs and outputs: models in, results everywhere.

``run_evaluation`` loads a benchmark, serves the policy (and PPM) checkpoints, runs the
methods and the scaling curve, and writes:

- ``<out_dir>/summary.json`` (accuracy per method and level, the scaling curve) and
  ``<out_dir>/scaling.png``;
- per-problem results to the store's ``eval_results`` table (and the benchmark's problems
  to ``problems``, its rows without a usable gold answer to ``rejects``), the search trees
  as shards of stage ``eval`` (shard number :func:`eval_shard` of the benchmark and the
  search);
- metrics to the active MLflow experiment: ``eval/{benchmark}/{method}/accuracy``, per
  level ``eval/{benchmark}/{method}/level_{L}/accuracy``, ``.../pass_at_k`` (some
  trajectory found the gold answer), the scaling curve as ``.../scaling_accuracy`` and
  ``.../scaling_pass_at_k`` with the budget as step, and the files above as artifacts.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

from rstar.atomic import atomic_write
from rstar.evaluate.benchmarks import Benchmark
from rstar.evaluate.config import EvalConfig
from rstar.evaluate.results import EvalReport
from rstar.evaluate.runner import evaluate_problems
from rstar.evaluate.scaling import plot_scaling
from rstar.models.config import ModelConfig
from rstar.sandbox.config import SandboxConfig
from rstar.search.config import SearchConfig
from rstar.search.records import trees_to_table
from rstar.search.session import search_session
from rstar.store import EVAL, Catalog, StoreLayout, write_shard
from rstar.tracking import Tracking, log_artifact, log_metrics, start_run

SUMMARY_FILE = "summary.json"
SCALING_FILE = "scaling.png"
_METRIC_UNSAFE = re.compile(r"[^\w.\- /]")


def eval_shard(benchmark: str, search: str) -> int:
    """The shard number of the trees of one search ("mcts@8") on one benchmark.

    Stage ``eval`` of a round holds many evaluations; each gets its own stable shard, so
    a rerun replaces exactly its own trees.
    """
    return zlib.crc32(f"{benchmark}/{search}".encode()) & 0x7FFF_FFFF


def record_results(
    store: StoreLayout | str | Path,
    benchmark: Benchmark,
    report: EvalReport,
    round: int,
    write_trees: bool = True,
) -> None:
    """Problems, per-problem results and (optionally) trees of ``report`` into the store.

    Opens the catalog: call it from the one process that holds the store's catalog.
    """
    if write_trees:
        for label, results in report.searches.items():
            write_shard(
                store,
                trees_to_table(r.tree for r in results),
                round=round,
                stage=EVAL,
                shard=eval_shard(benchmark.name, label),
            )
    with Catalog(store) as catalog:
        catalog.add_problems(benchmark.problem_table())
        if len(benchmark.unscorable):
            catalog.add_rejects(benchmark.unscorable)
        for result in report.results:
            catalog.add_eval_results(result.table(round))


def metric_name(benchmark: str) -> str:
    """``benchmark`` as it appears in metric names (``eval/{name}/...``)."""
    return _METRIC_UNSAFE.sub("_", benchmark)


def report_metrics(report: EvalReport) -> dict[tuple[str, int | None], float]:
    """The metrics of ``report`` by (name, step); see the module docstring for the names."""
    bench = metric_name(report.benchmark)
    metrics: dict[tuple[str, int | None], float] = {}
    for result in report.results:
        prefix = f"eval/{bench}/{result.method}"
        metrics[(f"{prefix}/accuracy", None)] = result.accuracy
        metrics[(f"{prefix}/pass_at_k", None)] = result.pass_at_k
        for level, (n, correct) in result.by_level().items():
            metrics[(f"{prefix}/level_{level}/accuracy", None)] = correct / n
    if report.scaling is not None:
        for method, values in report.scaling.accuracy.items():
            for k, value in zip(report.scaling.budgets, values, strict=True):
                metrics[(f"eval/{bench}/{method}/scaling_accuracy", k)] = value
        for method, values in report.scaling.pass_at_k.items():
            for k, value in zip(report.scaling.budgets, values, strict=True):
                metrics[(f"eval/{bench}/{method}/scaling_pass_at_k", k)] = value
    return metrics


def write_outputs(report: EvalReport, out_dir: str | Path) -> list[Path]:
    """``summary.json`` and (with a scaling curve) ``scaling.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.summary(), indent=2) + "\n"
    atomic_write(out_dir / SUMMARY_FILE, lambda tmp: tmp.write_text(text))
    written = [out_dir / SUMMARY_FILE]
    if report.scaling is not None:
        written.append(plot_scaling(report.scaling, out_dir / SCALING_FILE))
    return written


def run_evaluation(
    benchmark: Benchmark,
    policy: ModelConfig,
    out_dir: str | Path,
    *,
    ppm: ModelConfig | None = None,
    search: SearchConfig | None = None,
    sandbox: SandboxConfig | None = None,
    config: EvalConfig | None = None,
    store: StoreLayout | str | Path | None = None,
    round: int = 0,
    tracking: Tracking | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> EvalReport:
    """Evaluate the ``policy`` (and ``ppm``) checkpoints on ``benchmark``; see the module doc.

    ``round`` is the round whose models are evaluated (0: the base policy). Without
    ``store`` nothing goes to the store; without ``tracking`` nothing to MLflow. ``threads``:
    torch CPU threads (default: all cores).
    """
    config = config or EvalConfig()
    search = search or SearchConfig()
    sandbox = sandbox or SandboxConfig()
    benchmark = benchmark.head(config.max_problems)
    with search_session(policy, ppm, sandbox, threads=threads, progress=progress) as session:
        report = evaluate_problems(
            benchmark.name,
            benchmark.problems,
            session.policy,
            session.sandbox,
            search,
            config,
            ppm=session.ppm,
            progress=progress,
        )
    files = write_outputs(report, out_dir)
    if store is not None:
        record_results(store, benchmark, report, round, config.write_trees)
    if tracking is not None:
        params = {
            "benchmark": benchmark.name,
            "problems": len(benchmark.problems),
            "policy": policy.path,
            "ppm": ppm.path if ppm else None,
            **config.model_dump(mode="json"),
        }
        with start_run(tracking, f"eval-{benchmark.name}", tags={"round": round}, params=params):
            by_step: dict[int | None, dict[str, float]] = {}
            for (name, step), value in report_metrics(report).items():
                by_step.setdefault(step, {})[name] = value
            for step, metrics in by_step.items():
                log_metrics(metrics, step=step)
            for path in files:
                log_artifact(path)
    return report
