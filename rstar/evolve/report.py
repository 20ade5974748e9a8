"""A round's metrics under the same names every round, its summary plot, and the table
of all rounds the main job prints.

Metric names (the MLflow compare view lines rounds up by them):

    coverage, coverage/level_L        share of searched problems with a correct trajectory
    difficulty/easy|medium|hard       share of problems whose trajectories are all / some /
                                      none correct (after the extra search)
    trajectories, correct_trajectories, sft_rows, pairs
    sft/final_loss, ppm/pair_accuracy
    eval/{benchmark}/{method}/accuracy, .../pass_at_k, .../level_L/accuracy
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from rich.table import Table

from rstar.evolve.round_synthesis import synthesis_metrics
from rstar.store import Catalog, StoreLayout

DIFFICULTIES = ("easy", "medium", "hard")
HEADLINE = {  # a round's key numbers, by label
    "greedy": "eval/toy/greedy/accuracy",
    "MCTS+PPM": "eval/toy/mcts/accuracy",
    "coverage": "coverage",
    "PPM pairs": "ppm/pair_accuracy",
}
# Accuracy overall and per level of greedy and MCTS + PPM, on any benchmark
_CURVE = re.compile(r"^eval/[^/]+/(greedy|mcts)/(level_\d+/)?accuracy$")


def curve_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """What the learning-curves run plots over the rounds: the headline numbers and the
    accuracies overall and per level (rstar.tracking.log_curve)."""
    return {
        k: v for k, v in metrics.items() if k in HEADLINE.values() or _CURVE.match(k) is not None
    }


def search_metrics(catalog: Catalog, round: int) -> dict[str, float]:
    """Coverage (overall and per level) and difficulty shares of ``round``'s search."""
    rows = catalog.sql(
        "SELECT coalesce(p.level, 0) AS level, s.difficulty, s.num_trajectories, s.num_correct "
        "FROM problem_summary s JOIN problems p USING (problem_id) WHERE s.round = $round",
        {"round": round},
    ).to_pylist()
    if not rows:
        raise ValueError(f"round {round} has no searched problems in the store")
    metrics: dict[str, float] = {
        "problems": len(rows),
        "coverage": sum(r["num_correct"] > 0 for r in rows) / len(rows),
        "trajectories": sum(r["num_trajectories"] for r in rows),
        "correct_trajectories": sum(r["num_correct"] for r in rows),
    }
    for name in DIFFICULTIES:
        metrics[f"difficulty/{name}"] = sum(r["difficulty"] == name for r in rows) / len(rows)
    for level in sorted({r["level"] for r in rows} - {0}):
        of_level = [r for r in rows if r["level"] == level]
        metrics[f"coverage/level_{level}"] = sum(r["num_correct"] > 0 for r in of_level) / len(
            of_level
        )
    return metrics


def round_metrics(
    store: StoreLayout, round: int, stage_results: Mapping[str, Mapping[str, Any]]
) -> dict[str, float]:
    """All of a round's metrics: its search from the store, the rest from its stages."""
    with Catalog(store) as catalog:
        metrics = search_metrics(catalog, round)
    sft, pairs = stage_results["sft"], stage_results["pairs"]
    policy, ppm = stage_results["policy"], stage_results["ppm"]
    metrics |= {"sft_rows": sft["rows"], "pairs": pairs["rows"]}
    names = ("sft/final_loss", "ppm/pair_accuracy", "ppm/heldout_pair_accuracy")
    for stage, name in zip((policy, ppm, ppm), names, strict=True):
        if name in stage:  # no pair accuracy without held-out pairs
            metrics[name] = stage[name]
    metrics |= stage_results["greedy"] | stage_results["search"]
    metrics |= synthesis_metrics(store, round)
    spent = stage_results.get("synthesis") or {}
    metrics |= {f"synthesis/{name}": value for name, value in spent.items()}
    if "registered" in stage_results:
        metrics["champion"] = stage_results["registered"]["champion"]
    return {k: float(v) for k, v in metrics.items()}


def finish_round(store: StoreLayout, round: int, metrics: Mapping[str, float]) -> None:
    """Record ``round`` as completed in the catalog, with its metrics."""
    with Catalog(store) as catalog:
        catalog.finish_round(round, metrics)


def _levels(metrics: Mapping[str, float], prefix: str, suffix: str = "") -> dict[int, float]:
    found = {}
    for key, value in metrics.items():
        if key.startswith(prefix) and key.endswith(suffix):
            middle = key[len(prefix) : len(key) - len(suffix)]
            if middle.isdigit():
                found[int(middle)] = value
    return dict(sorted(found.items()))


def accuracy_series(metrics: Mapping[str, float], benchmark: str = "toy") -> dict[str, dict]:
    """Per method: accuracy by level, from ``eval/{benchmark}/{method}/level_L/accuracy``."""
    prefix = f"eval/{benchmark}/"
    methods = sorted({k[len(prefix) :].split("/")[0] for k in metrics if k.startswith(prefix)})
    return {m: _levels(metrics, f"{prefix}{m}/level_", "/accuracy") for m in methods}


