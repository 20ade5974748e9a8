"""The test-time scaling curve as a PNG: accuracy against trajectories per problem."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from rstar.evaluate.results import ScalingCurve


def plot_scaling(curve: ScalingCurve, path: str | Path, title: str | None = None) -> Path:
    """Draw ``curve`` and save it as a PNG: per method a solid line for its accuracy and a
    dashed one, in the same colour, for pass@k (some trajectory found the gold answer, the
    ceiling of a perfect answer picker); budgets on a log-2 axis.

    Uses a bare ``Figure`` (the Agg canvas), so no GUI backend or pyplot state is touched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.subplots()
    for method, values in curve.accuracy.items():
        (line,) = axes.plot(curve.budgets, [100 * v for v in values], marker="o", label=method)
        axes.plot(
            curve.budgets,
            [100 * v for v in curve.pass_at_k[method]],
            linestyle="--",
            color=line.get_color(),
            label=f"{method} pass@k",
        )
    axes.set_xscale("log", base=2)
    axes.set_xticks(curve.budgets, [str(k) for k in curve.budgets])
    axes.set_xlabel("trajectories per problem")
    axes.set_ylabel("accuracy (%)")
    axes.set_ylim(0, 100)
    axes.grid(True, alpha=0.3)
    axes.legend()
    axes.set_title(title or f"test-time scaling on {curve.benchmark}")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path
