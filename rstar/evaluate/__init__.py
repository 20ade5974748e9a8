"""Evaluation on benchmarks: methods, grading, results in the store and MLflow, scaling.

- ``rstar.evaluate.benchmarks``: ``load_benchmark`` (``toy``, one of the paper's nine
  shipped with rstar, or a benchmark file in a known layout; every row kept).
- ``rstar.evaluate.methods``: ``METHODS`` (greedy, mcts, mcts_vote, best_of_n, majority,
  beam).
- ``rstar.evaluate.runner``: ``evaluate_problems`` over backend objects.
- ``rstar.evaluate.pipeline``: ``run_evaluation`` from checkpoint paths, writing the
  summary, the scaling PNG, the store and MLflow.
- ``rstar.evaluate.config``: ``EvalConfig``.

Importing this package is cheap (the config and method names only).
"""

from rstar.evaluate.config import METHOD_SEARCH, EvalConfig

__all__ = ["METHOD_SEARCH", "EvalConfig"]
