"""rstar.grading: answer extraction, normalisation, equivalence, and its time bound."""

from __future__ import annotations

import json
import multiprocessing
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import rstar.grading.pool as grading_pool
from rstar.evaluate.benchmarks import PAPER_BENCHMARKS, load_benchmark
from rstar.grading import (
    DEFAULT_TIMEOUT,
    MAX_ANSWER_CHARS,
    VerifierPool,
    WorkerStartError,
    extract_answer,
    gold_answers,
    gold_text,
    grade,
    is_correct,
    is_equivalent,
    normalize_answer,
    unusable_gold,
)

# (prediction, reference, expected): what a careful human grader would say.
PAIRS = [
    # fractions, decimals, \dfrac
    (r"0.5", r"\frac{1}{2}", True),
    (r"\frac12", r"\dfrac{1}{2}", True),
    (r"\tfrac{3}{4}", r"0.75", True),
    (r"1/2", r"\frac{1}{2}", True),
    (r"-\frac{3}{2}", r"-1.5", True),
    (r"\frac{-3}{2}", r"-\frac{3}{2}", True),
    (r"\frac{10}{4}", r"\frac52", True),
    (r"0.333333", r"\frac{1}{3}", True),
    (r"0.33", r"\frac{1}{3}", False),
    (r"1/2", r"1/3", False),
    (r"\frac95", r"1\frac{4}{5}", True),
    (r"137.5", r"137 \frac{1}{2}", True),
    (r"0.0000672", r".0000672", True),
    (r"5.00", r"5", True),
    # radicals, pi, expressions
    (r"\sqrt{8}", r"2\sqrt{2}", True),
    (r"\frac{1}{\sqrt{3}}", r"\frac{\sqrt{3}}{3}", True),
    (r"\sqrt{2}", r"2", False),
    (r"\sqrt{3}", r"\sqrt{2}", False),
    (r"\pi/2", r"\frac{\pi}{2}", True),
    (r"\frac{\pi}{2}", r"\frac{\pi}{3}", False),
    (r"2+\pi", r"\pi+2", True),
    (r"1+2x", r"2x+1", True),
    (r"x^2-1", r"(x-1)(x+1)", True),
    (r"x^2+1", r"(x-1)(x+1)", False),
    (r"2", r"-2", False),
    (r"1+2i", r"1 + 2i", True),
    (r"3+2\text{i}", r"3+2i", True),
    (r"3-2i", r"3+2i", False),
    # tuples, intervals, sets, matrices
    (r"(3,\pi/2)", r"\left( 3, \frac{\pi}{2} \right)", True),
    (r"(3,\pi)", r"\left( 3, \frac{\pi}{2} \right)", False),
    (r"(1,2]", r"(1,2]", True),
    (r"(1,2)", r"(1,2]", False),
    (r"[1,2]", r"(1,2)", False),
    (r"(2,1)", r"(1,2)", False),
    (r"(-\infty,0]", r"(-\infty, 0]", True),
    (r"(-\infty,2)\cup(3,\infty)", r"(-\infty, 2) \cup (3, \infty)", True),
    (r"\{2,1\}", r"\{1,2\}", True),
    (r"\{1,3\}", r"\{1,2\}", False),
    (r"[-2,7]", r"x \in [-2,7]", True),
    (
        r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}",
        r"\begin{pmatrix}-1&0\\0&-1\end{pmatrix}",
        True,
    ),
    (
        r"\begin{pmatrix} 1/5 \\ -18/5 \end{pmatrix}",
        r"\begin{pmatrix} 0.2 \\ -3.6 \end{pmatrix}",
        True,
    ),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix} 2 \\ 1 \end{pmatrix}", False),
    # equations and assignments
    (r"x = 2", r"2", True),
    (r"2", r"x=5", False),
    (r"5", r"x=5", True),
    (r"2x+3", r"y = 2x + 3", True),
    (r"y = 2x + 4", r"y = 2x + 3", False),
    # multiple choice
    (r"B", r"(B)", True),
    (r"(B)", r"\text{(B)}", True),
    (r"\textbf{(B)}", r"B", True),
    (r"\textbf{(B) }14", r"\text{(B)}", True),
    (r"C", r"\text{(E)}", False),
    (r"14", r"\text{(B)}", False),
    # thousands separators
    (r"1000", r"1,000", True),
    (r"10080", r"10,\!080", True),
    (r"11111111100", r"11,\! 111,\! 111,\! 100", True),
    (r"1{,}450{,}000", r"1,450,000", True),
    (r"1,001", r"1000", False),
    # currency
    (r"\$5", r"5", True),
    (r"$5.00", r"5", True),
    (r"32348", r"\$32,\!348", True),
    (r"18.9", r"\$18.90", True),
    (r"\$18.91", r"\$18.90", False),
    # units and degrees
    (r"10 cm", r"10", True),
    (r"864", r"864 \mbox{ inches}^2", True),
    (r"15\text{ cm}^2", r"15\mbox{ cm}^2", True),
    (r"5.4", r"5.4 \text{ cents}", True),
    (r"\frac{270}{7}", r"\frac{270}7\text{ degrees}", True),
    (r"12 square feet", r"12", True),
    (r"30", r"30^\circ", True),
    (r"30°", r"30^\circ", True),
    (r"30^{\circ}", r"30", True),
    (r"31^\circ", r"30^\circ", False),
    # percent: the sign is dropped, 0.5 is not 50%
    (r"50\%", r"50", True),
    (r"50", r"50\%", True),
    (r"50 percent", r"50\%", True),
    (r"0.5", r"50\%", False),
    # text answers
    (r"No", r"\text{No}", True),
    (r"no", r"\text{No}", True),
    (r"\text{Wednesday}", r"Wednesday", True),
    (r"\textbf{EVEN}", r"\text{even}", True),
    (r"odd", r"\text{even}", False),
    (r"\text{Evelyn}", r"\text{Navin}", False),
    # other bases are compared as written
    (r"52_8", r"52_8", True),
    # answers in words, or garbage ending in the right number, are not the number
    (r"\text{the total is } 12", r"12", False),
    ("5 cm" * 400 + "5", r"5", False),
]


