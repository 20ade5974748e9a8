"""Generated tokens per second of the transformers backend at several batch sizes.

The same workload (``--prompts`` prompts x ``--n`` samples, temperature 1, the format's stop
strings, a fixed seed) is generated once per batch size; only ``batch_size`` changes, so the
ratios measure batching. Without ``--model`` a tiny policy is built (LlamaConfig hidden 128,
4 layers, a 512-token BPE tokenizer with the format's markers: about 1.2 M parameters,
random weights).

    .venv/bin/python benchmarks/bench_generation.py
    .venv/bin/python benchmarks/bench_generation.py --model runs/toy/base-policy
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from rstar.format import build_prompt, render_gold_solution
from rstar.models import GenerationParams, TransformersBackend
from rstar.toy.model import build_tiny_llama
from rstar.toy.tokenizer import train_tokenizer

QUESTIONS = [
    f"A shop sells {a} boxes with {b} pens each and then {c} more pens. How many pens in total?"
    for a, b, c in [(3, 12, 7), (5, 9, 4), (12, 6, 10), (8, 8, 8), (2, 25, 13), (7, 4, 30)]
]


def _gold(question_index: int) -> str:
    a, b = 3 + question_index, 12 - question_index
    return render_gold_solution(
        [(f"Multiply {a} by {b}", f"x = {a} * {b}")],
        "print(x)",
        f"{a * b}",
        f"The answer is \\boxed{{{a * b}}}.",
    )


def build_default_policy(directory: Path) -> Path:
    """Save the tiny benchmark policy (tokenizer + random-weight Llama) under ``directory``."""
    texts = [build_prompt(q) + _gold(i) for i, q in enumerate(QUESTIONS)]
    tokenizer = train_tokenizer(texts * 4, 512)
    model = build_tiny_llama(tokenizer, hidden=128, layers=4, heads=4, max_positions=1024)
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
    return directory


def measure(
    backend: TransformersBackend, prompts: list[str], params: GenerationParams, batch: int
) -> tuple[float, int, int]:
    """(seconds, generated tokens, stopped sequences) for one generate call at ``batch``."""
    backend.batch_size = batch
    start = time.perf_counter()
    out = backend.generate(prompts, params)
    seconds = time.perf_counter() - start
    completions = [c for group in out for c in group]
    return (
        seconds,
        sum(c.num_tokens for c in completions),
        sum(c.stop is not None for c in completions),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="checkpoint directory (default: tiny policy)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=4, help="samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or build_default_policy(Path(tmp))
        backend = TransformersBackend(path, progress=False)
        params_count = sum(p.numel() for p in backend.model.parameters())
        prompts = [build_prompt(QUESTIONS[i % len(QUESTIONS)]) for i in range(args.prompts)]
        params = GenerationParams(
            n=args.n, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0
        )
        measure(backend, prompts[:2], params, 8)  # warm-up
        load_before = os.getloadavg()
        # Rounds over all batch sizes, so load from other processes hits them alike.
        runs: dict[int, list[tuple[float, int, int]]] = {b: [] for b in args.batch_sizes}
        for _ in range(args.repeats):
            for batch in args.batch_sizes:
                runs[batch].append(measure(backend, prompts, params, batch))
        rows = []
        for batch in args.batch_sizes:
            seconds, tokens, stopped = min(runs[batch])
            rows.append((batch, seconds, tokens, stopped, tokens / seconds))
        load_after = os.getloadavg()

    print(f"model: {args.model or 'tiny default'} ({params_count / 1e6:.2f} M parameters)")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} CPUs;"
        f" load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}"
    )
    sequences = args.prompts * args.n
    print(
        f"workload: {args.prompts} prompts x n={args.n} = {sequences} sequences, temperature 1, "
        f"max_new_tokens {args.max_new_tokens}, stop strings of the format, best of {args.repeats}"
    )
    print("| batch | seconds | generated tokens | stopped by a stop string | tokens/s |")
    print("|---:|---:|---:|---:|---:|")
    for batch, seconds, tokens, stopped, rate in rows:
        print(f"| {batch} | {seconds:.2f} | {tokens} | {stopped}/{sequences} | {rate:,.0f} |")
    by_batch = {row[0]: row[4] for row in rows}
    if 1 in by_batch:
        for batch in args.batch_sizes:
            if batch != 1:
                print(f"batch {batch} / batch 1: {by_batch[batch] / by_batch[1]:.1f}x")


if __name__ == "__main__":
    main()
