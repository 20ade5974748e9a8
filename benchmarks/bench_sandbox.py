"""Isolated executions per second of ``rstar.sandbox`` against in-process ``exec``.

Two workloads (``--workload``). ``sympy`` (default): a three-step sympy program, the shape
of a policy's code step (define a symbol, solve an equation, print the answer), with
different coefficients in every program so that no run gets its answer from sympy's cache
of an earlier one:

    from sympy import symbols, Eq, solve
    x = symbols('x')
    print(solve(Eq(A*x + B, C), x)[0])

``toy``: a toy-world gold program (three commented arithmetic steps and a print), with the
tiny profile's preload (math, fractions).

The baseline is what the authors' code does and what we must not: ``exec`` of the same
programs in this process (fresh globals, stdout captured, sympy already imported). The sandbox
runs them with ``run`` one after another, and with ``run_many`` in batches over its workers.
Besides the rates it reports the CPU time the sandbox spends per execution (fork servers and
their children, from psutil): on a machine shared with other jobs the rates depend on the share
of the cores we get, the CPU time much less.

    .venv/bin/python benchmarks/bench_sandbox.py
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
from collections.abc import Callable

import psutil
from tqdm import tqdm

from rstar.sandbox import Sandbox

STEPS = (
    "from sympy import symbols, Eq, solve",
    "x = symbols('x')",
    "print(solve(Eq({}, {}), x)[0])",
)
TOY_PRELOAD = ("math", "fractions")  # the tiny profile's sandbox.preload


def sympy_programs(count: int) -> list[tuple[str, str]]:
    """(program, the stdout it must produce) pairs, all different."""
    cases = []
    for i in range(count):
        a, b, root = 2 + i % 7, 3 + i, i % 11
        equation = STEPS[2].format(f"{a}*x + {b}", b + a * root)
        cases.append(("\n".join((*STEPS[:2], equation)) + "\n", f"{root}\n"))
    return cases


def toy_programs(count: int) -> list[tuple[str, str]]:
    """Toy-world gold programs: three arithmetic steps with comments, as the policy writes."""
    cases = []
    for i in range(count):
        start, add, times = 5 + i % 50, 2 + i % 30, 2 + i % 4
        code = (
            f"# Step 1: Ann starts with {start} apples.\napples = {start}\n"
            f"# Step 2: She buys {add} more.\napples = apples + {add}\n"
            f"# Step 3: Then the number grows {times} times.\napples = apples * {times}\n"
            "# Now print the final answer\nprint(apples)\n"
        )
        cases.append((code, f"{(start + add) * times}\n"))
    return cases


WORKLOADS = {"sympy": (sympy_programs, None), "toy": (toy_programs, TOY_PRELOAD)}


def in_process(codes: list[str]) -> list[str]:
    outputs = []
    for code in codes:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(code, {"__name__": "__main__"})
        outputs.append(buffer.getvalue())
    return outputs


def sandbox_cpu_seconds(sb: Sandbox) -> float:
    """CPU time of the fork servers, their reaped children included."""
    total = 0.0
    for pid in sb.worker_pids:
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def measure(
    label: str, run: Callable[[list[str]], list[str]], cases: list[tuple[str, str]]
) -> float:
    codes = [code for code, _ in cases]
    started = time.perf_counter()
    outputs = run(codes)
    elapsed = time.perf_counter() - started
    wrong = sum(out != expected for out, (_, expected) in zip(outputs, cases, strict=True))
    if wrong:
        raise SystemExit(f"{label}: {wrong} of {len(cases)} programs printed a wrong answer")
    return len(cases) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=400, help="programs per measurement")
    parser.add_argument("--batch", type=int, default=64, help="programs per run_many call")
    parser.add_argument("--workers", type=int, default=None, help="default: the CPU count")
    parser.add_argument(
        "--workload", choices=sorted(WORKLOADS), default="sympy", help="which programs run"
    )
    args = parser.parse_args()
    make, preload = WORKLOADS[args.workload]
    cases = make(args.count)
    in_process([code for code, _ in cases[:20]])  # import and warm sympy, as the servers do
    started = time.perf_counter()
    options = {"preload": preload} if preload else {}
    with Sandbox(timeout=10.0, workers=args.workers, **options) as sb:
        startup = time.perf_counter() - started
        sb.run_many([code for code, _ in cases[:20]])

        def sequential(codes: list[str]) -> list[str]:
            return [sb.run(code).stdout for code in tqdm(codes, desc="run", leave=False)]

        def batched(codes: list[str]) -> list[str]:
            batches = range(0, len(codes), args.batch)
            return [
                result.stdout
                for start in tqdm(batches, desc="run_many", leave=False)
                for result in sb.run_many(codes[start : start + args.batch])
            ]

        baseline = measure("in-process exec", in_process, cases)
        rows = []
        for mode, run in (
            ("`run` (sequential)", sequential),
            (f"`run_many` (batches of {args.batch})", batched),
        ):
            cpu = sandbox_cpu_seconds(sb)
            rate = measure(mode, run, cases)
            rows.append((mode, rate, (sandbox_cpu_seconds(sb) - cpu) / len(cases)))
        load = os.getloadavg()[0]
        print(f"\nisolation: {sb.isolation.value}, {sb.workers} workers, ready in {startup:.2f} s")
    print(f"workload: {args.workload} programs, preload {preload or 'the default'}")
    print(f"load average (1 min) after the run: {load:.1f} on {os.cpu_count()} cores\n")
    print("| mode | programs | executions/s | vs in-process | sandbox CPU per execution |")
    print("|---|---:|---:|---:|---:|")
    print(f"| in-process `exec` (baseline) | {len(cases)} | {baseline:,.0f} | 1 | |")
    for mode, rate, cpu in rows:
        ratio = f"1/{baseline / rate:.1f}"
        print(f"| sandbox {mode} | {len(cases)} | {rate:,.0f} | {ratio} | {cpu * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
