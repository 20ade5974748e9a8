"""Decontamination against benchmark questions: exact match and n-gram overlap.

Text is compared as lower-cased word tokens (``\\w+`` after NFKC), so spacing, case and
punctuation differences do not hide a copy. A problem is contaminated when its token
sequence equals a benchmark question's (exact), or when it shares any run of ``n``
consecutive tokens with one (n-gram; 13 is the common choice, e.g. GPT-3's and
Llama's decontamination). Texts shorter than ``n`` tokens can only match exactly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rstar.problems.readers import iter_records

_WORD_RE = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


def _ngrams(words: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class Contamination:
    """Which benchmark question a problem matched, and how ("exact" or "13-gram")."""

    benchmark: str
    index: int  # position of the question in the benchmark file
    kind: str

    def __str__(self) -> str:
        how = "exact match" if self.kind == "exact" else f"{self.kind} overlap"
        return f"{how} with {self.benchmark} #{self.index}"


class Decontaminator:
    """Checks questions against benchmarks given as {name: [question, ...]}."""

    def __init__(self, benchmarks: Mapping[str, Sequence[str]], n: int = 13) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.names = sorted(benchmarks)
        self._exact: dict[str, tuple[str, int]] = {}
        self._ngrams: dict[tuple[str, ...], tuple[str, int]] = {}
        for name in self.names:
            for index, question in enumerate(benchmarks[name]):
                words = tokens(question)
                self._exact.setdefault(" ".join(words), (name, index))
                for gram in _ngrams(words, n):
                    self._ngrams.setdefault(gram, (name, index))

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], n: int = 13) -> Decontaminator:
        """Benchmarks from files of records with a ``question`` field (the authors'
        benchmark format), each named by its file stem."""
        benchmarks = {}
        for path in map(Path, paths):
            records = [r.value for r in iter_records(path)]
            bad = [
                i for i, r in enumerate(records) if not isinstance(r, dict) or "question" not in r
            ]
            if bad:
                raise ValueError(f"{path}: record {bad[0]} has no 'question' field")
            benchmarks[path.stem] = [str(r["question"]) for r in records]
        return cls(benchmarks, n)

    def check(self, question: str) -> Contamination | None:
        """The first benchmark question this one matches, or None."""
        words = tokens(question)
        hit = self._exact.get(" ".join(words))
        if hit:
            return Contamination(hit[0], hit[1], "exact")
        for gram in _ngrams(words, self.n):
            hit = self._ngrams.get(gram)
            if hit:
                return Contamination(hit[0], hit[1], f"{self.n}-gram")
        return None
