"""``rstar evolve`` (the main job: rounds of self-evolution) and ``rstar status`` (where a
run directory stands)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import typer

from rstar.cli.console import console, fail
from rstar.config import ProfileError, load_profile
from rstar.evolve.progress import (
    RunDirError,
    eta_seconds,
    read_run_record,
    run_status,
    status_table,
)
from rstar.store import CatalogLockedError, finished_rounds
from rstar.store.layout import RunLayout

ROUNDS = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_rounds(text: str) -> tuple[int, int]:
    """``"2-4"`` -> (2, 4); ``"3"`` -> (3, 3). Rounds count from 1."""
    match = ROUNDS.match(text.strip())
    if not match:
        raise ValueError(f"--rounds {text!r}: give a round (3) or a range (2-4)")
    first, last = int(match[1]), int(match[2] or match[1])
    if not 1 <= first <= last:
        raise ValueError(f"--rounds {text!r}: rounds count from 1 and the range must rise")
    return first, last


def evolve_command(
    quick: bool = typer.Option(False, help="the profile's small size (CI: a few minutes)"),
    rounds: str = typer.Option("1-4", help="the rounds to run: 2-4, or one round: 3"),
    profile: str = typer.Option("tiny", help="profile name or .yaml path"),
    run_dir: Path | None = typer.Option(None, help="run directory (default: the profile's)"),
    verbose: bool = typer.Option(False, help="the libraries' logs and progress bars too"),
) -> None:
    """The main job: rounds of self-evolution (search, curate, train, evaluate, register),
    with one progress view; the libraries' output goes to a log file in the run directory.
    The per-round table is printed after each round and written to <run_dir>/rounds.md."""
    try:
        first, last = parse_rounds(rounds)
        from flows.main import run_main_job  # the Prefect flows: imported only to run them

        run_main_job(profile, str(run_dir) if run_dir else None, quick, first, last, verbose)
    except (ValueError, ProfileError, RunDirError) as exc:
        raise fail(exc) from exc


def status_command(
    run_dir: Path | None = typer.Argument(None, help="run directory (default: the profile's)"),
    profile: str | None = typer.Option(
        None, help="the run's profile (default: the one its run.json names, else tiny)"
    ),
) -> None:
    """Where a run directory stands: each round's stage (shards done, where it has shards)
    or, once finished, its headline numbers; read from the files, so it works while a job
    runs."""
    try:
        layout = RunLayout(run_dir or load_profile(profile or "tiny").run_dir)
        if not layout.run_dir.is_dir():
            raise RunDirError(f"{layout.run_dir}: no run directory here; `rstar evolve` makes one")
        record = read_run_record(layout) or {}
        name = profile or record.get("profile", "tiny")
        prof = load_profile(name, layout.run_dir, quick=bool(record.get("quick", False)))
    except (ProfileError, RunDirError) as exc:
        raise fail(exc) from exc
    rounds = sorted(prof.evolve.rounds)
    try:
        finished = finished_rounds(layout.store)
    except CatalogLockedError:  # a job is writing it now: the files say enough
        finished = {}
    statuses = run_status(layout.run_dir, rounds, prof.evolve.shard_size, finished)
    console.print(status_table(statuses, eta_seconds(statuses, rounds, time.time())))
