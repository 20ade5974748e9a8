"""Column mappings of the problem and benchmark layouts we know, and detection by columns.

=========  ==========================  ================================================
format     columns                     final answer
=========  ==========================  ================================================
rstar      question, answer            ``answer`` as given (the authors' benchmark files;
                                       a list of strings: every one is accepted)
math       problem, answer / solution  ``answer`` when present, else the last
                                       ``\\boxed{}`` of ``solution`` (MATH, MATH-500)
numina     problem, solution           the last ``\\boxed{}`` of ``solution`` (NuminaMath)
metamath   query, response             what follows the last "The answer is:" in ``response``
gsm8k      question, answer            what follows "####" in ``answer`` (thousands
                                       commas dropped)
=========  ==========================  ================================================

A ``level`` column, where present (MATH's "Level 5"), becomes the problem's level. A
layout of its own is a :class:`ProblemFormat` naming its columns (:func:`columns_format`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rstar.grading import extract_answer, gold_text

_METAMATH_RE = re.compile(r"The answer is:?\s*(.+?)\s*$", re.DOTALL)
_GSM8K_RE = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_THOUSANDS_RE = re.compile(r"-?\d{1,3}(,\d{3})+(\.\d+)?")
_LEVEL_RE = re.compile(r"-?\d+")


def _text(extract: Callable[[str], str | None]) -> Callable[[Any], str | None]:
    """``extract`` applied to a text field (numbers read as text; anything else: None)."""

    def read(value: Any) -> str | None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        return extract(value) if isinstance(value, str) and value.strip() else None

    return read


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
class AnswerColumn:
    """A column that may hold the final answer, and how to read it from the column."""

    column: str
    read: Callable[[Any], str | None]  # field value -> final answer, None if not found
    expects: str  # what ``read`` looks for, for the rejects' reasons
    extracted: bool = True  # the answer is found inside a longer text (not given as is)


def _given(column: str) -> AnswerColumn:
    return AnswerColumn(column, gold_text, "a non-empty answer", extracted=False)


_BOXED = AnswerColumn("solution", _text(extract_answer), "a \\boxed{} answer")


@dataclass(frozen=True)
class ProblemFormat:
    """How to read a question and its final answer from a record: the answer is taken
    from the first of ``answers`` whose column the record has."""

    name: str
    question: str  # column holding the question
    answers: tuple[AnswerColumn, ...]

    @property
    def answer_columns(self) -> tuple[str, ...]:
        return tuple(a.column for a in self.answers)


FORMATS: dict[str, ProblemFormat] = {
    f.name: f
    for f in (
        ProblemFormat("rstar", "question", (_given("answer"),)),
        ProblemFormat("math", "problem", (_given("answer"), _BOXED)),
        ProblemFormat("numina", "problem", (_BOXED,)),
        ProblemFormat(
            "metamath",
            "query",
            (AnswerColumn("response", _text(_metamath), "'The answer is: X'"),),
        ),
        ProblemFormat(
            "gsm8k", "question", (AnswerColumn("answer", _text(_gsm8k), "a '#### X' line"),)
        ),
    )
}


def get_format(name: str) -> ProblemFormat:
    if name not in FORMATS:
        raise ValueError(f"unknown problem format {name!r}; known: {', '.join(FORMATS)}")
    return FORMATS[name]


def columns_format(question: str, answer: str) -> ProblemFormat:
    """A layout of one's own: the question in column ``question``, the final answer as
    given in column ``answer``."""
    return ProblemFormat(f"columns {question}/{answer}", question, (_given(answer),))


def choose_format(
    format: str | None, question_column: str | None, answer_column: str | None
) -> str | ProblemFormat | None:
    """The layout command-line options choose: a named one (``--format``), the two
    columns given (``--question-column``/``--answer-column``), or None (detect it)."""
    if (question_column is None) != (answer_column is None):
        raise ValueError("--question-column and --answer-column go together")
    if question_column is not None and answer_column is not None:
        if format is not None:
            raise ValueError("give either --format or the two columns, not both")
        return columns_format(question_column, answer_column)
    return format


def detect_format(records: Sequence[Any]) -> ProblemFormat | None:
    """The format whose columns the (sampled) records have, or None.

    question/answer files are GSM8K when most answers hold a "####" line, else rstar;
    problem files are MATH when they have an ``answer`` column, else NuminaMath.
    """
    columns = {key for record in records if isinstance(record, dict) for key in record}
    if {"query", "response"} <= columns:
        return FORMATS["metamath"]
    if "problem" in columns:
        if "answer" in columns:
            return FORMATS["math"]
        if "solution" in columns:
            return FORMATS["numina"]
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
