"""Where a run directory stands, read from its files alone: the main job's progress view and
``rstar status``.

Every stage of a round leaves a file behind (``rstar.store.layout``), written whole, so
the stage in progress is the first one whose file is missing: the problems file, then the
search shards (counted against the problems), the extra-rollout and escalation shards,
the SFT rows, the policy and PPM checkpoints, the evaluations' summaries, and last the
round's ``metrics.json``. Reading files (never the catalog, which one process writes)
lets a display poll while the round runs, in the same process or another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.table import Table

from rstar.atomic import atomic_write
from rstar.evolve.report import HEADLINE
from rstar.evolve.round_problems import shard_count
from rstar.store import RunLayout, finished_rounds, search_stage
from rstar.store.layout import GREEDY_EVAL, SEARCH_EVAL

FINISHED = "finished"


@dataclass(frozen=True)
class RoundStatus:
    """One round: its stage (``finished`` when done), the stage's shards done / in all
    where it has shards, and, once finished, its metrics and when it finished."""

    round: int
    stage: str
    done: int | None = None
    total: int | None = None
    metrics: Mapping[str, float] | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.stage == FINISHED

    def describe(self) -> str:
        """The stage's shards done, or the headline numbers of a finished round."""
        if self.metrics is not None:
            return ", ".join(
                f"{label} {100 * self.metrics[key]:.1f} %"
                for label, key in HEADLINE.items()
                if key in self.metrics
            )
        return f"{self.done} of {self.total} shards" if self.total else ""


def write_round_metrics(layout: RunLayout, round: int, metrics: Mapping[str, float]) -> Path:
    """``round-N/metrics.json``: the round's metrics and the time it finished (the last
    file a round writes; the progress view reads it)."""
    path = layout.round(round).metrics
    text = json.dumps({"finished_at": time.time(), "metrics": dict(metrics)}, indent=1)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n"))
    return path


def _rows(path: Path) -> int:
    return pq.read_metadata(path).num_rows


def _shards(layout: RunLayout, round: int, stage: str) -> int:
    folder = layout.store.shard_path(round, stage, 0).parent
    return len(list(folder.glob("shard-*.parquet")))


def _search_stages(layout: RunLayout, round: int, shard_size: int) -> RoundStatus | None:
    """The first search of the round (search, extra rollouts, escalation...) with shards
    still to run, or None when every one that has a problem file is done."""
    files = layout.round(round)
    extra = 0
    while (path := files.problems if extra == 0 else files.extra_problems(extra)).is_file():
        stage = search_stage(extra)
        total = shard_count(_rows(path), shard_size)
        done = _shards(layout, round, stage)
        if done < total:
            return RoundStatus(round, stage.replace("_", " "), done, total)
        extra += 1
    return None


def round_status(
    layout: RunLayout,
    round: int,
    shard_size: int,
    finished: Mapping[int, Mapping[str, float]] | None = None,
) -> RoundStatus | None:
    """Where ``round`` stands (round 0: the base policy), or None before it started.
    ``finished``: rounds the catalog records as finished, for run directories made before
    rounds wrote ``metrics.json``."""
    files = layout.round(round)
    if files.metrics.is_file():
        record = json.loads(files.metrics.read_text())
        return RoundStatus(
            round, FINISHED, metrics=record["metrics"], finished_at=record["finished_at"]
        )
    if finished and round in finished:
        return RoundStatus(round, FINISHED, metrics=finished[round])
    if round == 0:
        return RoundStatus(0, "base policy")
    if not files.dir.is_dir():
        return None
    if not files.problems.is_file():
        return RoundStatus(round, "problems")
    searching = _search_stages(layout, round, shard_size)
    if searching is not None:
        return searching
    evaluated = {
        kind: any(files.dir.glob(f"eval/*-{kind}/summary.json"))
        for kind in (GREEDY_EVAL, SEARCH_EVAL)
    }
    for stage, done in (
        ("SFT rows and PPM pairs", layout.store.dataset_path(round, "ppm_pairs").is_file()),
        ("policy training", files.policy.is_dir()),
        ("PPM training", files.ppm.is_dir()),
        ("greedy evaluation", evaluated[GREEDY_EVAL]),
        ("MCTS + PPM evaluation", evaluated[SEARCH_EVAL]),
    ):
        if not done:
            return RoundStatus(round, stage)
    return RoundStatus(round, "registration")


def run_status(
    run_dir: str | Path,
    rounds: Sequence[int],
    shard_size: int,
    finished: Mapping[int, Mapping[str, float]] | None = None,
) -> list[RoundStatus]:
    """Round 0 (the base) and each of ``rounds`` that has started, in order."""
    layout = RunLayout(run_dir)
    statuses = [round_status(layout, number, shard_size, finished) for number in (0, *rounds)]
    return [status for status in statuses if status is not None]


