"""The main job: all four self-evolution rounds on the profile, then the per-round table.

    python -m flows.main            # the tiny profile: toy world, four rounds (scripts/evolve)
    python -m flows.main --quick    # the same at CI size

Without a Prefect server configured (``PREFECT_API_URL``), Prefect runs a temporary one in
this process; with the local stack running (``rstar stack start``) the runs appear in its
UI. The table is also written to ``<run_dir>/rounds.md``.
"""

from __future__ import annotations

import argparse
import os
import time

from rich.console import Console

from rstar.store.layout import RunLayout


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="tiny", help="profile name or .yaml path")
    parser.add_argument("--run-dir", default=None, help="run directory (default: the profile's)")
    parser.add_argument("--quick", action="store_true", help="the profile's small size")
    parser.add_argument("--first", type=int, default=1, help="first round")
    parser.add_argument("--last", type=int, default=4, help="last round")
    args = parser.parse_args()

    from rstar.config import load_profile

    prof = load_profile(args.profile, args.run_dir, quick=args.quick)
    layout = RunLayout(prof.run_dir)
    _isolate_prefect(layout)

    from flows.evolve import evolve_all
    from rstar.evolve.report import rounds_table
    from rstar.store import finished_rounds

    started = time.perf_counter()
    evolve_all(
        profile=args.profile,
        run_dir=str(layout.run_dir),
        quick=args.quick,
        first=args.first,
        last=args.last,
    )
    minutes = (time.perf_counter() - started) / 60
    console = Console(record=True, width=200)
    console.print(rounds_table(finished_rounds(layout.store)))
    out = layout.rounds_table
    out.write_text(console.export_text())
    rounds = args.last - args.first + 1
    console.print(f"{rounds} rounds in {minutes:.1f} min; run dir {layout.run_dir}")
    console.print(f"table written to {out}")


if __name__ == "__main__":
    main()
