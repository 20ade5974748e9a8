"""Answer extraction and equivalence checking for math problems.

``extract_answer`` finds the final answer in a solution text, ``is_equivalent`` compares
two final answers (normalisation and exact fast paths first, math-verify in bounded-time
worker processes for the rest), ``grade`` does both; ``is_correct`` grades a prediction
against a gold answer that may accept several answers (``rstar.grading.gold``). The
module docstring of ``rstar.grading.normalize`` lists the decisions on percent, units,
thousands separators, decimals, multiple choice and text answers.
"""

from rstar.grading.equivalence import DEFAULT_TIMEOUT, MAX_ANSWER_CHARS, grade, is_equivalent
from rstar.grading.extract import extract_answer
from rstar.grading.gold import gold_answers, gold_text, is_correct, unusable_gold
from rstar.grading.normalize import normalize_answer
from rstar.grading.pool import VerifierPool, WorkerStartError

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_ANSWER_CHARS",
    "VerifierPool",
    "WorkerStartError",
    "extract_answer",
    "gold_answers",
    "gold_text",
    "grade",
    "is_correct",
    "is_equivalent",
    "normalize_answer",
    "unusable_gold",
]
