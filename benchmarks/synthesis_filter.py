"""How much the synthesis filter (>= min_agree of num_solutions answers agree) can be trusted.

The toy teacher (``rstar toy teacher``) is served with ``rstar serve --execute`` on
127.0.0.1 (its solutions' programs run in the sandbox, as with a code interpreter) and
reached over HTTP with ``OpenAIBackend``, as a round reaches GPT-4. Two measurements:

1. **Label precision and yield on problems with known answers**: the teacher samples
   ``--solutions`` solutions of ``--per-level`` toy *validation* problems per level (their true
   answers come from the generator); for every ``min_agree`` from 1 to ``--solutions`` a
   problem is kept when that many answers agree, and its label is the agreed answer. Yield =
   kept / problems; precision = right labels / kept. Also the teacher's accuracy per sample.
2. **Synthesis itself** (``rstar.problems.synthesis.synthesize``) from ``--seeds`` train
   seeds: problems written, cut off, repeated, kept at the profile's ``min_agree``, and the
   agreement histogram (their true answers are unknown: the toy world cannot read them back).

    .venv/bin/python benchmarks/synthesis_filter.py --teacher runs/toy/teacher \
        --out runs/synthesis-filter

Writes ``<out>/report.json`` and ``<out>/filter.png`` (precision and yield against min_agree)
and logs both to MLflow (experiment ``synthesis-filter`` in ``<out>/mlflow``, or
``--tracking-uri``): per ``min_agree`` (the step) the precision and yield of each level and
of levels 1-4, the teacher's accuracy per sample, the plot. ``--log-only`` logs an earlier
run's ``<out>`` without asking the teacher anything.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import httpx
import matplotlib.pyplot as plt
import pyarrow as pa

from rstar.format import ANSWER_END
from rstar.grading import extract_answer, is_correct
from rstar.models import GenerationParams, OpenAIBackend
from rstar.problems.ids import problem_id
from rstar.problems.synthesis import SynthesisConfig, outcome, synthesize, vote
from rstar.toy.config import ToyWorldConfig
from rstar.toy.teacher import TOY_PROBLEM_END, TOY_PROBLEM_PROMPT, TOY_SOLVE_PROMPT
from rstar.toy.world import problem_pool
from rstar.tracking import Tracking, TrackingConfig, log_artifact, log_metrics, start_run

NAME = "toy-teacher"


def serve(teacher: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``rstar serve`` on a free port; returns the process and its base URL once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "rstar", "serve", str(teacher), "--name", NAME, "--execute"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(1200):
        try:
            if httpx.get(f"{url}/models").is_success:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"rstar serve exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"rstar serve did not answer within 120 s: {log}")


def known_answers(client: OpenAIBackend, per_level: int, solutions: int, temperature: float):
    """Per level, (true answer, sampled answers) of each validation problem."""
    world = ToyWorldConfig()
    params = GenerationParams(
        n=solutions, temperature=temperature, max_new_tokens=400, stop=(ANSWER_END,), seed=0
    )
    by_level = {}
    for level in range(1, 5):
        problems = problem_pool(level, per_level, "val", world)
        prompts = [TOY_SOLVE_PROMPT.replace("{question}", p.question) for p in problems]
        outputs = client.generate(prompts, params)
        by_level[level] = [
            (p.answer, [extract_answer(c.text) for c in group])
            for p, group in zip(problems, outputs, strict=True)
        ]
    return by_level


def filter_curve(samples: list[tuple[str, list[str | None]]], solutions: int) -> list[dict]:
    """Yield and label precision of the vote for every min_agree."""
    votes = [(truth, vote(answers)) for truth, answers in samples]
    rows = []
    for min_agree in range(1, solutions + 1):
        kept = [(truth, v.answer) for truth, v in votes if v.votes >= min_agree]
        right = sum(is_correct(label, truth) for truth, label in kept)
        rows.append(
            {
                "min_agree": min_agree,
                "kept": len(kept),
                "yield": len(kept) / len(votes),
                "precision": right / len(kept) if kept else None,
            }
        )
    return rows


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in curves.items():
        xs = [r["min_agree"] for r in rows]
        left.plot(xs, [r["precision"] for r in rows], marker="o", label=name)
        right.plot(xs, [r["yield"] for r in rows], marker="o", label=name)
    left.set(title="label precision of kept problems", xlabel="min_agree", ylim=(0, 1.02))
    right.set(title="yield (kept / problems)", xlabel="min_agree", ylim=(0, 1.02))
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, default=Path("runs/toy/teacher"))
    parser.add_argument("--out", type=Path, default=Path("runs/synthesis-filter"))
    parser.add_argument("--per-level", type=int, default=50, help="validation problems a level")
    parser.add_argument("--solutions", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=0.7, help="when solving")
    parser.add_argument("--seeds", type=int, default=200, help="train seeds for synthesis")
    parser.add_argument("--min-agree", type=int, default=3)
    parser.add_argument("--tracking-uri", default=None, help="default: <out>/mlflow (sqlite)")
    parser.add_argument("--log-only", action="store_true", help="log <out>'s report to MLflow")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.log_only:
        print("MLflow run", log_report(args.out, args.tracking_uri))
        return
    process, url = serve(args.teacher, args.out / "serve.log")
    report: dict = {"teacher": str(args.teacher), "url": url}
    try:
        with OpenAIBackend(url, NAME, max_concurrency=16) as client:
            started = time.perf_counter()
            by_level = known_answers(client, args.per_level, args.solutions, args.temperature)
            report["known_seconds"] = round(time.perf_counter() - started, 1)
            samples = [s for level in sorted(by_level) for s in by_level[level]]
            report["sample_accuracy"] = {
                level: sum(is_correct(a, t) for t, answers in rows for a in answers if a)
                / (len(rows) * args.solutions)
                for level, rows in by_level.items()
            }
            curves = {
                f"level {lv}": filter_curve(rows, args.solutions) for lv, rows in by_level.items()
            }
            curves["levels 1-4"] = filter_curve(samples, args.solutions)
            report["curves"] = curves
            plot(curves, args.out / "filter.png")

            world = ToyWorldConfig()
            seeds = [
                p for lv in range(1, 5) for p in problem_pool(lv, args.seeds // 4, "train", world)
            ]
            table = pa.table(
                {"problem_id": [problem_id(p.question) for p in seeds],
                 "question": [p.question for p in seeds]}
            )  # fmt: skip
            config = SynthesisConfig(
                problem_prompt=TOY_PROBLEM_PROMPT,
                solve_prompt=TOY_SOLVE_PROMPT,
                problem_stop=(TOY_PROBLEM_END,),
                num_solutions=args.solutions,
                min_agree=args.min_agree,
                solve_temperature=args.temperature,
                max_new_tokens=400,
                seed=0,
            )
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as store:
                result = synthesize(table, client, store, config)
            records = result.records.to_pylist()
            report["synthesis"] = {
                "seeds": len(seeds),
                "seconds": round(time.perf_counter() - started, 1),
                "kept": len(result.problems),
                "outcomes": Counter(outcome(r) for r in records),
                "agreement_histogram": Counter(r["votes"] for r in records if r["answers"]),
                "examples": [
                    {"seed": s.question, "written": r["question"], "label": r["agreed_answer"]}
                    for s, r in zip(seeds, records, strict=False)
                    if r["kept"]
                ][:5],
                "usage": client.usage,
            }
    finally:
        process.terminate()
        process.wait(timeout=30)
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "curves"}, indent=2, default=str))
    for row in curves["levels 1-4"]:
        print(row)
    print("MLflow run", log_report(args.out, args.tracking_uri))


def log_report(out: Path, tracking_uri: str | None) -> str:
    """``<out>/report.json`` and ``filter.png`` as an MLflow run; returns its id."""
    report = json.loads((out / "report.json").read_text())
    tracking = Tracking.for_run(out, TrackingConfig(experiment="synthesis-filter"))
    if tracking_uri:
        tracking = replace(tracking, tracking_uri=tracking_uri)
    params = {"teacher": Path(report["teacher"]).name, "problems": len(report["curves"])}
    with start_run(tracking, "synthesis-filter", params=params) as run:
        for name, rows in report["curves"].items():
            key = name.replace(" ", "_")
            for row in rows:
                log_metrics(
                    {f"{key}/precision": row["precision"], f"{key}/yield": row["yield"]},
                    step=row["min_agree"],
                )
        log_metrics({f"sample_accuracy/level_{k}": v for k, v in report["sample_accuracy"].items()})
        for name in ("filter.png", "report.json"):
            log_artifact(out / name)
        return run.info.run_id


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