def _short_id(value: object) -> str | None:
    return value[:30] + "..." if isinstance(value, str) and len(value) > 33 else None


@pytest.mark.parametrize(("prediction", "reference", "expected"), PAIRS, ids=_short_id)
def test_is_equivalent_on_labelled_pairs(prediction: str, reference: str, expected: bool) -> None:
    assert is_equivalent(prediction, reference) is expected


def test_the_table_is_large_and_has_near_misses() -> None:
    assert len(PAIRS) >= 60
    assert sum(not expected for _, _, expected in PAIRS) >= 20


def _benchmark_answers(names: Iterable[str] = PAPER_BENCHMARKS) -> list[str]:
    """Every accepted gold answer of the scorable rows of the shipped benchmarks ``names``."""
    return [
        accepted
        for name in names
        for problem in load_benchmark(name).problems
        if problem.answer is not None
        for accepted in gold_answers(problem.answer)
    ]


def test_every_benchmark_answer_equals_itself_and_its_boxed_extraction() -> None:
    answers = _benchmark_answers()
    # every row of the nine files but the 20 without a usable gold; MATH's 4 lists add 4
    assert len(answers) == 15_195 - 20 + 4
    for gold in answers:
        extracted = extract_answer(f"The answer is \\boxed{{{gold}}}.")
        assert extracted == gold
        assert is_equivalent(gold, gold), gold
        assert is_equivalent(extracted, gold), gold


def test_normalisation_keeps_every_benchmark_answer_parseable_and_its_value() -> None:
    """math-verify alone, no fast path: each normalised gold equals the raw gold (the four
    benchmarks whose answers are all math-verify expressions; Omni-MATH and others also
    hold prose answers, which are compared as text)."""
    answers = sorted(set(_benchmark_answers(("aime2024", "amc23", "gsm8k", "math500"))))
    with VerifierPool(max_workers=1) as pool:
        rejected = [a for a in answers if not pool.verify(normalize_answer(a), a, timeout=5)]
    assert rejected == []


