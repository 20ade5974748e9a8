"""Normalising final answers, and the verdicts that need no computer algebra.

Normalisation removes what does not change the value of a final answer: delimiters
(``$``, ``\\(``, ``\\boxed{}``, a ``\\text{}`` around the whole answer), ``\\left``/``\\right``,
spacing commands, ``\\dfrac``, currency signs, trailing units, degree marks and percent
signs, thousands separators. Most pairs are then decided here, by string or exact
rational comparison, and never reach math-verify.

Decisions (see also ``rstar.grading.is_equivalent``):

* Percent: the ``%`` sign is dropped, so ``50\\%`` == ``50``, and ``50\\%`` != ``0.5``.
  Benchmarks state percentages as the number of percent, and a grader under which
  ``50%`` equals both ``50`` and ``0.5`` would not be transitive.
* Units and degrees: a trailing ``\\text{...}`` / ``\\mbox{...}`` (with an optional ``^2``
  or ``^3``), a trailing unit word from a fixed list after a space (``10 cm``,
  ``5 square feet``), and ``^\\circ`` / ``°`` are dropped; units are not converted
  (``30^\\circ`` != ``\\frac{\\pi}{6}``, ``5 cents`` != ``0.05``).
* Thousands separators: a whole answer of the form ``1,234`` / ``1,234,567.5`` is a
  number; anything else with commas (``1,2``, ``(1,234)``) is a list or tuple.
* Decimals: plain numbers compare exactly, except that when either side is written
  with a decimal point both are rounded to 6 decimal places first, as math-verify does
  (so ``0.333333`` == ``\\frac{1}{3}``).
* Multiple choice: a reference that is a choice letter A-E (``B``, ``(B)``,
  ``\\text{(B)}``, ``\\textbf{(B)} 14``) matches exactly the predictions naming the same
  letter; the value of the option does not.
* Text: answers made only of words compare case-insensitively (``\\text{No}`` == ``no``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import NamedTuple

from rstar.grading.extract import matching_braces

_WRAPPER = re.compile(
    r"\\(?:boxed|fbox|text|textbf|textrm|textit|textup|textnormal|mathrm|mathbf|mbox)\s*\{"
)
_DELIMITERS = (("\\(", "\\)"), ("\\[", "\\]"))
# One pass over the string; ``\\`` (a matrix row break) is matched first so that the
# backslash it ends with is never read as the start of ``\ `` or ``\,``.
_REWRITE = re.compile(
    r"(?P<keep>\\\\)"
    r"|(?P<drop>\\(?:left|right|displaystyle)(?![A-Za-z])|\\!\s*|\\,|\\?\$)"
    r"|(?P<space>\\[;: ]|\\q?quad(?![A-Za-z])|~)"
    r"|(?P<frac>\\[dt]frac(?![A-Za-z]))"
    r"|(?P<comma>\{,\})"
    r"|(?P<imaginary>\\(?:text|textrm|mathrm|mbox)\{\s*i\s*\})"
)
_REPLACEMENT = {"drop": "", "space": " ", "frac": "\\frac", "comma": ",", "imaginary": "i"}
_TRAILING_PUNCTUATION = re.compile(r"[\s.,;:]+$")
_POWER = r"(?:\s*\^\s*\{?\s*[23]\s*\}?|[²³])?"
_UNIT_WORDS = (
    "mm|cm|m|km|in|inch|inches|ft|foot|feet|yd|yards?|mi|miles?|"
    "(?:milli|centi|kilo)?met(?:er|re)s?|mg|g|kg|(?:milli|kilo)?grams?|lbs?|pounds?|oz|ounces?|"
    "ml|l|(?:milli)?lit(?:er|re)s?|gallons?|"
    "s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?|weeks?|months?|years?|"
    "mph|km/h|dollars?|cents?|degrees?|units?|percent"
)
_SUFFIXES = (
    re.compile(r"\\?%$|\\percent$"),
    re.compile(r"\^\s*\{?\s*\\circ\s*\}?$|\\circ$|°$|\\degree$"),
    re.compile(
        r"\\(?:text|textrm|textup|textnormal|textit|mbox|mathrm)\s*"
        r"\{\s*[A-Za-z][A-Za-z .]*?\s*\}" + _POWER + "$"
    ),
    re.compile(
        r"(?<=[\d}])\s+(?:(?:square|sq\.?|cubic|cu\.?)\s+)?(?:" + _UNIT_WORDS + ")" + _POWER + "$",
        re.IGNORECASE,
    ),
)
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")

_TEXT_ARGUMENT = re.compile(
    r"\\(?:text|textbf|textrm|textit|textup|textnormal|mathrm|mathbf|mbox)\s*\{([^{}]*)\}"
)
_CHOICE = re.compile(r"\(([A-E])\)(?:\s*\S.*)?|([A-E])\)?", re.DOTALL)
_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_ASSIGNMENT = re.compile(r"[A-Za-z]\s*=\s*([^=]+)")

_MAX_NUMBER_CHARS = 100
_DECIMAL = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)")
_SLASH = re.compile(r"([+-]?)(\d+)\s*/\s*(\d+)")
_FRAC = re.compile(
    r"([+-]?)(?:(\d+)\s*)?\\frac\s*(?:\{\s*([+-]?\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))"
)
_DECIMAL_PLACES = 6


def _unwrap(answer: str) -> str:
    """Strip delimiters and commands that enclose the whole answer."""
    while True:
        answer = answer.strip()
        for opening, closing in _DELIMITERS:
            if answer.startswith(opening) and answer.endswith(closing):
                answer = answer[len(opening) : -len(closing)]
                break
        else:
            wrapper = _WRAPPER.match(answer)
            if not (wrapper and answer.endswith("}")):
                return answer
            if matching_braces(answer).get(wrapper.end() - 1) != len(answer) - 1:
                return answer
            answer = answer[wrapper.end() : -1]


def _rewrite(match: re.Match[str]) -> str:
    return match.group() if match.lastgroup == "keep" else _REPLACEMENT[match.lastgroup or ""]


def _strip_suffix(answer: str) -> str:
    """Drop one trailing unit, degree mark or percent sign, if the rest is not empty."""
    for suffix in _SUFFIXES:
        match = suffix.search(answer)
        rest = answer[: match.start()].rstrip() if match else ""
        if rest:
            return rest
    return answer


def normalize_answer(answer: str) -> str:
    """``answer`` with the notation that does not change its value removed (module doc)."""
    answer = " ".join(answer.split())
    while True:
        previous = answer
        answer = _REWRITE.sub(_rewrite, _unwrap(answer))
        answer = _strip_suffix(_TRAILING_PUNCTUATION.sub("", answer))
        if answer == previous:
            break
    if _THOUSANDS.fullmatch(answer):
        answer = answer.replace(",", "")
    return answer


class Number(NamedTuple):
    """A plain number: its exact value, and whether it was written with a decimal point."""

    value: Fraction
    decimal: bool


def parse_number(answer: str) -> Number | None:
    """A normalised answer as a plain number (integer, decimal, ``a/b``, ``\\frac``, mixed)."""
    if len(answer) > _MAX_NUMBER_CHARS:
        return None
    if match := _DECIMAL.fullmatch(answer):
        value = Fraction(match.group(2))
        return Number(-value if match.group(1) == "-" else value, "." in answer)
    if match := _SLASH.fullmatch(answer):
        sign, numerator, denominator = match.groups()
        whole = "0"
    elif match := _FRAC.fullmatch(answer):
        sign, whole, braced_num, bare_num, braced_den, bare_den = match.groups()
        numerator, denominator = braced_num or bare_num, braced_den or bare_den
        if whole is not None and numerator.startswith(("+", "-")):
            return None
        whole = whole or "0"
    else:
        return None
    if int(denominator) == 0:
        return None
    value = int(whole) + Fraction(int(numerator), int(denominator))
    return Number(-value if sign == "-" else value, False)


def _numbers_equal(a: Number, b: Number) -> bool:
    if a.value == b.value:
        return True
    if a.decimal or b.decimal:
        return round(a.value, _DECIMAL_PLACES) == round(b.value, _DECIMAL_PLACES)
    return False


def choice_letter(answer: str) -> str | None:
    """The choice letter a normalised answer names (``(B)``, ``B``, ``\\textbf{(B)} 14``)."""
    match = _CHOICE.fullmatch(_TEXT_ARGUMENT.sub(r"\1", answer).strip())
    return (match.group(1) or match.group(2)) if match else None


def _is_text(answer: str) -> bool:
    return _WORDS.fullmatch(answer) is not None and sum(c.isalpha() for c in answer) >= 2


def _right_hand_side(answer: str, other: str) -> str:
    """``2`` for ``x = 2`` when ``other`` is no equation (math-verify's rule for assignments)."""
    match = _ASSIGNMENT.fullmatch(answer)
    return match.group(1).strip() if match and "=" not in other else answer


def fast_verdict(prediction: str, reference: str) -> bool | None:
    """The verdict on two normalised answers where it needs no computer algebra, else None.

    Decided here: equal strings; a multiple-choice reference; two plain numbers
    (``x = 2`` counts as ``2`` against a reference without ``=``); equal text answers.
    """
    if prediction == reference:
        return True
    letter = choice_letter(reference)
    if letter is not None:
        return choice_letter(prediction) == letter
    predicted = parse_number(_right_hand_side(prediction, reference))
    expected = parse_number(_right_hand_side(reference, prediction))
    if predicted is not None and expected is not None:
        return _numbers_equal(predicted, expected)
    if _is_text(prediction) and _is_text(reference) and prediction.lower() == reference.lower():
        return True
    return None
