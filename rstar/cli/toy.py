"""``rstar toy ...``: generate the toy world, build the tiny base policy, measure it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rstar.cli.console import console, profile_or_exit
from rstar.settings import with_overrides
from rstar.toy.config import ToyConfig

toy_app = typer.Typer(help="The embedded toy world and its tiny base policy.", no_args_is_help=True)

PROFILE_HELP = "profile whose `toy:` section configures the world and the bootstrap"


def _toy_config(profile: str) -> ToyConfig:
    """The profile's ``toy:`` section (defaults where it has none)."""
    return profile_or_exit(profile).toy or ToyConfig()


@toy_app.command()
def generate(
    out: Path = typer.Option(Path("runs/toy/problems"), help="folder for train.jsonl, test.jsonl"),
    profile: str = typer.Option("tiny", help=PROFILE_HELP),
) -> None:
    """Write the train pool and the held-out test set as JSON lines."""
    from rstar.toy.world import toy_dataset, write_jsonl

    splits = toy_dataset(_toy_config(profile).world)
    for split, problems in splits.items():
        rows = write_jsonl(problems, out / f"{split}.jsonl")
        console.print(f"{split}: {rows} problems -> {out / f'{split}.jsonl'}")


@toy_app.command()
def bootstrap(
    out: Path = typer.Option(Path("runs/toy/base-policy"), help="checkpoint folder to write"),
    seed: int | None = typer.Option(None, help="training seed (default: the profile's)"),
    threads: int | None = typer.Option(None, help="torch threads (default: all cores)"),
    profile: str = typer.Option("tiny", help=PROFILE_HELP),
) -> None:
    """Train the tiny base policy on the easiest levels and save it as a checkpoint."""
    from rstar.runtime import torch_threads
    from rstar.toy.bootstrap import bootstrap as run_bootstrap

    prof = profile_or_exit(profile)
    config = prof.toy or ToyConfig()
    boot = with_overrides(config.bootstrap, seed=seed)
    with torch_threads(threads or prof.threads):
        summary = run_bootstrap(out, config.world, boot)
    console.print(
        f"saved {out}: {summary['parameters']:,} parameters, {summary['train_problems']} "
        f"problems, loss {summary['train_loss']:.3f}, {summary['seconds']} s"
    )


@toy_app.command()
def teacher(
    out: Path = typer.Option(Path("runs/toy/teacher"), help="checkpoint folder to write"),
    threads: int | None = typer.Option(None, help="torch threads (default: the profile's)"),
    profile: str = typer.Option("tiny", help=PROFILE_HELP),
) -> None:
    """Train the toy teacher that synthesis asks for new problems: the base policy's shape,
    trained from scratch to solve levels 1-4 and to write a problem like a seed."""
    from rstar.toy.teacher import build_teacher

    prof = profile_or_exit(profile)
    config = prof.toy or ToyConfig()
    summary = build_teacher(
        out, config.world, config.bootstrap, config.teacher, threads=threads or prof.threads
    )
    console.print(
        f"saved {out} ({summary['seconds']} s); serve it: "
        f"rstar serve {out} --name toy-teacher --execute"
    )


@toy_app.command()
def evaluate(
    model: Path = typer.Option(Path("runs/toy/base-policy"), help="policy checkpoint folder"),
    per_level: int = typer.Option(100, help="held-out problems per level"),
    split: str = typer.Option("test", help="test (reported numbers) or val (design choices)"),
    profile: str = typer.Option("tiny", help=PROFILE_HELP),
) -> None:
    """Greedy accuracy per level on the held-out test (or validation) set (real sandbox and
    grader)."""
    from rstar.toy.evaluate_base import greedy_results
    from rstar.toy.world import problem_pool

    world = _toy_config(profile).world
    problems = [
        p for lv in range(1, world.max_level + 1) for p in problem_pool(lv, per_level, split, world)
    ]
    table = Table("level", "problems", "answered", "correct", "accuracy")
    for row in greedy_results(model, problems):
        table.add_row(
            str(row.level),
            str(row.problems),
            str(row.answered),
            str(row.correct),
            f"{row.accuracy:.0%}",
        )
    console.print(table)