def test_gold_answers_that_accept_several_or_cannot_be_matched() -> None:
    assert gold_text(["(10,0)", "(0,0)"]) == '["(10,0)", "(0,0)"]'
    assert gold_answers('["(10,0)", "(0,0)"]') == ("(10,0)", "(0,0)")
    assert gold_text([" 7 "]) == "7" and gold_text(3) == "3" and gold_text("  ") is None
    assert gold_text("\\[\n\\boxed{\\frac{\\pi}{4}}\n\\]") == "\\frac{\\pi}{4}"
    assert gold_answers("[0, 1]") == ("[0, 1]",)  # an interval, not a list of answers
    assert is_correct("(0, 0)", '["(10,0)", "(0,0)"]')
    assert not is_correct("(1,0)", '["(10,0)", "(0,0)"]')
    assert not is_correct(None, "3") and not is_correct("3", None)
    assert unusable_gold("\\frac{5055}{2^{15}").startswith("unbalanced braces")
    assert unusable_gold("\\left\\{ 1, 2 \\right\\}") is None
    assert unusable_gold("x \\right.\\").startswith("ends in a lone backslash")
    assert unusable_gold("\\boxed{1}, \\boxed{2}").startswith("holds several")
    assert unusable_gold("x" * (MAX_ANSWER_CHARS + 1)).startswith("longer than")


@pytest.mark.parametrize(
    ("answer", "normalised"),
    [
        (r"$\boxed{\dfrac{1}{2}}$.", r"\frac{1}{2}"),
        (r"\left( 3, \frac{\pi}{2} \right)", r"( 3, \frac{\pi}{2} )"),
        (r"\$32,\!348", "32348"),
        (r"11,\! 111,\! 111,\! 100", "11111111100"),
        (r"1,2", "1,2"),
        (r"(1,234)", "(1,234)"),
        (r"864 \mbox{ inches}^2", "864"),
        (r"5 \text{ cm}", "5"),
        (r"\text{ cm}", "cm"),
        (r"3+2\text{i}", "3+2i"),
        (r"90^\circ", "90"),
        (r"25\%", "25"),
        (r"\text{(C)}", "(C)"),
        (r"\text{Evelyn}", "Evelyn"),
        (r"2m", "2m"),
        (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        ("  x\n=\t2 ", "x = 2"),
    ],
)
def test_normalize_answer(answer: str, normalised: str) -> None:
    assert normalize_answer(answer) == normalised


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"so $x = \boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
        (r"\boxed{\{1, \{2\}\}}", r"\{1, \{2\}\}"),
        (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
        (r"first \boxed{1}, then \boxed{2}", "2"),
        (r"\boxed{3} and finally \fbox{4}", "4"),
        (r"The answer is $\boxed 5$.", "5"),
        (r"\boxed{7} but then \boxed{8", "7"),
        (r"\boxed{7} then \boxed{ }", "7"),
        (r"\boxedtext{1} \boxed{2}", "2"),
        ("The answer is: 18", "18"),
        ("We get 3.5 apples. The answer is $\\frac{7}{2}$. I hope it is correct.", r"\frac{7}{2}"),
        ("The final answer is 3.14.", "3.14"),
        ("The answer isn't 4. The answer is **5**", "5"),
        ("Janet sells 9 eggs.\n#### 1,234", "1,234"),
        ("#### 5\nThe answer is: 6", "6"),
        ("The answer is: 6\n#### 5", "5"),
        ("<answer>The answer is \\boxed{42}.<end_of_answer>", "42"),
    ],
)
def test_extract_answer(text: str, answer: str) -> None:
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    "text",
    ["", "no answer here", r"\boxed{}", r"\boxed{1", "The answer is", r"The answer is \boxed{}."],
)
def test_extract_answer_finds_none(text: str) -> None:
    assert extract_answer(text) is None


def test_extract_answer_is_linear_on_degenerate_generations() -> None:
    text = r"\boxed{" * 20_000 + r"\fbox" * 20_000 + "The answer is 3"
    started = time.monotonic()
    assert extract_answer(text) == "3"
    assert time.monotonic() - started < 0.5


def test_grade_extracts_then_compares() -> None:
    assert grade(r"Hence the ratio is $\boxed{\dfrac{1}{2}}$.", "0.5") is True
    assert grade(r"Hence the ratio is $\boxed{\dfrac{1}{3}}$.", "0.5") is False
    assert grade("I could not solve it.", "0.5") is False


