"""``rstar problems ...``: load problem files into a run's store; synthesize new problems."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from rstar.cli.console import console, fail, profile_or_exit
from rstar.problems.layouts import FORMATS, choose_format
from rstar.problems.loading import LoadResult, ProblemSource, load_problems
from rstar.problems.readers import SourceError

if TYPE_CHECKING:
    from rstar.problems.synthesis import SynthesisPlan

problems_app = typer.Typer(
    help="Math problems in: load files into the run's store, synthesize new ones.",
    no_args_is_help=True,
)

PROFILE = typer.Option("tiny", help="profile name or .yaml path (its run_dir holds the store)")
RUN_DIR = typer.Option(None, help="run directory (default: the profile's)")
DECONTAMINATE = typer.Option(
    None,
    help="benchmark (name or file) whose questions are left out (repeatable); default: "
    "every shipped benchmark (`rstar benchmarks`)",
)
NO_DECONTAMINATE = typer.Option(False, "--no-decontaminate", help="keep benchmark questions")
NGRAM = typer.Option(13, min=1, help="n of the n-gram overlap test")
QUESTION_COLUMN = typer.Option(
    None, help="the question column (with --answer-column: a layout of your own)"
)
ANSWER_COLUMN = typer.Option(None, help="the final-answer column, answers as given")


def _load(
    sources: list[ProblemSource], decontaminate: list[str] | None, off: bool, ngram: int
) -> LoadResult:
    """Load ``sources``, leaving out the questions of the chosen benchmarks."""
    from rstar.evaluate.benchmarks import TOY, TOY_VAL, benchmark_names, decontaminator

    toy = (TOY, TOY_VAL)
    chosen = [] if off else decontaminate or [b for b in benchmark_names() if b not in toy]
    try:
        return load_problems(sources, decontaminator=decontaminator(chosen, ngram))
    except (SourceError, ValueError) as exc:
        raise fail(exc) from exc


def _report(loaded: LoadResult, new: int) -> None:
    report = loaded.report
    table = Table(title="problem load", show_header=False)
    table.add_row("rows read", str(report.read))
    table.add_row("problems kept", str(report.kept))
    table.add_row("new in the catalog", str(new))
    for source, fmt in report.formats.items():
        table.add_row(f"format of {source}", fmt)
    for reason, count in report.rejected.most_common():
        table.add_row(f"left out: {reason}", str(count))
    for bench, count in sorted(report.contaminated.items()):
        table.add_row(f"  of which {bench} questions", str(count))
    console.print(table)
    if len(loaded.rejects):
        console.print(
            "which rows and why: SELECT source, line, reason FROM rejects ORDER BY source, row"
        )


@problems_app.command()
def load(
    sources: list[str] = typer.Argument(
        ..., help="files (.json, .jsonl, .parquet), dataset directories or dataset ids"
    ),
    format: str | None = typer.Option(
        None, help=f"column mapping: {', '.join(FORMATS)} (default: detected from the columns)"
    ),
    question_column: str | None = QUESTION_COLUMN,
    answer_column: str | None = ANSWER_COLUMN,
    split: str = typer.Option("train", help="the split to read from a dataset; recorded"),
    decontaminate: list[str] | None = DECONTAMINATE,
    no_decontaminate: bool = NO_DECONTAMINATE,
    ngram: int = NGRAM,
    profile: str = PROFILE,
    run_dir: Path | None = RUN_DIR,
) -> None:
    """Load problems into the run's store (table `problems`); rows left out (bad, duplicate,
    a benchmark's question) go to table `rejects` with their file, line and reason."""
    from rstar.store import Catalog, StoreLayout

    prof = profile_or_exit(profile, run_dir)
    try:
        chosen = choose_format(format, question_column, answer_column)
    except ValueError as exc:
        raise fail(exc) from exc
    loaded = _load(
        [ProblemSource(s, format=chosen, split=split) for s in sources],
        decontaminate,
        no_decontaminate,
        ngram,
    )
    layout = StoreLayout.for_run(prof.run_dir)
    with Catalog(layout) as catalog:
        new = catalog.add_problems(loaded.problems)
        catalog.add_rejects(loaded.rejects)
    _report(loaded, new)
    console.print(f"store: {layout.catalog_path}")


