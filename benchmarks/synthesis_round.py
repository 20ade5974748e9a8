"""What synthesized problems add to a round: the same round with and without them.

Round 1 at the CI learning test's size (``learning_seeds.py --size full``: the tiny
profile's base bootstrapped with ``--frontier-rows`` frontier rows, ``--problems`` train
problems of its frontier level), run twice in separate run directories from the same base:
without synthesis, and with the toy teacher (``--teacher``, served by ``rstar serve
--execute`` on 127.0.0.1 and asked over HTTP) writing a problem from each of
``--synthetic-seeds`` train problems of the frontier level, kept at ``--min-agree`` of 10
agreeing answers (3, the paper's, unless given).
Reports the frontier level's greedy test accuracy of the base and of each round's policy.

    .venv/bin/python benchmarks/synthesis_round.py --teacher runs/toy/teacher \\
        --base runs/learning/seed-0/toy --out runs/synthesis-round
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from learning_seeds import first_round
from synthesis_filter import NAME, serve

from rstar.toy.teacher import TOY_PROBLEM_END, TOY_PROBLEM_PROMPT, TOY_SOLVE_PROMPT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, default=Path("runs/toy/teacher"))
    parser.add_argument(
        "--base", type=Path, default=None, help="a bootstrapped toy/ folder to reuse (optional)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--problems", type=int, default=600)
    parser.add_argument("--frontier-rows", type=int, default=600)
    parser.add_argument("--synthetic-seeds", type=int, default=600)
    parser.add_argument("--min-agree", type=int, default=3, help="of 10 answers, to keep one")
    parser.add_argument(
        "--write-temperature", type=float, default=1.0, help="when the teacher writes a problem"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/synthesis-round"))
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    process, url = serve(args.teacher, out / "serve.log")
    synthesis = {
        "rounds": [1],
        "teacher": {"backend": "openai", "path": NAME, "base_url": url,
                    "extra": {"api": "completions", "max_concurrency": 16}},
        "seeds_per_level": args.synthetic_seeds,
        "filter": {"problem_prompt": TOY_PROBLEM_PROMPT, "solve_prompt": TOY_SOLVE_PROMPT,
                   "problem_stop": [TOY_PROBLEM_END], "max_new_tokens": 400, "seed": 0,
                   "min_agree": args.min_agree, "temperature": args.write_temperature},
        "shard_size": 200,
    }  # fmt: skip
    results = {}
    try:
        for name, section in (("without", None), ("with", synthesis)):
            run_dir = out / name
            if args.base is not None and not (run_dir / "toy").exists():
                shutil.copytree(args.base, run_dir / "toy")
            started = time.perf_counter()
            row = first_round(
                args.seed, run_dir, args.problems, "full", args.frontier_rows, section
            )
            results[name] = row | {"seconds": round(time.perf_counter() - started)}
            print(f"{name} synthesis: {results[name]}", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    (out / "report.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