def test_pathological_input_returns_false_within_the_timeout() -> None:
    assert is_equivalent(r"\sqrt{8}", r"2\sqrt{2}")  # a warm worker
    started = time.monotonic()
    assert is_equivalent(r"9^{9^{9^{9}}}", "1", timeout=1.0) is False
    assert time.monotonic() - started < 1.0 + 1.5
    assert DEFAULT_TIMEOUT <= 5.0
    # The worker that overran was replaced: the pool still answers.
    assert is_equivalent(r"\sqrt{8}", r"2\sqrt{2}") is True


def test_overlong_answers_are_not_equivalent_and_cost_nothing() -> None:
    garbage = "(" * (MAX_ANSWER_CHARS + 1)
    started = time.monotonic()
    assert is_equivalent(garbage, garbage) is False
    assert is_equivalent("1", "1" * 100_000) is False
    assert time.monotonic() - started < 0.1


def test_thread_safe_with_a_hung_check_among_them() -> None:
    jobs = [(p, r, e) for p, r, e in PAIRS if not e] + [(p, r, e) for p, r, e in PAIRS if e]
    jobs.insert(3, (r"9^{9^{9^{9}}}", "1", False))
    with ThreadPoolExecutor(max_workers=6) as threads:
        results = list(threads.map(lambda job: is_equivalent(job[0], job[1], timeout=3.0), jobs))
    assert results == [expected for _, _, expected in jobs]


def _grade_in_child(results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    results.put([is_equivalent(p, r) for p, r, _ in PAIRS[:20]])


def test_from_a_forked_child_which_does_not_touch_the_parents_workers() -> None:
    assert is_equivalent(r"\sqrt{8}", r"2\sqrt{2}")  # the parent has a worker now
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_grade_in_child, args=(results,))
    child.start()
    assert results.get(timeout=60) == [expected for _, _, expected in PAIRS[:20]]
    child.join(timeout=30)
    assert child.exitcode == 0
    assert is_equivalent(r"\frac{1}{\sqrt{3}}", r"\frac{\sqrt{3}}{3}")


def test_from_daemonic_multiprocessing_pool_workers() -> None:
    jobs = [(p, r) for p, r, _ in PAIRS[14:24]]
    with multiprocessing.get_context("spawn").Pool(2) as workers:
        results = workers.starmap(is_equivalent, jobs)
    assert results == [expected for _, _, expected in PAIRS[14:24]]


def test_bad_arguments_get_clear_errors() -> None:
    with pytest.raises(TypeError, match="two answer strings, got NoneType and str"):
        is_equivalent(None, "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got 0"):
        is_equivalent(r"\sqrt{4}", "2", timeout=0)
    with pytest.raises(ValueError, match="max_workers must be at least 1, got 0"):
        VerifierPool(max_workers=0)


def test_pool_refuses_work_after_close() -> None:
    pool = VerifierPool(max_workers=1)
    assert pool.verify("2", r"\sqrt{4}", timeout=5) is True
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.verify("2", r"\sqrt{4}", timeout=5)


def test_worker_start_failure_names_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv.create(tmp_path / "bare", with_pip=False)  # an interpreter without math-verify
    bare_python = tmp_path / "bare" / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(bare_python))
    with VerifierPool(max_workers=1) as pool, pytest.raises(WorkerStartError) as error:
        pool.verify("2", r"\sqrt{4}", timeout=5)
    assert str(bare_python) in str(error.value)
    assert "ModuleNotFoundError" in str(error.value)


def test_orphaned_worker_is_stopped_by_its_cpu_limit() -> None:
    """Without a parent to kill it, a worker stuck on one check still ends (SIGXCPU)."""
    script = Path(grading_pool.__file__).with_name("_verify_worker.py")
    worker = subprocess.Popen(
        [sys.executable, "-P", str(script), "4096"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert worker.stdout is not None and worker.stdin is not None
    assert worker.stdout.readline() == b"ready\n"
    worker.stdin.write(json.dumps([r"9^{9^{9^{9}}}", "1", 1]).encode() + b"\n")
    worker.stdin.flush()
    try:
        assert worker.wait(timeout=30) == -signal.SIGXCPU
    finally:
        worker.kill()
        worker.wait()
