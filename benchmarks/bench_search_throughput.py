"""Search throughput on a CPU: today's path against the new one, the same search in one run.

    .venv/bin/python benchmarks/bench_search_throughput.py --policy runs/toy/base-policy

The search: MCTS in data-generation mode over ``--problems`` toy train problems of levels
2-4 with ``--rollouts`` rollouts each, with the tiny profile's settings (candidates,
temperature, depth, sandbox preload), in one shard. It runs twice:

- **before**: the code of ``--baseline-rev`` (a git revision, checked out into a worktree
  and run in a subprocess with this venv) with its transformers backend: the path as it
  was before the compiled backend, the batched sandbox and the program cache;
- **after**: the code of this checkout with ``--backend`` (default ctranslate2).

With ``--ppm CHECKPOINT`` the after-run is PPM-augmented (rounds 3-4's search), once per
PPM backend of ``--ppm-backends`` (default: transformers, then ctranslate2), and the
report adds their ratio: ``--skip-baseline --ppm runs/round-2/ppm`` measures the PPM
backends alone.

Each reports problems/s, generated tokens/s, and the shares of the wall time spent in the
model, the sandbox and the rest (tree bookkeeping and grading). The after-run also replays
every generate call the search made through the same backend, alone: the search's
tokens/s against that replay is how busy the search keeps the model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def search(
    policy: str,
    backend_name: str,
    problems: int,
    rollouts: int,
    replay: bool,
    ppm: str | None = None,
    ppm_backend: str = "transformers",
) -> dict:
    """One search with the code importable here; its measurements as a dict."""
    import torch

    from rstar.config import load_profile
    from rstar.search import MCTS, SearchProblem
    from rstar.toy.world import problem_pool

    profile = load_profile("tiny")
    torch.set_num_threads(profile.threads or 2)
    world = profile.toy.world if hasattr(profile.toy, "world") else None
    if world is None:  # revisions whose profile kept toy: as a mapping
        from rstar.toy.config import ToyConfig

        world = ToyConfig.model_validate(profile.toy or {}).world
    per_level = problems // 3
    chosen = [p for lv in (2, 3, 4) for p in problem_pool(lv, per_level, "train", world)]
    if backend_name == "transformers":
        from rstar.models import TransformersBackend

        backend = TransformersBackend(policy, batch_size=64, progress=False)
    else:
        from rstar.models import CTranslate2Backend

        backend = CTranslate2Backend(policy, batch_size=profile.policy.batch_size, progress=False)
    calls: list = []

    class Recording:
        def generate(self, prompts, params):
            calls.append((list(prompts), params))
            return backend.generate(prompts, params)

    items = [SearchProblem(p.id, p.question, p.answer) for p in chosen]
    scorer = None
    if ppm is not None:
        from rstar.models import ModelConfig, ppm_scorer

        entry = ModelConfig(backend=ppm_backend, path=ppm, batch_size=32)
        scorer = ppm_scorer(entry.with_progress(False))
    with profile.sandbox.open() as sandbox:
        mcts = MCTS(Recording(), sandbox, profile.search, ppm=scorer, progress=False)
        started = time.perf_counter()
        results = mcts.search(items, rollouts=rollouts)
        wall = time.perf_counter() - started
    stats = mcts.stats
    report = {
        "backend": backend_name,
        "ppm_backend": ppm_backend if ppm else None,
        "problems": len(items),
        "rollouts": rollouts,
        "seconds": round(wall, 1),
        "problems_per_s": round(len(items) / wall, 2),
        "tokens": stats.generated_tokens,
        "tokens_per_s": round(stats.generated_tokens / wall),
        "model_share": round(stats.model_s / wall, 3),
        "sandbox_share": round(stats.sandbox_s / wall, 3),
        "ppm_share": round(stats.ppm_s / wall, 3),
        "rest_share": round(
            max(0.0, wall - stats.model_s - stats.sandbox_s - stats.ppm_s) / wall, 3
        ),
        "generate_calls": stats.generate_calls,
        "programs_run": getattr(stats, "programs_run", None),
        "programs_reused": getattr(stats, "programs_reused", None),
        "solved": sum(1 for r in results if r.correct),
    }
    if replay:
        # imported here: the baseline run executes this file against an older rstar
        from bench_backends import replay as replay_calls

        tokens, seconds = replay_calls(backend, calls)
        report["replay_tokens_per_s"] = round(tokens / seconds)
        report["search_to_replay"] = round(report["tokens_per_s"] / (tokens / seconds), 3)
    return report


def baseline(rev: str, args: argparse.Namespace) -> dict:
    """The same search with the code of ``rev``, in a worktree, in a subprocess."""
    work = Path(tempfile.mkdtemp(prefix="rstar-throughput-"))
    tree = work / "code"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=REPO, check=True)
    try:
        command = [
            sys.executable, __file__, "--inner", "--backend", "transformers",
            "--policy", str(Path(args.policy).resolve()), "--problems", str(args.problems),
            "--rollouts", str(args.rollouts),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            command, cwd=tree, env=env, check=True, capture_output=True, text=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="runs/toy/base-policy")
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--backend", default="ctranslate2")
    parser.add_argument("--baseline-rev", default="9119909", help="today's path: a revision")
    parser.add_argument("--inner", action="store_true", help="(one search, JSON on stdout)")
    parser.add_argument(
        "--ppm", default=None, help="a PPM checkpoint: the after-run is PPM-augmented"
    )
    parser.add_argument(
        "--ppm-backends", default="transformers,ctranslate2", help="with --ppm: each in turn"
    )
    parser.add_argument("--skip-baseline", action="store_true", help="the after-run only")
    args = parser.parse_args()
    if args.inner:
        report = search(args.policy, args.backend, args.problems, args.rollouts, replay=False)
        print(json.dumps(report))
        return
    before = None if args.skip_baseline else baseline(args.baseline_rev, args)
    print("before", json.dumps(before), flush=True)
    ppm_backends = args.ppm_backends.split(",") if args.ppm else ["transformers"]
    afters = {}
    for ppm_backend in ppm_backends:
        afters[ppm_backend] = search(
            args.policy, args.backend, args.problems, args.rollouts, replay=True,
            ppm=args.ppm, ppm_backend=ppm_backend,
        )  # fmt: skip
        print("after", json.dumps(afters[ppm_backend]), flush=True)
    after = afters[ppm_backends[-1]]
    speedup = after["problems_per_s"] / before["problems_per_s"] if before else None
    report = {"before": before, "after": after, "speedup": speedup and round(speedup, 2)}
    if len(afters) > 1:
        first = afters[ppm_backends[0]]
        report["after_" + ppm_backends[0]] = first
        report["ppm_backend_speedup"] = round(after["problems_per_s"] / first["problems_per_s"], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
