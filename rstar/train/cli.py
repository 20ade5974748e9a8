"""``rstar train sft|ppm``: train a round's policy or PPM from its exported data.

With ``--round R`` every path has a default in the profile's run directory: the data
``<run_dir>/store/datasets/round=R/{sft,ppm_pairs}.jsonl`` (``rstar.curate.export_round``),
the outputs ``<run_dir>/round-R/{policy,ppm}``, the SFT start (the profile's policy, or
round R-1's policy with ``init_from: previous``) and the PPM start (round R's policy).
"""

from __future__ import annotations

from pathlib import Path

import typer

from rstar.config import Profile, with_overrides
from rstar.console import console, fail, profile_or_exit
from rstar.evolve.paths import RoundPaths
from rstar.tracking import Tracking

train_app = typer.Typer(
    help="Train the policy (SFT) and the process preference model.", no_args_is_help=True
)


def _resolve(value: Path | None, default: Path | None, what: str) -> Path:
    if value is not None:
        return value
    if default is None:
        raise fail(f"give --{what}, or --round to use the default path")
    return default


def _dataset(profile: Profile, round: int | None, name: str) -> Path | None:
    from rstar.store import StoreLayout

    if round is None:
        return None
    return StoreLayout.for_run(profile.run_dir).dataset_path(round, name)


PROFILE = typer.Option("tiny", help="profile name or .yaml path")
ROUND = typer.Option(None, help="the round being trained (sets default paths, model alias)")
MAX_STEPS = typer.Option(None, help="optimizer steps (overrides the profile's epochs)")
THREADS = typer.Option(None, help="torch CPU threads (default: the profile's, else all)")
TRACK = typer.Option(True, help="log to MLflow and register the checkpoint")


@train_app.command()
def sft(
    round: int | None = ROUND,
    data: Path | None = typer.Option(None, help="SFT rows (prompt/completion JSONL)"),
    init: Path | None = typer.Option(None, help="checkpoint to start from"),
    out: Path | None = typer.Option(None, help="checkpoint directory to write"),
    max_steps: int | None = MAX_STEPS,
    threads: int | None = THREADS,
    track: bool = TRACK,
    profile: str = PROFILE,
) -> None:
    """Fine-tune the policy on a round's SFT rows (completion-only loss)."""
    from rstar.train.sft import policy_init, train_policy

    prof = profile_or_exit(profile)
    config = with_overrides(prof.train.policy, max_steps=max_steps, num_threads=threads)
    previous = RoundPaths(prof.run_dir, round - 1).policy if round and round > 1 else None
    start = init or policy_init(config, prof.policy.path, previous)
    data = _resolve(data, _dataset(prof, round, "sft"), "data")
    out = _resolve(out, RoundPaths(prof.run_dir, round).policy if round else None, "out")
    console.print(f"SFT of {start} on {data} -> {out}")
    result = train_policy(data, start, out, config, round=round, tracking=_tracking(prof, track))
    console.print(
        f"[green]done:[/green] {result.rows} rows, {result.steps} steps, loss "
        f"{result.first_loss:.3f} -> {result.last_loss:.3f}, {result.seconds:.0f} s"
        + (f", resumed from {result.resumed_from}" if result.resumed_from else "")
        + (f", registered policy v{result.model_version}" if result.model_version else "")
    )


@train_app.command()
def ppm(
    round: int | None = ROUND,
    data: Path | None = typer.Option(None, help="preference pairs (prompt/chosen/rejected JSONL)"),
    init: Path | None = typer.Option(None, help="checkpoint to start from (the round's policy)"),
    out: Path | None = typer.Option(None, help="checkpoint directory to write"),
    max_steps: int | None = MAX_STEPS,
    threads: int | None = THREADS,
    track: bool = TRACK,
    profile: str = PROFILE,
) -> None:
    """Train the PPM on a round's preference pairs; reports held-out pair accuracy."""
    from rstar.train.ppm import train_ppm

    prof = profile_or_exit(profile)
    config = with_overrides(prof.train.ppm, max_steps=max_steps, num_threads=threads)
    start = _resolve(init, RoundPaths(prof.run_dir, round).policy if round else None, "init")
    data = _resolve(data, _dataset(prof, round, "ppm_pairs"), "data")
    out = _resolve(out, RoundPaths(prof.run_dir, round).ppm if round else None, "out")
    console.print(f"PPM from {start} on {data} -> {out}")
    result = train_ppm(data, start, out, config, round=round, tracking=_tracking(prof, track))
    accuracy = result.metrics.get("ppm/pair_accuracy")
    console.print(
        f"[green]done:[/green] {result.rows} training pairs, {result.steps} steps, loss "
        f"{result.first_loss:.3f} -> {result.last_loss:.3f}, {result.seconds:.0f} s, "
        + (
            f"held-out pair accuracy {accuracy:.1%} "
            f"({int(result.metrics['ppm/held_out_pairs'])} pairs)"
            if accuracy is not None
            else "no held-out pairs"
        )
        + (f", registered ppm v{result.model_version}" if result.model_version else "")
    )


def _tracking(profile: Profile, track: bool) -> Tracking | None:
    return Tracking.for_profile(profile) if track else None
