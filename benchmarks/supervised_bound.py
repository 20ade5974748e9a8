"""The supervised upper bound of a self-evolution run (issue 15), beside its own curve.

Round N of a run fine-tunes the base on its *own* verified solutions of the problems it
searched in rounds 1..N. The bound fine-tunes the same base, with the same settings
(``train.policy``), on the *gold* solution of every one of those problems, solved or
not: what perfect search and curation could give the same model on the same problems.
Both are scored greedy on the same held-out toy test problems; the run's numbers come
from its store, the bound's are measured here.

    .venv/bin/python benchmarks/supervised_bound.py --run-dir runs [--per-level 100]

Writes ``<run-dir>/supervised-bound/report.json`` and ``supervised-vs-self.png`` (greedy
accuracy per round, overall and per level, self-evolved solid, supervised dashed); the
checkpoints stay beside them, and a rerun reuses those it finds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from rstar.config import Profile, load_profile
from rstar.evolve.report import accuracy_series
from rstar.evolve.round_problems import toy_round_pool
from rstar.format import build_prompt
from rstar.runtime import torch_threads
from rstar.store import RunLayout, StoreLayout
from rstar.store.catalog import finished_rounds
from rstar.toy.evaluate_base import greedy_accuracy
from rstar.toy.world import problem_pool
from rstar.train.sft import train_policy


def gold_rows(prof: Profile, last_round: int) -> list[dict[str, str]]:
    """Prompt/completion rows: the gold solution of each problem rounds 1..last searched
    (once, when the rounds share their problems: ``each_round: same``)."""
    problems = {
        p.id: p
        for round in range(1, last_round + 1)
        for p in toy_round_pool(prof.toy, prof.evolve.problems, round)
    }
    return [
        {"problem_id": p.id, "prompt": build_prompt(p.question), "completion": p.solution}
        for p in problems.values()
    ]


def supervised_policy(prof: Profile, base: Path, rows: list[dict[str, str]], out: Path) -> Path:
    """The base fine-tuned on ``rows`` into ``out`` (reused when already trained there)."""
    if (out / "config.json").is_file():
        return out
    data = out.with_suffix(".jsonl")
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with torch_threads(prof.threads):
        train_policy(data, base, out, prof.train.policy)
    return out


def self_evolved(run_dir: Path, rounds: list[int]) -> dict[int, dict[int | str, float]]:
    """The run's own greedy test accuracy per round, overall ("all") and per level."""
    metrics = finished_rounds(StoreLayout.for_run(run_dir))
    return {
        round: {"all": m["eval/toy/greedy/accuracy"], **accuracy_series(m)["greedy"]}
        for round in [0, *rounds]
        if "eval/toy/greedy/accuracy" in (m := metrics.get(round, {}))
    }


def plot(curves: dict[str, dict[int, dict[int | str, float]]], path: Path) -> None:
    """Overall and per-level greedy accuracy per round: self-evolved solid, gold dashed."""
    figure = Figure(figsize=(11, 4), dpi=100)
    overall, by_level = figure.subplots(1, 2)
    styles = {"self-evolved": "o-", "supervised (gold)": "s--"}
    for name, curve in curves.items():
        rounds = sorted(curve)
        overall.plot(rounds, [100 * curve[r]["all"] for r in rounds], styles[name], label=name)
        levels = sorted(k for k in curve[rounds[0]] if k != "all")
        for level in levels:
            values = [100 * curve[r].get(level, 0.0) for r in rounds]
            label = f"L{level} {name.split()[0]}"
            by_level.plot(rounds, values, styles[name], color=f"C{level - 1}", label=label)
    for axes, title in ((overall, "greedy, all levels"), (by_level, "greedy by level")):
        axes.set_title(f"toy test: {title}")
        axes.set_xticks(sorted({r for curve in curves.values() for r in curve}))
        axes.set_xlabel("round (0 = base policy)")
        axes.set_ylabel("%")
        axes.set_ylim(0, 100)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="x-small", ncol=2)
    figure.tight_layout()
    figure.savefig(path, format="png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs"))
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--rounds", default="1,2,3,4")
    parser.add_argument("--per-level", type=int, default=100, help="toy test problems per level")
    args = parser.parse_args()
    prof = load_profile(args.profile, run_dir=args.run_dir.resolve())
    rounds = [int(r) for r in args.rounds.split(",")]
    out = RunLayout(prof.run_dir).run_dir / "supervised-bound"
    out.mkdir(parents=True, exist_ok=True)
    base = Path(prof.policy.path)
    world = prof.toy.world
    test = [
        p
        for lv in range(1, world.max_level + 1)
        for p in problem_pool(lv, args.per_level, "test", world)
    ]

    def score(checkpoint: Path) -> dict[int | str, float]:
        with torch_threads(prof.threads):
            levels = greedy_accuracy(checkpoint, test, backend=prof.policy.backend)
        return {"all": sum(levels.values()) / len(levels), **levels}

    started = time.perf_counter()
    bound: dict[int, dict[int | str, float]] = {0: score(base)}
    gold_counts = {0: 0}
    for number in rounds:
        rows = gold_rows(prof, number)
        gold_counts[number] = len(rows)
        bound[number] = score(supervised_policy(prof, base, rows, out / f"policy-{number}"))
        print(f"round {number}: {bound[number]}", flush=True)
    curves = {"self-evolved": self_evolved(prof.run_dir, rounds), "supervised (gold)": bound}
    plot(curves, out / "supervised-vs-self.png")

    table = Table(title=f"greedy on {len(test)} toy test problems: self-evolved | gold")
    for column in (
        "round",
        "rows (gold)",
        "all",
        *(f"L{lv}" for lv in range(1, world.max_level + 1)),
    ):
        table.add_column(column, justify="right")
    own = curves["self-evolved"]
    for number in [0, *rounds]:
        gold, mine = bound[number], own.get(number, {})
        cells = [
            f"{100 * mine[k]:.0f} | {100 * gold[k]:.0f}"
            if k in mine
            else f"- | {100 * gold[k]:.0f}"
            for k in ["all", *range(1, world.max_level + 1)]
        ]
        table.add_row(str(number), str(gold_counts[number]), *cells)
    Console(width=140).print(table)
    report = {
        "test_per_level": args.per_level,
        "self_evolved": own,
        "supervised": bound,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
