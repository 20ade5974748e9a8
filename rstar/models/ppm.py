"""The process preference model as a scorer: partial trajectories → values in [-1, 1]."""

from __future__ import annotations

import math
from pathlib import Path

from rstar.format import build_prompt
from rstar.models.reward import RewardBackend, TransformersRewardBackend

# The authors' code divides the value head's output by 5 before tanh (docs/method.md §3).
PPM_SCALE = 0.2


class PPMScorer:
    """Scores ``build_prompt(question) + partial`` as ``tanh(raw * scale)``.

    ``model`` is a checkpoint directory (served by ``TransformersRewardBackend`` with the
    given keyword arguments, e.g. ``device``, ``batch_size``, ``max_length``) or any
    ``RewardBackend``. ``partial`` is the trajectory from the first step to the scored step,
    as the search holds it (steps plus any output block), ending with the scored step.
    """

    def __init__(
        self,
        model: str | Path | RewardBackend,
        *,
        scale: float = PPM_SCALE,
        **backend_kwargs: object,
    ) -> None:
        if isinstance(model, RewardBackend):
            if backend_kwargs:
                raise TypeError(
                    f"backend options {sorted(backend_kwargs)} apply only when PPMScorer loads "
                    "a checkpoint path itself"
                )
            self.backend = model
        else:
            self.backend = TransformersRewardBackend(model, **backend_kwargs)  # type: ignore[arg-type]
        self.scale = scale

    def score(self, questions: list[str], partials: list[str]) -> list[float]:
        """One value in [-1, 1] per (question, partial trajectory) pair, in order."""
        if len(questions) != len(partials):
            raise ValueError(
                f"PPMScorer.score got {len(questions)} questions but {len(partials)} partials"
            )
        texts = [build_prompt(q) + p for q, p in zip(questions, partials, strict=True)]
        return [math.tanh(raw * self.scale) for raw in self.backend.raw_scores(texts)]
