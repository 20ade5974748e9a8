"""Finding the final answer in a model's (or a dataset's) solution text."""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*")
# A brace-relevant token: an escaped character (``\{``, ``\}``, ``\\``) or a bare brace.
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)
_BARE_ARGUMENT = re.compile(r"[^\s${}\\]+")  # ``\boxed 5``: the argument is the next word
# "The answer is: X" (MetaMath), "The final answer is X", and GSM8K's "#### X".
_FALLBACKS = (
    re.compile(r"answer is\b\s*:?[ \t]*([^\n]*)", re.IGNORECASE),
    re.compile(r"####[ \t]*([^\n]*)"),
)
_SENTENCE_END = re.compile(r"\.(?:\s|$)")


def matching_braces(text: str) -> dict[int, int]:
    """Map the index of every balanced ``{`` in ``text`` to the index of its ``}``.

    Escaped braces (``\\{``) do not count. One linear pass, so that looking up many boxes
    in a long (possibly degenerate) generation stays linear too.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_TOKEN.finditer(text):
        if token.group() == "{":
            stack.append(token.start())
        elif token.group() == "}" and stack:
            pairs[stack.pop()] = token.start()
    return pairs


def _last_box(text: str) -> str | None:
    """The last complete, non-empty ``\\boxed{...}``, ``\\fbox{...}`` or ``\\boxed x``."""
    braces: dict[int, int] | None = None
    for box in reversed(list(_BOX.finditer(text))):
        if text.startswith("{", box.end()):
            if braces is None:
                braces = matching_braces(text)
            close = braces.get(box.end())
            content = text[box.end() + 1 : close].strip() if close is not None else ""
        else:
            token = _BARE_ARGUMENT.match(text, box.end())
            content = token.group().rstrip(".") if token else ""
        if content:
            return content
    return None


def _clean_fallback(content: str) -> str:
    """The answer part of the rest of an "answer is ..." / "#### ..." line."""
    content = _SENTENCE_END.split(content, maxsplit=1)[0]
    return content.strip().strip("$*").strip()


def extract_answer(text: str) -> str | None:
    """The final answer stated in ``text``, or None when it states none.

    The last complete ``\\boxed{...}`` wins (nested and escaped braces handled; also
    ``\\fbox{...}`` and ``\\boxed x``). Without a box, the last "The answer is: X" /
    "The answer is X" (MetaMath) or "#### X" (GSM8K) line gives the answer, cut at the end
    of its sentence, with surrounding ``$`` removed.
    """
    boxed = _last_box(text)
    if boxed is not None:
        return boxed
    matches = [m for pattern in _FALLBACKS for m in pattern.finditer(text)]
    for match in sorted(matches, key=lambda m: m.start(), reverse=True):
        answer = _clean_fallback(match.group(1))
        if answer and not _BOX.search(answer):  # an empty or broken box says nothing
            return answer
    return None


def balanced_braces(text: str) -> bool:
    """Whether every bare ``{`` of ``text`` is closed and no ``}`` comes unopened (escaped
    braces, ``\\{`` as in ``\\left\\{``, do not count): a gold answer cut off mid-expression
    fails, since no ``\\boxed{}`` can state it."""
    depth = 0
    for token in _BRACE_TOKEN.finditer(text):
        if token.group() == "{":
            depth += 1
        elif token.group() == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def count_boxes(text: str) -> int:
    """How many ``\\boxed``/``\\fbox`` commands ``text`` holds."""
    return sum(1 for _ in _BOX.finditer(text))
