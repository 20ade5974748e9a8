"""Gold answers: a single final answer, or several that are all accepted.

Benchmark files give most gold answers as a string, a few as a list of accepted answers
(MATH lists both foci of a hyperbola). Everywhere a gold answer travels (problem tables,
search trees, the store) it is one string, so a list is kept as its JSON text
(``["3", "-3"]``); :func:`gold_answers` reads it back and :func:`is_correct` accepts a
prediction equivalent to any of them.
"""

from __future__ import annotations

import json
from typing import Any

from rstar.grading.equivalence import DEFAULT_TIMEOUT, MAX_ANSWER_CHARS, is_equivalent
from rstar.grading.extract import balanced_braces, count_boxes, extract_answer


def gold_text(value: Any) -> str | None:
    """The gold answer of a record's field as one string: a string or number as it is
    (stripped; one that holds a single ``\\boxed{}``, as the box's content), a list of
    strings as its JSON text (a one-element list as the element); None for anything
    empty or of another type."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _unboxed(value.strip()) or None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        answers = [v.strip() for v in value if v.strip()]
        if not answers:
            return None
        return answers[0] if len(answers) == 1 else json.dumps(answers, ensure_ascii=False)
    return None


def _unboxed(answer: str) -> str:
    """The content of the one ``\\boxed{}`` a gold answer holds (``\\[\\boxed{60}\\]``: 60);
    the answer itself when it holds none, or several."""
    if count_boxes(answer) != 1:
        return answer
    return extract_answer(answer) or answer


def gold_answers(gold: str) -> tuple[str, ...]:
    """The accepted answers of a gold answer made by :func:`gold_text`."""
    if gold.startswith("[") and gold.endswith("]"):
        try:
            value = json.loads(gold)
        except json.JSONDecodeError:
            return (gold,)
        if isinstance(value, list) and len(value) > 1 and all(isinstance(v, str) for v in value):
            return tuple(value)
    return (gold,)


def unusable_gold(gold: str) -> str | None:
    """Why no prediction can ever match ``gold``, or None when it is usable.

    Checked by the gold's shape alone, not by grading it, so that a grader regression
    shows as failed oracle checks instead of hiding among unusable rows.
    """
    for answer in gold_answers(gold):
        if len(answer) > MAX_ANSWER_CHARS:
            return f"longer than {MAX_ANSWER_CHARS} characters (a proof, not a final answer)"
        if not balanced_braces(answer):
            return "unbalanced braces (cut off in the source)"
        if (len(answer) - len(answer.rstrip("\\"))) % 2:
            return "ends in a lone backslash (cut off in the source)"
        if count_boxes(answer) > 1:
            return "holds several \\boxed{} answers, which no single boxed answer can match"
    return None


def is_correct(
    prediction: str | None, gold: str | None, *, timeout: float = DEFAULT_TIMEOUT
) -> bool:
    """Whether ``prediction`` equals one of the answers ``gold`` accepts (False when
    either is missing). Same bounded time as :func:`is_equivalent` per accepted answer."""
    if prediction is None or gold is None:
        return False
    return any(is_equivalent(prediction, g, timeout=timeout) for g in gold_answers(gold))
