"""Column mappings of the problem sources we know, and auto-detection by columns.

=========  ======================  ==============================================
format     columns                 final answer
=========  ======================  ==============================================
rstar      question, answer        ``answer`` as given (the authors' and benchmark files)
numina     problem, solution       the last ``\\boxed{}`` of ``solution`` (NuminaMath, MATH)
metamath   query, response         what follows the last "The answer is:" in ``response``
gsm8k      question, answer        what follows "####" in ``answer`` (thousands commas dropped)
=========  ======================  ==============================================

A ``level`` column, where present (MATH's "Level 5"), becomes the problem's level.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rstar.grading import extract_answer

_METAMATH_RE = re.compile(r"The answer is:?\s*(.+?)\s*$", re.DOTALL)
_GSM8K_RE = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_THOUSANDS_RE = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")
_LEVEL_RE = re.compile(r"-?\d+")


def _plain(value: str) -> str | None:
    return value.strip() or None


def _boxed(value: str) -> str | None:
    return extract_answer(value)


def _metamath(value: str) -> str | None:
    at = value.rfind("The answer is")
    found = _METAMATH_RE.match(value, at) if at >= 0 else None
    return found.group(1) if found else None


def _gsm8k(value: str) -> str | None:
    found = _GSM8K_RE.search(value)
    if not found:
        return None
    answer = found.group(1)
    return answer.replace(",", "") if _THOUSANDS_RE.fullmatch(answer) else answer


@dataclass(frozen=True)
class ProblemFormat:
    """How to read a question and its final answer from a record."""

    name: str
    question: str  # column holding the question
    answer: str  # column holding the answer text
    extract: Callable[[str], str | None]  # answer text -> final answer, None if not found
    expects: str  # what ``extract`` looks for, for the rejects' reasons


FORMATS: dict[str, ProblemFormat] = {
    f.name: f
    for f in (
        ProblemFormat("rstar", "question", "answer", _plain, "a non-empty answer"),
        ProblemFormat("numina", "problem", "solution", _boxed, "a \\boxed{} answer"),
        ProblemFormat("metamath", "query", "response", _metamath, "'The answer is: X'"),
        ProblemFormat("gsm8k", "question", "answer", _gsm8k, "a '#### X' line"),
    )
}


def get_format(name: str) -> ProblemFormat:
    if name not in FORMATS:
        raise ValueError(f"unknown problem format {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[name]


def detect_format(records: Sequence[Any]) -> ProblemFormat | None:
    """The format whose columns the (sampled) records have, or None.

    question/answer files are GSM8K when most answers hold a "####" line, else rstar.
    """
    columns = {key for record in records if isinstance(record, dict) for key in record}
    for name in ("numina", "metamath"):
        if {FORMATS[name].question, FORMATS[name].answer} <= columns:
            return FORMATS[name]
    if {"question", "answer"} <= columns:
        answers = [r["answer"] for r in records if isinstance(r, dict) and "answer" in r]
        texts = [a for a in answers if isinstance(a, str)]
        marked = sum(1 for a in texts if _GSM8K_RE.search(a))
        return FORMATS["gsm8k"] if texts and marked * 2 > len(texts) else FORMATS["rstar"]
    return None


def parse_level(value: Any) -> int | None:
    """An integer level from 3, "3" or "Level 3"; None when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    found = _LEVEL_RE.search(str(value))
    return int(found.group()) if found else None
