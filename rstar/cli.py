"""The ``rstar`` command line: one entry point, a sub-command per capability."""

from __future__ import annotations

import typer
import yaml
from rich.console import Console

from rstar import __version__
from rstar.config import ProfileError, load_profile, profile_names

app = typer.Typer(help="rStar-Math self-evolution for small language models.", no_args_is_help=True)
console = Console()


@app.command()
def version() -> None:
    """Print the rstar version."""
    console.print(__version__)


@app.command()
def profile(
    name: str = typer.Argument("tiny", help="profile name in configs/ or a .yaml path"),
    check_models: bool = typer.Option(False, help="also check that model paths exist"),
) -> None:
    """Show a validated profile (all defaults filled in)."""
    try:
        prof = load_profile(name)
        if check_models:
            for model in (prof.policy, prof.ppm, prof.teacher):
                if model is not None and model.backend != "openai":
                    model.local_path()
    except ProfileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(yaml.safe_dump(prof.model_dump(mode="json"), sort_keys=False))


@app.command()
def profiles() -> None:
    """List the shipped profiles."""
    for name in profile_names():
        console.print(name)


if __name__ == "__main__":
    app()
