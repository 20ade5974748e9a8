"""A scripted replay policy and PPM for hand-computed search tests.

Each scripted step carries a tag such as ``[A1]`` in its text. The replay backend looks
at the last tag in the prompt (``ROOT`` when there is none) and answers with the steps
scripted for it, whatever ``n`` asks for, so a test fixes exactly which candidates every
expansion gets. It is a real :class:`~rstar.models.GenerationBackend`; only the text is
scripted. :class:`ScriptedPPM` scores a partial trajectory by its last tag likewise.
"""

from __future__ import annotations

import re

from rstar.format import STOP_STRINGS
from rstar.models import Completion, GenerationParams

_TAG = re.compile(r"\[(\w+)\]")


def last_tag(text: str) -> str:
    tags = _TAG.findall(text)
    return tags[-1] if tags else "ROOT"


def completion(text: str) -> Completion:
    stop = next((s for s in STOP_STRINGS if text.endswith(s)), None)
    return Completion(text=text, stop=stop, truncated=stop is None, num_tokens=len(text.split()))


class ReplayBackend:
    """Answers each prompt with the candidate steps scripted for its last tag."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.calls: list[list[str]] = []

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        self.calls.append(list(prompts))
        return [[completion(text) for text in self.script[last_tag(p)]] for p in prompts]


class ScriptedPPM:
    """Scores a partial trajectory by the tag of its last step."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
        self.calls: list[list[str]] = []

    def score(
        self, questions: list[str], partials: list[str], shared: object = None
    ) -> list[float]:
        self.calls.append(list(partials))
        return [self.scores[last_tag(p)] for p in partials]
