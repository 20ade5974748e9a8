"""The main job: self-evolution rounds on the profile, with one calm progress view.

    rstar evolve              # the tiny profile: toy world, rounds 1-4 (scripts/evolve)
    rstar evolve --quick      # the same at CI size
    python -m flows.main ...  # the same options, without the rstar command

Everything the libraries print (Prefect's logs, trainer and MCTS progress bars, Ray) goes
to ``<run_dir>/logs/evolve-<time>.log``, whose path is printed first; the terminal shows
the rounds and the stage each is in (from the run directory's files:
``rstar.evolve.progress``), warnings and errors, and the per-round table after every
round. ``--verbose`` leaves the libraries' output on the terminal.

Without a Prefect server configured (``PREFECT_API_URL``), Prefect runs a temporary one in
this process; with the local stack running (``rstar stack start``) the runs appear in its
UI. The table is also written to ``<run_dir>/rounds.md``.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TextIO

from rich.console import Console, RenderableType
from rich.live import Live

from rstar.config import Profile, load_profile
from rstar.evolve.progress import (
    RoundStatus,
    check_run_dir,
    eta_seconds,
    run_status,
    status_table,
    write_run_record,
)
from rstar.evolve.report import rounds_table
from rstar.store import finished_rounds
from rstar.store.layout import RunLayout

POLL_SECONDS = 2.0


def _isolate_prefect(layout: RunLayout) -> None:
    """Without a configured server, keep Prefect's state in the run directory rather than
    the user's home (its telemetry is off: ``rstar.OFFLINE_DEFAULTS``)."""
    if "PREFECT_API_URL" not in os.environ and "PREFECT_HOME" not in os.environ:
        home = layout.prefect_home
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    # A temporary server's first start creates its database: 20 s (Prefect's default wait)
    # is not always enough on a loaded 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@contextmanager
def _quiet(log_path: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr, and its children's, to ``log_path``; yield
    the terminal, with log records of WARNING and above copied to it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    handler = logging.StreamHandler(terminal)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()  # Prefect's loggers propagate to it; configure Prefect first
    with open(log_path, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        root.addHandler(handler)
        try:
            yield terminal
        finally:
            root.removeHandler(handler)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            terminal.close()


class ProgressView:
    """Polls the run directory in a thread and shows where the rounds stand: a live table
    on a terminal, a line per stage change otherwise; after each round, the rounds table."""

    def __init__(self, console: Console, run_dir: Path, rounds: Sequence[int], shard_size: int):
        self.console = console
        self.status = lambda: run_status(run_dir, rounds, shard_size)
        self.rounds = rounds
        self.lines: dict[int, str] = {}
        self.tabled = {s.round for s in self.status() if s.finished}  # from an earlier job
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="progress-view", daemon=True)
        self.live: Live | None = None

    def _table(self, statuses: list[RoundStatus]) -> RenderableType:
        return status_table(statuses, eta_seconds(statuses, self.rounds, time.time()))

    def _show(self) -> None:
        statuses = self.status()
        out = self.live.console if self.live is not None else self.console
        for status in statuses:
            line = status.stage if status.total else f"{status.stage} {status.describe()}"
            if self.live is None and self.lines.get(status.round) != line:
                out.print(f"round {status.round}: {line}".strip())
            self.lines[status.round] = line
            if status.finished and status.round not in self.tabled:
                self.tabled.add(status.round)
                out.print(rounds_table({s.round: s.metrics for s in statuses if s.metrics}))
        if self.live is not None:
            self.live.update(self._table(statuses), refresh=True)

    def _poll(self) -> None:
        while not self.stop.wait(POLL_SECONDS):
            self._show()

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:  # the libraries' output is not ours to capture
            self.live = Live(console=self.console, redirect_stdout=False, redirect_stderr=False)
            self.live.start()
        self._show()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._show()
        if self.live is not None:
            self.live.stop()


def run_main_job(
    profile: str = "tiny",
    run_dir: str | None = None,
    quick: bool = False,
    first: int = 1,
    last: int = 4,
    verbose: bool = False,
) -> Path:
    """Rounds ``first``..``last`` of ``profile`` (each a subflow run of ``evolve-all``),
    then the per-round table; returns the table's file. Refuses, before any work, a run
    directory made with another profile or a first round whose previous one is missing."""
    prof: Profile = load_profile(profile, run_dir, quick=quick)
    layout = RunLayout(prof.run_dir)
    ref = str(Path(profile).resolve()) if Path(profile).is_file() else profile  # a .yaml path
    write_run_record(layout, check_run_dir(layout, ref, prof.name, quick, first, last))
    _isolate_prefect(layout)
    console = Console(width=200)
    rounds = list(range(first, last + 1))
    log_path = layout.logs_dir / time.strftime("evolve-%Y%m%d-%H%M%S.log")
    started = time.perf_counter()
    # Prefect configures logging when imported: before our terminal handler joins the root
    # logger (a handler already there would make Prefect drop its own console handler).
    from flows.evolve import evolve_all

    with ExitStack() as stack:
        screen = console
        if not verbose:
            console.print(
                f"rounds {first}-{last} of {prof.name}; the libraries' output: {log_path}"
            )
            screen = Console(file=stack.enter_context(_quiet(log_path)), width=200)
        stack.enter_context(ProgressView(screen, layout.run_dir, rounds, prof.evolve.shard_size))
        try:
            evolve_all(
                profile=profile, run_dir=str(layout.run_dir), quick=quick, first=first, last=last
            )
        except BaseException:
            screen.print(f"[red]the job stopped; its log: {log_path}[/red]")
            raise
    recorder = Console(record=True, width=200, file=io.StringIO())
    recorder.print(rounds_table(finished_rounds(layout.store)))
    layout.rounds_table.write_text(recorder.export_text())
    minutes = (time.perf_counter() - started) / 60
    console.print(f"{len(rounds)} rounds in {minutes:.1f} min; run dir {layout.run_dir}")
    console.print(f"table written to {layout.rounds_table}")
    return layout.rounds_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny", help="profile name or .yaml path")
    parser.add_argument("--run-dir", default=None, help="run directory (default: the profile's)")
    parser.add_argument("--quick", action="store_true", help="the profile's small size")
    parser.add_argument("--first", type=int, default=1, help="first round")
    parser.add_argument("--last", type=int, default=4, help="last round")
    parser.add_argument("--verbose", action="store_true", help="the libraries' output too")
    args = parser.parse_args()
    run_main_job(args.profile, args.run_dir, args.quick, args.first, args.last, args.verbose)


if __name__ == "__main__":
    main()
