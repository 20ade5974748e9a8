"""Best-of-N answer selection: the PPM against the paper's pointwise baselines (Table 8).

For a finished round of a run directory, a Q-value PRM and an outcome reward model are
trained from the round's policy on the round's trees (the stages the PPM's pairs came
from), with the PPM's training settings and budget: each is trained on as many texts as
the PPM's pairs hold (two per pair), drawn at random from its rows
(``rstar.train.pointwise``; a Q-value PRM on every visited step of a round would take
hours on 2 cores). The round's policy then samples N solutions per held-out toy test
problem, once, and each reward model picks one of them; majority vote, pass@N, greedy and
MCTS + PPM with N rollouts are reported on the same problems, per level, with
paired-bootstrap 95 % intervals of the PPM's lead over each baseline and of MCTS + PPM's
over majority vote and greedy.

    .venv/bin/python benchmarks/reward_baselines.py --run-dir runs --round 3

Writes ``<run-dir>/baselines/round-N/report.json`` (the models beside it).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from paired import paired_interval
from rich.console import Console
from rich.table import Table

from rstar.config import Profile, load_profile
from rstar.curate.reward_rows import OUTCOME, Q_VALUE, reward_rows
from rstar.evaluate.benchmarks import load_benchmark
from rstar.evaluate.config import GREEDY, SAMPLE
from rstar.evaluate.runner import Searches, method_result
from rstar.models import ppm_scorer
from rstar.runtime import torch_threads
from rstar.search import TreeResult
from rstar.search.answer import answer_trajectories, best_trajectory, majority_vote
from rstar.search.expansion import partial_text
from rstar.search.session import search_session
from rstar.store import Catalog, RunLayout
from rstar.train.pointwise import train_pointwise

REWARD_MODELS = ("ppm", Q_VALUE, OUTCOME)


def train_baselines(prof: Profile, round: int, out: Path) -> dict[str, Path]:
    """The round's PPM and the two pointwise baselines trained on its trees."""
    layout = RunLayout(prof.run_dir)
    files = layout.round(round)
    models = {"ppm": files.ppm}
    pairs = layout.store.dataset_path(round, "ppm_pairs").read_text().count("\n")
    with Catalog(layout.store) as catalog:
        rows = {k: reward_rows(catalog, round, k, prof.curate.stages) for k in (Q_VALUE, OUTCOME)}
    rng = random.Random(0)
    with torch_threads(prof.threads):
        for kind, table in rows.items():
            drawn = table.to_pylist()
            drawn = rng.sample(drawn, min(len(drawn), 2 * pairs))
            print(f"== {kind}: {len(drawn)} of {len(table)} rows", flush=True)
            train_pointwise(kind, drawn, files.policy, out / kind, prof.train.ppm)
            models[kind] = out / kind
    return models


def pick(results: list[TreeResult], questions: list[str], prof: Profile, model: Path) -> list[bool]:
    """Whether the answer trajectory ``model`` scores highest is correct, per problem."""
    scorer = ppm_scorer(prof.ppm_at(model))
    ends = [answer_trajectories(r.terminals) for r in results]
    flat = [(q, n) for q, nodes in zip(questions, ends, strict=True) for n in nodes]
    with torch_threads(prof.threads):
        scores = scorer.score([q for q, _ in flat], [partial_text(n) for _, n in flat])
    for (_, node), score in zip(flat, scores, strict=True):
        node.ppm_score = score
    return [bool((best := best_trajectory(nodes)) and best.correct) for nodes in ends]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs"))
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--round", type=int, default=3)
    parser.add_argument("--per-level", type=int, default=30, help="toy test problems per level")
    parser.add_argument("-n", type=int, default=8, help="sampled solutions per problem")
    args = parser.parse_args()
    prof = load_profile(args.profile, run_dir=args.run_dir.resolve())
    out = RunLayout(prof.run_dir).run_dir / "baselines" / f"round-{args.round}"
    started = time.perf_counter()
    models = train_baselines(prof, args.round, out)
    trained = time.perf_counter() - started

    bench = load_benchmark("toy", world=prof.toy.world, toy_per_level=args.per_level)
    files = RunLayout(prof.run_dir).round(args.round)
    policy, ppm = prof.policy.at(files.policy), prof.ppm_at(files.ppm)
    with search_session(policy, ppm, prof.sandbox, threads=prof.threads) as session:
        searches = Searches(
            bench.problems, session.policy, session.sandbox, prof.search, ppm=session.ppm
        )
        samples, greedy = searches.run(SAMPLE, args.n), searches.run(GREEDY, 1)
        mcts = method_result(searches, "toy", "mcts", args.n)
    questions = [p.question for p in bench.problems]
    correct = {
        "greedy": [any(n.correct for n in r.terminals) for r in greedy],
        f"mcts+ppm@{args.n}": [r.correct for r in mcts.results],
        f"majority@{args.n}": [
            bool((v := majority_vote(r.terminals, weighted=False)) and v.correct) for r in samples
        ],
        f"pass@{args.n}": [any(n.correct for n in r.terminals) for r in samples],
    }
    for name, path in models.items():
        correct[f"{name}@{args.n}"] = pick(samples, questions, prof, path)

    levels = sorted({p.level for p in bench.problems})
    title = f"round {args.round}: best-of-{args.n} on {len(questions)} toy test problems"
    table = Table(title=title)
    table.add_column("selection")
    for level in [*levels, "all"]:
        table.add_column(f"L{level}" if level != "all" else "all", justify="right")
    report: dict = {"round": args.round, "problems": len(questions), "accuracy": {}}
    for name, hits in correct.items():
        by_level = {
            lv: sum(h for h, p in zip(hits, bench.problems, strict=True) if p.level == lv)
            / sum(p.level == lv for p in bench.problems)
            for lv in levels
        }
        overall = sum(hits) / len(hits)
        per_level = {f"level_{lv}": a for lv, a in by_level.items()}
        report["accuracy"][name] = {"all": overall, **per_level}
        table.add_row(name, *(f"{100 * a:.1f}" for a in [*by_level.values(), overall]))
    ppm = correct[f"ppm@{args.n}"]
    report["ppm_lead"] = {
        other: paired_interval(ppm, correct[f"{other}@{args.n}"]) for other in (Q_VALUE, OUTCOME)
    } | {"majority": paired_interval(ppm, correct[f"majority@{args.n}"])}
    report["mcts_lead"] = {
        other: paired_interval(correct[f"mcts+ppm@{args.n}"], correct[name])
        for other, name in (("majority", f"majority@{args.n}"), ("greedy", "greedy"))
    }
    total = time.perf_counter() - started
    report["seconds"] = {"training": round(trained, 1), "total": round(total, 1)}
    console = Console(width=160)
    console.print(table)
    console.print_json(data={k: report[k] for k in ("ppm_lead", "mcts_lead")})
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out / 'report.json'}")


if __name__ == "__main__":
    main()
