"""Stable problem ids: a hash of the normalised question, so the same question from two
sources (or two runs) gets the same id."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE_RE = re.compile(r"\s+")


def normalize_question(question: str) -> str:
    """NFKC, whitespace runs collapsed to one space, ends stripped. Case is kept ($A$ ≠ $a$)."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", question)).strip()


def problem_id(question: str) -> str:
    """16 hex digits of BLAKE2b over the normalised question (64 bits: no collision is
    expected below billions of problems)."""
    digest = hashlib.blake2b(normalize_question(question).encode("utf-8"), digest_size=8)
    return digest.hexdigest()
