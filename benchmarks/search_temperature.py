"""The search temperature's effect on coverage and on the data a round gets (issue 15).

    .venv/bin/python benchmarks/search_temperature.py --policy runs/toy/base-policy \
        --temperatures 0.6,0.8,1.0 --per-level 100 --levels 2,3,4

MCTS in data-generation mode (the tiny profile's search, ``--rollouts`` each) with the
policy over toy *train* problems (never validation or test), once per temperature, the same
problems and seed each time. Per temperature and level: coverage (a correct trajectory
found), correct trajectories per problem (SFT candidates), distinct correct step texts per
problem (how varied the SFT rows are) and wrong-answer trajectories per problem (the PPM's
negatives). Prints a markdown table; ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from rstar.config import load_profile
from rstar.runtime import torch_threads
from rstar.search import MCTS, SearchProblem
from rstar.search.expansion import partial_text
from rstar.search.session import search_session
from rstar.search.tree import ANSWER
from rstar.toy.world import problem_pool


def measure(policy: str, temperature: float, problems: list, rollouts: int) -> dict:
    """Per level: coverage, correct / wrong-answer trajectories and distinct correct texts
    per problem, for one temperature."""
    prof = load_profile("tiny")
    search = prof.search.model_copy(update={"temperature": temperature, "rollouts": rollouts})
    items = [SearchProblem(p.id, p.question, p.answer) for p in problems]
    with (
        torch_threads(prof.threads),
        search_session(
            prof.policy.at(policy), None, prof.sandbox, threads=prof.threads, progress=False
        ) as session,
    ):
        results = MCTS(session.policy, session.sandbox, search, progress=True).search(items)
    totals: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for problem, result in zip(problems, results, strict=True):
        row = totals[problem.level]
        correct = [t for t in result.terminals if t.correct]
        row["problems"] += 1
        row["coverage"] += bool(correct)
        row["correct"] += len(correct)
        row["wrong_answers"] += sum(
            t.terminal_reason == ANSWER and not t.correct for t in result.terminals
        )
        row["distinct_correct"] += len({partial_text(t) for t in correct})
    return {
        level: {k: (v if k == "problems" else v / row["problems"]) for k, v in row.items()}
        for level, row in sorted(totals.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", required=True, help="policy checkpoint")
    parser.add_argument("--temperatures", default="0.6,0.8,1.0")
    parser.add_argument("--levels", default="2,3,4")
    parser.add_argument("--per-level", type=int, default=100)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    world = load_profile("tiny").toy.world
    problems = [
        p
        for level in map(int, args.levels.split(","))
        for p in problem_pool(level, args.per_level, "train", world)
    ]
    found = {
        t: measure(args.policy, t, problems, args.rollouts)
        for t in map(float, args.temperatures.split(","))
    }
    print(
        "| temperature | level | coverage | correct / problem | distinct correct "
        "| wrong answers / problem |"
    )
    print("|---|---|---|---|---|---|")
    for t, levels in found.items():
        for level, row in levels.items():
            print(
                f"| {t} | {level} | {row['coverage']:.1%} | {row['correct']:.2f} | "
                f"{row['distinct_correct']:.2f} | {row['wrong_answers']:.2f} |"
            )
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