def summary_plot(metrics: Mapping[str, float], round: int, path: Path) -> Path:
    """Coverage by level (bars) and test accuracy by level per method (lines), one PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(10, 4), dpi=100)
    left, right = figure.subplots(1, 2)
    coverage = _levels(metrics, "coverage/level_")
    left.bar([str(lv) for lv in coverage], [100 * v for v in coverage.values()], color="tab:blue")
    left.set_title(f"round {round}: coverage of the searched problems")
    left.set_xlabel("level (reasoning steps)")
    left.set_ylabel("problems with a correct trajectory (%)")
    left.set_ylim(0, 100)
    for method, by_level in accuracy_series(metrics).items():
        right.plot(
            [str(lv) for lv in by_level], [100 * v for v in by_level.values()], "o-", label=method
        )
    right.set_title(f"round {round}: held-out test accuracy")
    right.set_xlabel("level (reasoning steps)")
    right.set_ylabel("accuracy (%)")
    right.set_ylim(0, 100)
    right.legend()
    for axes in (left, right):
        axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def _series(rounds: Mapping[int, Mapping[str, float]], name: str) -> tuple[list, list]:
    """(rounds, values in %) of the rounds that measured metric ``name``."""
    points = [(r, 100 * m[name]) for r, m in sorted(rounds.items()) if name in m]
    return [r for r, _ in points], [v for _, v in points]


def learning_curves(
    rounds: Mapping[int, Mapping[str, float]], path: Path, benchmark: str = "toy"
) -> Path:
    """Across rounds (x: the round, 0 = the base policy), one PNG: held-out accuracy of each
    method, greedy accuracy per level, and the search's coverage with the PPM's pair
    accuracies. Each round logs it as it finishes, so MLflow holds the curve so far."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(15, 4), dpi=100)
    methods, levels, search = figure.subplots(1, 3)
    prefix = f"eval/{benchmark}/"
    names = sorted({k for m in rounds.values() for k in m if k.startswith(prefix)})
    for name in (n for n in names if n.count("/") == 3 and n.endswith("/accuracy")):
        methods.plot(*_series(rounds, name), "o-", label=name.split("/")[2])
    greedy = f"{prefix}greedy/level_"
    for level in sorted({lv for m in rounds.values() for lv in _levels(m, greedy, "/accuracy")}):
        levels.plot(*_series(rounds, f"{greedy}{level}/accuracy"), "o-", label=f"level {level}")
    for name in ("coverage", "ppm/pair_accuracy", "ppm/heldout_pair_accuracy"):
        search.plot(*_series(rounds, name), "o-", label=name)
    titles = (
        f"{benchmark}: accuracy by method",
        f"{benchmark}: greedy accuracy by level",
        "search coverage, PPM pair accuracy",
    )
    for axes, title in zip((methods, levels, search), titles, strict=True):
        axes.set_title(title)
        axes.set_xlabel("round (0 = base policy)")
        axes.set_ylabel("%")
        axes.set_ylim(0, 100)
        axes.set_xticks(sorted(rounds))
        axes.grid(True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}"


def _by_level(series: Mapping[int, float], levels: Sequence[int]) -> str:
    return " ".join(_pct(series.get(lv)) for lv in levels)


ROUNDS_TITLE = "Self-evolution on the toy world, per round (percentages)"


def rounds_table(rounds: Mapping[int, Mapping[str, float]]) -> Table:
    """The per-round table (:func:`rounds_rows`) for the terminal."""
    columns, rows = rounds_rows(rounds)
    table = Table(title=ROUNDS_TITLE)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def rounds_markdown(rounds: Mapping[int, Mapping[str, float]]) -> str:
    """The per-round table (:func:`rounds_rows`) as Markdown (a Prefect artifact)."""
    columns, rows = rounds_rows(rounds)
    lines = [f"**{ROUNDS_TITLE}**", "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "---:|" * len(columns))
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def rounds_rows(rounds: Mapping[int, Mapping[str, float]]) -> tuple[list[str], list[list[str]]]:
    """The per-round table's columns and rows: coverage (easy/medium/hard), greedy and
    MCTS+PPM accuracy by level on the held-out toy test set, SFT rows, pairs, PPM pair
    accuracy. Round 0 is the base policy (greedy only)."""
    levels = sorted({lv for m in rounds.values() for s in accuracy_series(m).values() for lv in s})
    head = "/".join(f"L{lv}" for lv in levels)
    columns = [
        "round",
        "coverage",
        "easy/med/hard",
        f"greedy {head}",
        "greedy",
        f"MCTS+PPM {head}",
        "MCTS+PPM",
        "SFT rows",
        "pairs",
        "PPM pair acc",
    ]
    rows = []
    for number, m in rounds.items():
        series = accuracy_series(m)
        searched = "coverage" in m
        row = [
            str(number) if number else "0 (base)",
            _pct(m.get("coverage")),
            "/".join(_pct(m.get(f"difficulty/{d}")) for d in DIFFICULTIES) if searched else "-",
            _by_level(series.get("greedy", {}), levels),
            _pct(m.get("eval/toy/greedy/accuracy")),
            _by_level(series.get("mcts", {}), levels),  # other budgeted methods: not shown
            _pct(m.get("eval/toy/mcts/accuracy")),
            f"{m['sft_rows']:.0f}" if "sft_rows" in m else "-",
            f"{m['pairs']:.0f}" if "pairs" in m else "-",
            _pct(m.get("ppm/pair_accuracy")),
        ]
        rows.append(row)
    return columns, rows
