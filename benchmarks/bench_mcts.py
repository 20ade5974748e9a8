"""MCTS throughput: generated tokens/s inside the search against the backend's raw speed.

    .venv/bin/python benchmarks/bench_mcts.py --policy runs/toy/base-policy

Runs batched MCTS (terminal-guided, data-generation mode) over N toy-world train problems
with R rollouts each, using the tiny policy, the real sandbox and the real grader, and
reports where the time went (model, sandbox, PPM, tree bookkeeping). In the same run it
measures the backend's raw batched throughput on the same kind of request (every
problem's root prompt, the profile's n candidates, temperature and stop strings), so the
ratio search/raw shows what the search machinery costs on top of generation.

Two baselines, both the same backend with nothing around it:

- replay (the ratio the target is about): every generate call the search made, replayed
  with the same prompts and parameters, so each batch has exactly the size and the prompt
  lengths the search gave it;
- one full batch: prompts the search expanded, in one batch of the search's average call
  size. Stricter: a search's calls vary in size (trees finish unevenly, the last steps
  carry few of them), and a batch always runs until its longest member stops.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from rstar.config import load_profile
from rstar.models import Completion, GenerationParams, TransformersBackend
from rstar.search import MCTS, SearchProblem
from rstar.search.expansion import prompt_for
from rstar.toy.config import ToyConfig
from rstar.toy.world import problem_pool


class Recording:
    """The backend, passed through, with every generate call's prompts and parameters kept."""

    def __init__(self, backend: TransformersBackend) -> None:
        self.backend = backend
        self.calls: list[tuple[list[str], GenerationParams]] = []

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        self.calls.append((list(prompts), params))
        return self.backend.generate(prompts, params)


def replay_throughput(recording: Recording) -> tuple[int, float]:
    """The backend alone on exactly the search's calls: (generated tokens, seconds)."""
    tokens, seconds = 0, 0.0
    for prompts, params in recording.calls:
        start = time.perf_counter()
        out = recording.backend.generate(prompts, params)
        seconds += time.perf_counter() - start
        tokens += sum(c.num_tokens for comps in out for c in comps)
    return tokens, seconds


def raw_throughput(
    backend: TransformersBackend, results: list, mcts: MCTS
) -> tuple[int, float, int]:
    """The backend alone on what the search asked of it, at the search's batch size.

    Prompts: those of nodes the search expanded (so their lengths are the search's), one
    batch of as many sequences as the search's average generate call held. Returns
    (generated tokens, seconds, prompts).
    """
    stats, search = mcts.stats, mcts.config
    prompts = [prompt_for(r.tree, node) for r in results for node in r.tree if node.expanded]
    random.Random(0).shuffle(prompts)
    per_call = max(1, round(stats.generated_sequences / stats.generate_calls / search.candidates))
    params = GenerationParams(
        n=search.candidates,
        temperature=search.temperature,
        top_p=search.top_p,
        max_new_tokens=search.max_new_tokens,
        seed=search.seed,
    )
    start = time.perf_counter()
    raw = backend.generate(prompts[:per_call], params)
    seconds = time.perf_counter() - start
    return sum(c.num_tokens for comps in raw for c in comps), seconds, per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="runs/toy/base-policy")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    profile = load_profile(args.profile)
    world = ToyConfig.model_validate(profile.toy or {}).world
    levels = range(1, 5)
    per_level = args.problems // len(levels)
    problems = [p for lv in levels for p in problem_pool(lv, per_level, "train", world)]
    backend = TransformersBackend(args.policy, batch_size=profile.policy.batch_size, progress=False)
    search = profile.search

    problems_in = [SearchProblem(p.id, p.question, p.answer) for p in problems]
    with profile.sandbox.open() as sandbox:
        recording = Recording(backend)
        mcts = MCTS(recording, sandbox, search, progress=True)
        results = mcts.search(problems_in, rollouts=args.rollouts)
    replay_tokens, replay_s = replay_throughput(recording)
    raw_tokens, raw_s, raw_prompts = raw_throughput(backend, results, mcts)
    stats = mcts.stats
    search_tps = stats.generated_tokens / stats.total_s
    raw_tps = raw_tokens / raw_s
    report = {
        "problems": len(problems),
        "rollouts": args.rollouts,
        "candidates": search.candidates,
        "generate_calls": stats.generate_calls,
        "sequences_per_call": round(stats.generated_sequences / stats.generate_calls, 1),
        "generated_tokens": stats.generated_tokens,
        "search_s": round(stats.total_s, 2),
        "model_s": round(stats.model_s, 2),
        "sandbox_s": round(stats.sandbox_s, 2),
        "ppm_s": round(stats.ppm_s, 2),
        "bookkeeping_s": round(stats.bookkeeping_s, 2),
        "search_tokens_per_s": round(search_tps),
        "model_only_tokens_per_s": round(stats.generated_tokens / stats.model_s),
        "replay_tokens_per_s": round(replay_tokens / replay_s),
        "ratio": round(search_tps / (replay_tokens / replay_s), 3),
        "one_batch_tokens_per_s": round(raw_tps),
        "one_batch_sequences": raw_prompts * search.candidates,
        "ratio_to_one_batch": round(search_tps / raw_tps, 3),
        "trajectories": sum(r.trajectories for r in results),
        "correct": sum(r.correct for r in results),
        "solved_problems": sum(1 for r in results if r.correct),
        "threads": torch.get_num_threads(),
        "sandbox_isolation": str(sandbox.isolation),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