def eta_seconds(statuses: Sequence[RoundStatus], rounds: Sequence[int], now: float) -> float | None:
    """Seconds until the last of ``rounds`` finishes, at the mean pace of the rounds
    finished so far (None before one round of ``rounds`` has finished)."""
    times = {s.round: s.finished_at for s in statuses if s.finished_at is not None}
    paces = [times[r] - times[r - 1] for r in rounds if r in times and r - 1 in times]
    if not paces:
        return None
    pace = sum(paces) / len(paces)
    left = [r for r in rounds if r not in times]
    if not left:
        return 0.0
    started = times.get(left[0] - 1, now)
    return max(0.0, pace * len(left) - (now - started))


def status_table(statuses: Sequence[RoundStatus], eta: float | None = None) -> Table:
    """One row per round: its stage (with shards done) or its headline numbers."""
    title = "rounds" if eta is None else f"rounds (about {eta / 60:.0f} min left)"
    table = Table(title=title, title_justify="left")
    table.add_column("round", justify="right")
    table.add_column("stage")
    table.add_column("progress")
    for status in statuses:
        label = "0 (base)" if status.round == 0 else str(status.round)
        table.add_row(label, status.stage, status.describe())
    return table


class RunDirError(ValueError):
    """The run directory cannot take this job; the message says what is there and what to
    run instead."""


class RoundFinishedError(RunDirError):
    """A new run of a round that has already finished in this run directory."""


def check_round_open(
    layout: RunLayout, round: int, continue_with: Callable[[int], str] | None = None
) -> None:
    """Refuse to start ``round`` again where it has finished: a second run would put its
    trees beside the first run's in the store and take over the round's registry alias.
    ``continue_with(next_round)`` words the command that continues the directory. (A
    Prefect retry of an unfinished round passes: the round flow's earlier check is cached.)"""
    done = [r for r in finished_rounds(layout.store) if r > 0]
    if round not in done:
        return
    after = max(done) + 1
    how = (
        continue_with(after)
        if continue_with
        else (
            f"`rstar evolve --rounds {after}-4`, or `prefect deployment run evolve/round-{after}`"
        )
    )
    raise RoundFinishedError(
        f"round {round} has already finished in {layout.run_dir}; running it again would mix "
        "a second run's trees into its store and replace its registered models. Continue "
        f"with round {after} ({how}), or give the run another run directory."
    )


def read_run_record(layout: RunLayout) -> dict[str, Any] | None:
    """What ``run.json`` says the run directory was made with (None: nothing yet)."""
    path = layout.run_record
    return json.loads(path.read_text()) if path.is_file() else None


def write_run_record(layout: RunLayout, record: Mapping[str, Any]) -> None:
    text = json.dumps(dict(record), indent=1)
    atomic_write(layout.run_record, lambda tmp: tmp.write_text(text + "\n"))


def _command(profile: str, quick: bool, run_dir: Path, rounds: str) -> str:
    return f"rstar evolve --profile {profile}{' --quick' if quick else ''} --rounds {rounds} " + (
        f"--run-dir {run_dir}"
    )


def check_run_dir(
    layout: RunLayout, profile: str, profile_name: str, quick: bool, first: int, last: int
) -> dict[str, Any]:
    """Before a job starts rounds ``first``..``last``: the run directory was made with the
    same profile and size (``run.json``), round ``first`` has not finished there (a second
    run would mix its data into the first's) and round ``first - 1`` has. Returns the record
    to write; raises :class:`RunDirError` naming what to run instead."""
    made = read_run_record(layout)
    if made is not None and (made["profile_name"], made["quick"]) != (profile_name, quick):
        size = " at its quick size" if made["quick"] else ""
        raise RunDirError(
            f"{layout.run_dir} holds rounds of profile {made['profile_name']!r}{size}, not "
            f"{profile_name!r}{' at its quick size' if quick else ''}. Continue it with "
            f"`{_command(made['profile'], made['quick'], layout.run_dir, f'{first}-{last}')}`"
            ", or give this job another --run-dir."
        )
    check_round_open(
        layout,
        first,
        lambda after: (
            f"`{_command(profile, quick, layout.run_dir, f'{after}-{max(after, last)}')}`"
        ),
    )
    done = sorted(r for r in finished_rounds(layout.store) if r > 0)
    if first > 1 and first - 1 not in done:
        start = max(done, default=0) + 1
        raise RunDirError(
            f"round {first} starts from round {first - 1}'s models, and {layout.run_dir} "
            f"has no finished round {first - 1} (finished rounds: "
            f"{', '.join(map(str, done)) or 'none'}). Run "
            f"`{_command(profile, quick, layout.run_dir, f'{start}-{last}')}` instead."
        )
    return {"profile": profile, "profile_name": profile_name, "quick": quick}
