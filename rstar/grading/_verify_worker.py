"""A math-verify worker process, started by ``rstar.grading.pool`` as a script.

Protocol on stdin/stdout, one line each: it first answers ``ready`` (or ``error: ...``),
then reads ``[prediction, reference, seconds]`` as JSON per line and answers ``1`` or ``0``.
It exits at end of input. It imports only the standard library and math-verify, so it
starts fast and does not depend on how the parent found ``rstar``.

math-verify's own timeouts (``signal.alarm``) are off: the parent enforces the deadline
by killing the worker. As a backstop for a worker whose parent died mid-check, each
check also gets a CPU-time limit (the kernel ends the process with SIGXCPU), and the
address space is capped so that a runaway expression fails with MemoryError.
"""

import json
import logging
import math
import os
import resource
import sys
from functools import lru_cache

# CPU seconds beyond a check's deadline before the kernel stops an orphaned worker.
_CPU_GRACE_SECONDS = 2
# One check of each kind of answer before the worker reports ready: sympy and
# math-verify import and initialise a lot on first use (up to 0.5 s per kind), which
# must not count against the first real check's deadline.
_WARM_UP = (
    ("2", r"\sqrt{4}"),
    ("(1,2]", "(1,2)"),
    ("(1,2)", "(2,1)"),
    (r"\{1,2\}", r"\{2,1\}"),
    ("x=2", "2"),
    ("2x+1", "1+2x"),
    (r"\frac{\pi}{2}", "1.5708"),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{pmatrix}1\\3\end{pmatrix}"),
)


def _limit_cpu(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + math.ceil(seconds) + _CPU_GRACE_SECONDS
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def main() -> int:
    memory_mb = int(sys.argv[1])
    # The protocol gets its own descriptor; fd 1 becomes stderr, so that stray prints of
    # imported libraries (antlr warns on stdout) cannot corrupt it.
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def reply(line: str) -> None:
        channel.write(line + "\n")
        channel.flush()

    try:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        limit = memory_mb * 1024 * 1024
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        logging.disable(logging.CRITICAL)  # math-verify logs a warning per timeout-less call
        from math_verify import LatexExtractionConfig, parse, verify

        # LaTeX only: the default also mines plain-text numbers out of whatever LaTeX
        # parsing failed on, which accepts garbage that merely ends in the right number.
        extraction = [LatexExtractionConfig()]

        @lru_cache(maxsize=4096)
        def parse_answer(answer: str) -> list:
            return parse(f"${answer}$", extraction_config=extraction, parsing_timeout=None)

        def equivalent(prediction: str, reference: str) -> bool:
            gold, target = parse_answer(reference), parse_answer(prediction)
            return bool(gold and target and verify(gold, target, timeout_seconds=None))

        for prediction, reference in _WARM_UP:
            equivalent(prediction, reference)
    except Exception as exc:  # reported to the parent, which raises it with context
        reply(f"error: {type(exc).__name__}: {exc}")
        return 1
    reply("ready")
    for line in sys.stdin:
        prediction, reference, seconds = json.loads(line)
        _limit_cpu(seconds)
        try:
            verdict = equivalent(prediction, reference)
        except Exception:  # e.g. MemoryError, RecursionError: such an input is not equal
            verdict = False
        reply("1" if verdict else "0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
