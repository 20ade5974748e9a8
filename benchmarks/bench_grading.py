"""Answer pairs per second of ``rstar.grading.is_equivalent`` against plain math-verify.

Two workloads built from the shipped benchmarks' gold answers:

* numeric: every GSM8K gold against itself, against itself written differently
  (``\\$1,000.00`` style) and against a wrong number, the typical grading load;
* symbolic: every non-numeric MATH500 gold against itself with its spaces removed, and
  against the next problem's gold, keeping the pairs that need math-verify (the string
  and number fast paths cannot decide them).

The baseline is what one would write without ``rstar.grading``: ``math_verify.parse`` and
``verify`` in this process, with their default (``signal.alarm``) timeouts, main thread only.

    .venv/bin/python benchmarks/bench_grading.py
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from math_verify import parse, verify

from rstar.evaluate.benchmarks import load_benchmark
from rstar.grading import is_equivalent, normalize_answer
from rstar.grading.normalize import fast_verdict


def _answers(name: str) -> list[str]:
    return [p.answer for p in load_benchmark(name).problems if p.answer is not None]


def numeric_pairs() -> list[tuple[str, str]]:
    pairs = []
    for gold in _answers("gsm8k"):
        value = int(gold.replace(",", ""))
        pairs += [(gold, gold), (f"\\${value:,}.00", gold), (str(value + 1), gold)]
    return pairs


def symbolic_pairs() -> list[tuple[str, str]]:
    golds = [g for g in _answers("math500") if not g.lstrip("-").replace(".", "").isdigit()]
    pairs = [(g.replace(" ", ""), g) for g in golds]
    pairs += [(golds[(i + 1) % len(golds)], g) for i, g in enumerate(golds)]
    return [
        (p, r) for p, r in pairs if fast_verdict(normalize_answer(p), normalize_answer(r)) is None
    ]


def math_verify_baseline(prediction: str, reference: str) -> bool:
    return verify(parse(f"${reference}$"), parse(f"${prediction}$"))


def rate(check: Callable[[str, str], bool], pairs: list[tuple[str, str]], threads: int) -> float:
    started = time.perf_counter()
    if threads == 1:
        for prediction, reference in pairs:
            check(prediction, reference)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda pair: check(*pair), pairs))
    return len(pairs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for the threaded run")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    is_equivalent("2", r"\sqrt{4}")  # start one worker before timing
    print(
        f"{'workload':10} {'pairs':>6} {'baseline':>10} {'rstar 1 thr':>12} {'rstar threads':>14}"
    )
    for name, pairs in (("numeric", numeric_pairs()), ("symbolic", symbolic_pairs())):
        baseline = rate(math_verify_baseline, pairs, 1)
        ours = rate(is_equivalent, pairs, 1)
        threaded = rate(is_equivalent, pairs, args.threads)
        print(
            f"{name:10} {len(pairs):6d} {baseline:8.0f}/s {ours:10.0f}/s {threaded:12.0f}/s"
            f"   ratios vs baseline: {ours / baseline:.1f}x, {threaded / baseline:.1f}x"
            f" ({args.threads} threads)"
        )


if __name__ == "__main__":
    main()