@problems_app.command()
def synthesize(
    seeds: list[str] = typer.Argument(..., help="seed problem files or datasets (any format)"),
    base_url: str = typer.Option(
        ..., help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"
    ),
    model: str = typer.Option(..., help="the model name the server serves"),
    api: str = typer.Option("chat", help="chat or completions"),
    new_per_seed: int = typer.Option(1, min=1, help="new problems written per seed"),
    num_solutions: int = typer.Option(10, min=1, help="solutions sampled per new problem"),
    min_agree: int = typer.Option(3, min=1, help="equivalent answers needed to keep a problem"),
    problem_prompt: str | None = typer.Option(
        None, help="prompt that writes a problem; {question} is the seed (default: built in)"
    ),
    solve_prompt: str | None = typer.Option(
        None, help="prompt that solves a new problem, {question} (default: built in)"
    ),
    out: Path | None = typer.Option(
        None, help="JSONL of the kept problems (default <run_dir>/problems/synthetic.jsonl)"
    ),
    decontaminate: list[str] | None = DECONTAMINATE,
    no_decontaminate: bool = NO_DECONTAMINATE,
    ngram: int = NGRAM,
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", help="environment variable holding the API key (never printed)"
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="print the model calls this would make, at most, and stop"
    ),
    profile: str = PROFILE,
    run_dir: Path | None = RUN_DIR,
) -> None:
    """Write new problems from seeds with a model; keep those whose sampled solutions agree
    (docs/method.md §4). Every judged candidate is kept for audit (view `synthesis`); a rerun skips
    the candidates already judged. The kept problems go to a problem file for
    `evolve.problems.files`, which is decontaminated when a round loads it."""
    from rstar.curate.export import write_json
    from rstar.models import OpenAIBackend
    from rstar.problems.synthesis import SynthesisConfig, plan
    from rstar.problems.synthesis import synthesize as run_synthesis
    from rstar.store import Catalog, StoreLayout

    prof = profile_or_exit(profile, run_dir)
    loaded = _load([ProblemSource(s) for s in seeds], decontaminate, no_decontaminate, ngram)
    try:
        prompts = {"problem_prompt": problem_prompt, "solve_prompt": solve_prompt}
        config = SynthesisConfig(
            new_per_seed=new_per_seed,
            num_solutions=num_solutions,
            min_agree=min_agree,
            **{name: text for name, text in prompts.items() if text is not None},
        )
        backend = OpenAIBackend(
            base_url,
            model,
            api=api,  # type: ignore[arg-type]
            api_key_env=api_key_env,
        )
    except ValueError as exc:
        raise fail(exc) from exc
    layout = StoreLayout.for_run(prof.run_dir)
    if dry_run:
        backend.close()
        _print_plan(plan(loaded.problems, layout, config), base_url)
        return
    with backend:
        result = run_synthesis(loaded.problems, backend, layout, config)
    out = out or Path(prof.run_dir) / "problems" / "synthetic.jsonl"
    write_json(result.problems, out)
    Catalog(layout).close()  # opening it for writing points the `synthesis` view at new files
    console.print(
        f"{len(loaded.problems)} seeds; {result.judged} candidates judged now, "
        f"{len(result.records)} in all; {len(result.problems)} kept -> {out}"
    )
    console.print(f"audit: SELECT * FROM synthesis (in {layout.catalog_path})")
    console.print(
        "spent: {requests} requests ({retries} retries), {prompt_tokens} prompt and "
        "{completion_tokens} completion tokens".format(**backend.usage)
    )


def _print_plan(planned: SynthesisPlan, base_url: str) -> None:
    table = Table(title=f"dry run: nothing sent to {base_url}", show_header=False)
    table.add_row("seeds with candidates to judge", str(planned.seeds))
    table.add_row("candidates to judge", str(planned.candidates))
    table.add_row("requests that write problems", str(planned.write_requests))
    table.add_row("requests that solve them (at most)", str(planned.solve_requests))
    table.add_row("completions asked for (at most)", str(planned.samples))
    table.add_row("completion tokens (at most)", str(planned.max_completion_tokens))
    console.print(table)
