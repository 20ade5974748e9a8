"""``rstar eval``: evaluate a policy (and PPM) on a benchmark, with progress and a summary."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rstar.cli.console import console, fail, profile_or_exit
from rstar.cli.problems import ANSWER_COLUMN, QUESTION_COLUMN
from rstar.problems.layouts import choose_format
from rstar.settings import with_overrides


def eval_command(
    benchmark: str = typer.Option(
        ...,
        help="toy, a shipped benchmark (math, math500, aime2024, ...: `rstar benchmarks`) or "
        "a benchmark file (.json, .jsonl, .csv, .parquet, a saved dataset)",
    ),
    format: str | None = typer.Option(
        None, help="the file's layout: rstar, math, numina, metamath, gsm8k (default: detected)"
    ),
    question_column: str | None = QUESTION_COLUMN,
    answer_column: str | None = ANSWER_COLUMN,
    method: list[str] | None = typer.Option(
        None, help="method (repeatable): greedy, mcts, mcts_vote, best_of_n, majority, beam"
    ),
    trajectories: int | None = typer.Option(None, help="trajectories per problem (k)"),
    scaling: str | None = typer.Option(
        None, help="budgets of the scaling curve, e.g. 1,2,4,8 ('' for none)"
    ),
    policy: Path | None = typer.Option(None, help="policy checkpoint (default: the profile's)"),
    ppm: Path | None = typer.Option(None, help="PPM checkpoint (default: the profile's)"),
    round: int = typer.Option(0, help="the round whose models are evaluated (0 = base)"),
    max_problems: int | None = typer.Option(None, help="only the first N problems"),
    out: Path | None = typer.Option(
        None,
        help="folder for summary.json and scaling.png (default <run_dir>/round-R/eval/B)",
    ),
    store: bool = typer.Option(True, help="record results and trees in the run's store"),
    track: bool = typer.Option(True, help="log to MLflow"),
    threads: int | None = typer.Option(
        None, help="torch CPU threads (default: the profile's, else all)"
    ),
    profile: str = typer.Option("tiny", help="profile name or .yaml path"),
) -> None:
    """Evaluate on a benchmark: accuracy per method (and level), the test-time scaling curve."""
    from rstar.evaluate.benchmarks import load_benchmark
    from rstar.evaluate.methods import ppm_methods
    from rstar.evaluate.pipeline import SCALING_FILE, SUMMARY_FILE, run_evaluation
    from rstar.evaluate.runner import MissingPPMError
    from rstar.store import RunLayout

    prof = profile_or_exit(profile)
    try:
        config = with_overrides(
            prof.eval,
            methods=tuple(method) if method else None,
            trajectories=trajectories,
            scaling=None if scaling is None else _budgets(scaling),
            max_problems=max_problems,
        )
        bench = load_benchmark(
            benchmark,
            world=prof.toy.world if prof.toy else None,
            toy_per_level=config.toy_per_level,
            format=choose_format(format, question_column, answer_column),
        )
        policy_entry = prof.policy.at(policy) if policy else prof.policy
        policy_entry.local_path()
        # the profile's PPM only where a method chooses with it: greedy needs none
        ppm_entry = prof.ppm_at(ppm) if ppm else prof.ppm if ppm_methods(config) else None
        if ppm_entry is not None:
            ppm_entry.local_path()
    except ValueError as exc:  # ProfileError, SourceError, pydantic's ValidationError
        raise fail(exc) from exc
    layout = RunLayout(prof.run_dir)
    out = out or layout.round(round).eval_dir(bench.name)
    console.print(
        f"evaluating {policy_entry.path}"
        + (f" with PPM {ppm_entry.path}" if ppm_entry else "")
        + f" on {bench.name} ({len(bench.head(config.max_problems).problems)} problems): "
        + ", ".join(config.methods)
        + f" at k={config.trajectories}"
    )
    try:
        report = run_evaluation(
            bench,
            policy_entry,
            out,
            ppm=ppm_entry,
            search=prof.search,
            sandbox=prof.sandbox,
            config=config,
            store=layout.store if store else None,
            round=round,
            tracking=prof.resolved_tracking() if track else None,
            threads=threads or prof.threads,
        )
    except MissingPPMError as exc:
        raise fail(exc) from exc
    _print_summary(report)
    if report.unscorable:
        reasons = ", ".join(f"{n} {why}" for why, n in bench.unscorable_reasons().items())
        console.print(
            f"[yellow]{report.unscorable} of {report.num_problems} problems have no usable gold "
            f"answer and count as wrong[/yellow] ({reasons}; rows in the store's rejects table)"
        )
    if report.scaling is not None:
        console.print(f"scaling curve: {out / SCALING_FILE}")
    console.print(f"summary: {out / SUMMARY_FILE}")


def _budgets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"--scaling takes comma-separated integers, got {text!r}") from exc


def _print_summary(report) -> None:
    levels = sorted({level for r in report.results for level in r.by_level()})
    table = Table("method", "accuracy", *[f"level {lv}" for lv in levels], "seconds")
    for result in report.results:
        by_level = result.by_level()
        cells = [
            f"{by_level[lv][1] / by_level[lv][0]:.1%}" if lv in by_level else "-" for lv in levels
        ]
        table.add_row(
            result.label,
            f"{result.accuracy:.1%} ({result.correct}/{len(result.results)})",
            *cells,
            f"{result.seconds:.0f}",
        )
    console.print(table)
    if report.scaling is not None:
        curve = Table("method", *[f"k={k}" for k in report.scaling.budgets])
        for method, values in report.scaling.accuracy.items():
            curve.add_row(method, *[f"{v:.1%}" for v in values])
        console.print(curve)


def benchmarks_command() -> None:
    """List the named benchmarks: rows (every one counts in the denominator), rows with a
    usable gold answer, and where each comes from (docs/evaluation-data.md)."""
    from rstar.evaluate.benchmarks import PAPER_BENCHMARKS, TOY, TOY_VAL, load_benchmark

    table = Table("name", "rows", "scorable", "what", "license")
    for info in PAPER_BENCHMARKS.values():
        bench = load_benchmark(info.name)
        table.add_row(
            info.name, str(len(bench.problems)), str(bench.scorable), info.title, info.license
        )
    table.add_row(TOY, "by level", "all", "the toy world's held-out test set", "-")
    table.add_row(TOY_VAL, "by level", "all", "the toy world's validation set", "-")
    console.print(table)
