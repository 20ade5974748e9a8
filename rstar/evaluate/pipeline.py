"""One evaluation stage with file-path inputs and outputs: models in, results everywhere.

``run_evaluation`` loads a benchmark, serves the policy (and PPM) checkpoints, runs the
methods and the scaling curve, and writes:

- ``<out_dir>/summary.json`` (accuracy per method and level, the scaling curve) and
  ``<out_dir>/scaling.png``;
- per-problem results to the store's ``eval_results`` table (and the benchmark's problems
  to ``problems``, its rows without a usable gold answer to ``rejects``), the search trees
  as shards of stage ``eval`` (shard number :func:`eval_shard` of the benchmark and the
  search). In two steps, so that the evaluation can run on any node that sees the run
  directory: :func:`write_records` writes Parquet files only (the trees as shards, the
  rows under ``<out_dir>/records/``), and :func:`load_records` adds the rows to the
  catalog, from the one process that holds it;
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

import pyarrow as pa
import pyarrow.parquet as pq

from rstar.atomic import atomic_dir, atomic_write
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
RECORDS_DIR = "records"  # under an evaluation's out_dir: the rows for the catalog
_RECORD_TABLES = ("problems", "results", "rejects")
_METRIC_UNSAFE = re.compile(r"[^\w.\- /]")


def eval_shard(benchmark: str, search: str) -> int:
    """The shard number of the trees of one search ("mcts@8") on one benchmark.

    Stage ``eval`` of a round holds many evaluations; each gets its own stable shard, so
    a rerun replaces exactly its own trees.
    """
    return zlib.crc32(f"{benchmark}/{search}".encode()) & 0x7FFF_FFFF


def write_records(
    store: StoreLayout | str | Path,
    benchmark: Benchmark,
    report: EvalReport,
    round: int,
    out_dir: str | Path,
    write_trees: bool = True,
) -> Path:
    """The trees of ``report`` as store shards (optionally), and its problems, per-problem
    results and rejects as Parquet files in ``<out_dir>/records/`` (a directory written
    whole). Files only: safe on any node that sees the run directory. Returns the
    records directory, for :func:`load_records`."""
    if write_trees:
        for label, results in report.searches.items():
            write_shard(
                store,
                trees_to_table(r.tree for r in results),
                round=round,
                stage=EVAL,
                shard=eval_shard(benchmark.name, label),
            )
    tables = {
        "problems": benchmark.problem_table(),
        "results": pa.concat_tables([r.table(round) for r in report.results])
        if report.results
        else None,
        "rejects": benchmark.unscorable if len(benchmark.unscorable) else None,
    }

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        for name, table in tables.items():
            if table is not None:
                pq.write_table(table, tmp / f"{name}.parquet")

    records = Path(out_dir) / RECORDS_DIR
    atomic_dir(records, write)
    return records


def load_records(store: StoreLayout | str | Path, records: str | Path) -> None:
    """The rows :func:`write_records` wrote into the store's catalog (a rerun replaces,
    never duplicates). Opens the catalog: call it from the one process that holds it."""
    records = Path(records)
    if not records.is_dir():
        raise FileNotFoundError(
            f"{records}: no evaluation records here; run the evaluation that writes them first"
        )
    tables = {
        name: pq.read_table(records / f"{name}.parquet")
        for name in _RECORD_TABLES
        if (records / f"{name}.parquet").is_file()
    }
    with Catalog(store) as catalog:
        catalog.add_problems(tables["problems"])
        if "rejects" in tables:
            catalog.add_rejects(tables["rejects"])
        if "results" in tables:
            catalog.add_eval_results(tables["results"])


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
    catalog: bool = True,
    round: int = 0,
    tracking: Tracking | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> EvalReport:
    """Evaluate the ``policy`` (and ``ppm``) checkpoints on ``benchmark``; see the module doc.

    ``round`` is the round whose models are evaluated (0: the base policy). Without
    ``store`` nothing goes to the store; with ``catalog=False`` the rows are written as
    files (:func:`write_records`) for the caller to :func:`load_records`. Without
    ``tracking`` nothing goes to MLflow. ``threads``: torch CPU threads (default: all cores).
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
        records = write_records(store, benchmark, report, round, out_dir, config.write_trees)
        if catalog:
            load_records(store, records)
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
