"""Whether a predicted final answer equals the reference answer."""

from __future__ import annotations

import atexit
import os
import threading

from rstar.grading.extract import extract_answer
from rstar.grading.normalize import fast_verdict, normalize_answer
from rstar.grading.pool import VerifierPool

DEFAULT_TIMEOUT = 5.0
# A final answer is a short expression. Longer inputs are never equivalent, which also
# bounds the work normalisation does in the caller's process.
MAX_ANSWER_CHARS = 2000

_pool: VerifierPool | None = None
_pool_lock = threading.Lock()


def _default_pool() -> VerifierPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = VerifierPool()
        return _pool


_inherited_pools: list[VerifierPool] = []


def _after_fork_in_child() -> None:
    """Give a forked child its own pool: the parent's workers answer the parent only.

    The inherited pool is kept referenced and never touched, so that nothing in the
    child writes to, closes or kills the parent's workers.
    """
    global _pool, _pool_lock
    if _pool is not None:
        _inherited_pools.append(_pool)
    _pool, _pool_lock = None, threading.Lock()


def _close_default_pool() -> None:
    if _pool is not None:
        _pool.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_default_pool)


def is_equivalent(prediction: str, reference: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """True if the final answer ``prediction`` has the same value as ``reference``.

    Both are final answers (LaTeX or plain text, with or without ``$``/``\\boxed{}``), not
    whole solutions: see ``grade`` for those. Both are normalised (``normalize_answer``);
    equal strings, plain numbers, choice letters and text answers are decided at once, the
    rest by math-verify (``parse``/``verify``, reference as gold) in a worker process.

    Bounded time: a math-verify check that takes longer than ``timeout`` seconds counts as
    not equivalent (its worker is killed and replaced). Not counted: starting a worker
    (about 1 s, on first use and after a kill), and, for callers beyond the pool's worker
    count (one per core), waiting for a free worker. Safe to call from any thread and
    from child processes (forked ones get their own workers).
    """
    if not isinstance(prediction, str) or not isinstance(reference, str):
        raise TypeError(
            "is_equivalent compares two answer strings, got "
            f"{type(prediction).__name__} and {type(reference).__name__} "
            "(check for a missing answer, e.g. extract_answer returning None, first)"
        )
    if len(prediction) > MAX_ANSWER_CHARS or len(reference) > MAX_ANSWER_CHARS:
        return False
    prediction, reference = normalize_answer(prediction), normalize_answer(reference)
    if not prediction or not reference:
        return False
    verdict = fast_verdict(prediction, reference)
    if verdict is not None:
        return verdict
    return _default_pool().verify(prediction, reference, timeout)


def grade(solution: str, reference: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """True if the final answer stated in ``solution`` (``extract_answer``) equals ``reference``."""
    answer = extract_answer(solution)
    return answer is not None and is_equivalent(answer, reference, timeout=timeout)
