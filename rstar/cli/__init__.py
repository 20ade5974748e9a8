"""The ``rstar`` command line: one entry point, a sub-command per capability."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.panel import Panel
from rich.syntax import Syntax

from rstar import __version__
from rstar.cli.console import console, fail
from rstar.cli.curate import curate_app
from rstar.cli.evaluate import benchmarks_command, eval_command
from rstar.cli.evolve import evolve_command, status_command
from rstar.cli.problems import problems_app
from rstar.cli.serve import serve_command
from rstar.cli.stack import stack_app
from rstar.cli.toy import toy_app
from rstar.cli.train import train_command
from rstar.config import ProfileError, load_profile, profile_names

app = typer.Typer(help="rStar-Math self-evolution for small language models.", no_args_is_help=True)
app.add_typer(problems_app, name="problems")
app.add_typer(curate_app, name="curate")
app.add_typer(toy_app, name="toy")
app.add_typer(stack_app, name="stack")
app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("benchmarks")(benchmarks_command)
app.command("serve")(serve_command)
app.command("evolve")(evolve_command)
app.command("status")(status_command)


@app.command()
def version() -> None:
    """Print the rstar version."""
    console.print(__version__)


@app.command()
def profile(
    name: str = typer.Argument(
        "tiny", help="a shipped profile's name (`rstar profiles`) or a .yaml path"
    ),
    check_models: bool = typer.Option(False, help="also check that model paths exist"),
) -> None:
    """Show a validated profile with every default filled in, and the search each round
    runs (the profile's search with the round's settings laid over it)."""
    try:
        prof = load_profile(name)
        if check_models:
            for model in (prof.policy, prof.ppm, prof.teacher):
                if model is not None and model.backend != "openai":
                    model.local_path()
    except ProfileError as exc:
        raise fail(exc) from exc
    console.print(yaml.safe_dump(prof.model_dump(mode="json"), sort_keys=False))
    resolved = {
        f"round {number}": {
            "search": prof.round_search(number).model_dump(),
            "extra": prof.round_search(number, extra=1).model_dump() if r.extra else None,
            "escalate": [
                prof.round_search(number, extra=stage).model_dump()
                for stage in range(2, r.extra_passes + 1)
            ],
        }
        for number, r in sorted(prof.evolve.rounds.items())
    }
    console.print("# the search of each round, resolved")
    console.print(yaml.safe_dump(resolved, sort_keys=False))


@app.command()
def profiles() -> None:
    """List the shipped profiles."""
    for name in profile_names():
        console.print(name)


@app.command()
def solve(
    question: str = typer.Argument(..., help="the math question"),
    profile: str = typer.Option("tiny", help="profile name or .yaml path"),
    rollouts: int | None = typer.Option(None, help="MCTS rollouts (default: the profile's)"),
    policy: Path | None = typer.Option(None, help="policy checkpoint (default: the profile's)"),
    ppm: Path | None = typer.Option(None, help="PPM checkpoint (default: the profile's)"),
    vote: bool = typer.Option(False, help="score-weighted majority vote over trajectories"),
    tree: Path | None = typer.Option(None, help="write the search tree as one HTML file"),
) -> None:
    """Solve a question with MCTS and print the answer and the chosen trajectory."""
    from rstar.search.html import render_tree_html
    from rstar.solve import solve as run_solve

    try:
        prof = load_profile(profile)
        policy_entry = prof.policy.at(policy) if policy else None
        ppm_entry = prof.ppm_at(ppm) if ppm else None
        solution = run_solve(
            question, prof, rollouts, policy=policy_entry, ppm=ppm_entry, vote=vote
        )
    except ProfileError as exc:
        raise fail(exc) from exc
    chosen = solution.chosen
    if chosen is None:
        console.print("[yellow]no trajectory reached an answer[/yellow]")
    else:
        for node in chosen.path():
            body = Syntax(node.text.strip(), "python", word_wrap=True)
            title = f"step {node.depth} ({node.kind}) Q={node.q:+.2f}"
            if node.ppm_score is not None:
                title += f" PPM={node.ppm_score:+.2f}"
            console.print(Panel(body, title=title, subtitle=f"output: {node.output[:200]!r}"))
        console.print(f"[bold green]answer:[/bold green] {solution.answer}")
    if tree is not None:
        tree.write_text(render_tree_html(solution.tree, title=question, chosen=chosen))
        console.print(f"search tree ({len(solution.tree)} nodes) written to {tree}")
    if chosen is None:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
