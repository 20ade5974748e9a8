"""The process preference model as a scorer: partial trajectories → values in [-1, 1]."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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

    def score(
        self,
        questions: list[str],
        partials: list[str],
        shared: Sequence[int | None] | None = None,
    ) -> list[float]:
        """One value in [-1, 1] per (question, partial trajectory) pair, in order.

        ``shared[i]``, when given, says that the first ``shared[i]`` characters of partial
        ``i`` are a prefix other partials of the same question share (the steps before the
        scored one): a backend that can (``raw_scores_extending``) then runs each prefix
        once. The values are the same either way.
        """
        if len(questions) != len(partials):
            raise ValueError(
                f"PPMScorer.score got {len(questions)} questions but {len(partials)} partials"
            )
        extending = getattr(self.backend, "raw_scores_extending", None)
        if shared is None or extending is None:
            texts = [build_prompt(q) + p for q, p in zip(questions, partials, strict=True)]
            raw = self.backend.raw_scores(texts)
        else:
            raw = self._by_prefix(extending, questions, partials, shared)
        return [math.tanh(value * self.scale) for value in raw]

    @staticmethod
    def _by_prefix(
        extending: Callable[[list[str], list[list[str]]], list[list[float]]],
        questions: list[str],
        partials: list[str],
        shared: Sequence[int | None],
    ) -> list[float]:
        """Raw values with each distinct (question, shared prefix) run once."""
        groups: dict[str, list[int]] = {}
        for i, (question, partial, cut) in enumerate(zip(questions, partials, shared, strict=True)):
            groups.setdefault(build_prompt(question) + partial[: cut or 0], []).append(i)
        members = list(groups.values())
        continuations = [[partials[i][shared[i] or 0 :] for i in group] for group in members]
        raw = [0.0] * len(partials)
        for group, values in zip(members, extending(list(groups), continuations), strict=True):
            for i, value in zip(group, values, strict=True):
                raw[i] = value
        return raw
