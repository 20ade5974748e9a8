"""What every ``rstar`` command shares: one rich console, and failing with a clear message."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from rstar.config import Profile, ProfileError, load_profile

console = Console()


def fail(message: object, code: int = 2) -> typer.Exit:
    """Print ``message`` as the command's error; returns the exit to raise (``code``: 2 for
    a bad invocation or input, 1 for a failure while running)."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def profile_or_exit(name: str, run_dir: Path | None = None) -> Profile:
    """The validated profile ``name`` (its run directory replaced by ``run_dir``), or exit 2
    with the profile's error."""
    try:
        return load_profile(name, run_dir)
    except ProfileError as exc:
        raise fail(exc) from exc
