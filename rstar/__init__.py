"""rstar: rStar-Math self-evolution (MCTS + process preference model) for small language models."""

__version__ = "0.1.0"
