"""``rstar train sft|ppm``: train a round's policy or PPM from its exported data.

With ``--round R`` every path has a default in the profile's run directory
(``rstar.store.RunLayout``): the data ``<run_dir>/store/datasets/round=R/{sft,ppm_pairs}.jsonl``
(``rstar curate export``), the outputs ``<run_dir>/round-R/{policy,ppm}``, the SFT start
(the profile's policy, or round R-1's policy with ``init_from: previous``) and the PPM
start (round R's policy).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from rstar.cli.console import console, fail, profile_or_exit
from rstar.runtime import torch_threads
from rstar.settings import with_overrides
from rstar.store import RunLayout
from rstar.train.run import TrainResult


class Kind(StrEnum):
    """What ``rstar train`` trains."""

    SFT = "sft"
    PPM = "ppm"

    @property
    def model(self) -> str:
        """The registered model the checkpoint becomes a version of."""
        return "policy" if self is Kind.SFT else "ppm"


PROFILE = typer.Option("tiny", help="profile name or .yaml path")
ROUND = typer.Option(None, help="the round being trained (sets default paths, model alias)")
INIT = typer.Option(
    None,
    help="checkpoint to start from (with --round, sft: the base policy, or round R-1's with "
    "init_from: previous; ppm: round R's policy)",
)
OUT = typer.Option(None, help="checkpoint directory to write")
MAX_STEPS = typer.Option(None, help="optimizer steps (overrides the profile's epochs)")
THREADS = typer.Option(None, help="torch CPU threads (default: the profile's, else all)")
TRACK = typer.Option(True, help="log to MLflow and register the checkpoint")


def _given(value: Path | None, default: Path | None, what: str) -> Path:
    if value is not None:
        return value
    if default is None:
        raise fail(f"give --{what}, or --round to use the default path")
    return default


def _run(
    kind: str,
    profile: str,
    round: int | None,
    paths: tuple[Path | None, Path | None, Path | None],
    max_steps: int | None,
    threads: int | None,
    track: bool,
) -> TrainResult:
    """Train ``kind`` ("sft" or "ppm") with the paths given or the round's defaults."""
    from rstar.train.ppm import train_ppm
    from rstar.train.sft import policy_init, train_policy

    prof = profile_or_exit(profile)
    layout = RunLayout(prof.run_dir)
    files = layout.round(round) if round else None
    data, init, out = paths
    if kind == "sft":
        config = with_overrides(prof.train.policy, max_steps=max_steps)
        previous = layout.round(round - 1).policy if round and round > 1 else None
        init = init or policy_init(config, prof.policy.path, previous)
        name, train, out_default = "sft", train_policy, files.policy if files else None
    else:
        config = with_overrides(prof.train.ppm, max_steps=max_steps)
        init = _given(init, files.policy if files else None, "init")
        name, train, out_default = "ppm_pairs", train_ppm, files.ppm if files else None
    dataset = layout.store.dataset_path(round, name) if round else None
    data = _given(data, dataset, "data")
    out = _given(out, out_default, "out")
    console.print(f"{kind.upper()} from {init} on {data} -> {out}")
    tracking = prof.resolved_tracking() if track else None
    with torch_threads(threads or prof.threads):
        result = train(data, init, out, config, round=round, tracking=tracking)
    return result


def _done(result: TrainResult, what: str) -> str:
    return (
        f"[green]done:[/green] {result.rows} {what}, {result.steps} steps, loss "
        f"{result.first_loss:.3f} -> {result.last_loss:.3f}, {result.seconds:.0f} s"
        + (f", resumed from {result.resumed_from}" if result.resumed_from else "")
    )


def train_command(
    kind: Kind = typer.Argument(..., help="sft: the policy; ppm: the process preference model"),
    round: int | None = ROUND,
    data: Path | None = typer.Option(
        None, help="SFT rows (prompt/completion) or PPM pairs (prompt/chosen/rejected), JSONL"
    ),
    init: Path | None = INIT,
    out: Path | None = OUT,
    max_steps: int | None = MAX_STEPS,
    threads: int | None = THREADS,
    track: bool = TRACK,
    profile: str = PROFILE,
) -> None:
    """Fine-tune the policy on a round's SFT rows (completion-only loss), or train the PPM
    on its preference pairs (Bradley-Terry; reports held-out pair accuracy)."""
    result = _run(kind.value, profile, round, (data, init, out), max_steps, threads, track)
    if kind is Kind.SFT:
        done = _done(result, "rows")
    else:
        accuracy = result.metrics.get("ppm/pair_accuracy")
        done = _done(result, "training pairs") + (
            f", held-out pair accuracy {accuracy:.1%} "
            f"({int(result.metrics['ppm/held_out_pairs'])} pairs)"
            if accuracy is not None
            else ", no held-out pairs"
        )
    registered = f", registered {kind.model} v{result.model_version}"
    console.print(done + (registered if result.model_version else ""))
