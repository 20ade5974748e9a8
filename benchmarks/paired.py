"""Paired-bootstrap 95 % intervals for the difference of two accuracies on the same problems.

A thin wrapper over ``scipy.stats.bootstrap`` (``paired=True``: problems are resampled
together, so a hard problem counts against both sides), used by the benchmark scripts that
compare two ways of answering the same problems.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import bootstrap


def paired_interval(
    a: Sequence[bool | float], b: Sequence[bool | float], resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """mean(a) - mean(b) with its paired percentile-bootstrap 95 % interval (low, high)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"need two equal-length samples of 2 or more, got {x.size} and {y.size}")
    diff = float(x.mean() - y.mean())
    if np.all(x - y == x[0] - y[0]):  # no spread: the interval is the point
        return {"difference": diff, "low": diff, "high": diff}
    result = bootstrap(
        (x, y),
        lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return {"difference": diff, "low": float(low), "high": float(high)}
