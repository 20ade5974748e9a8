"""The toy teacher: writes new problems like a seed problem and solves them (issue 16).

In rStar-Math, GPT-4 writes new problems from seed problems and samples 10 solutions of
each; a problem is kept when at least 3 answers agree. The toy world's teacher is the base
policy fine-tuned (``rstar.train.sft``) on two kinds of rows drawn from the toy world's
train pool:

- *write*: ``TOY_PROBLEM_PROMPT`` with a seed problem -> another problem of the seed's level
  (the seed's neighbour in the train pool), ended by ``TOY_PROBLEM_END``;
- *solve*: ``build_prompt(question)`` -> the gold solution, levels 1-4 (the base saw levels
  1-2): a teacher stronger than the policy, as GPT-4 is.

Solving through a plain completion endpoint runs no code: the teacher writes the program's
output itself, so its answers are sometimes wrong, and the agreement filter has real work
to do (its precision is measured in ``benchmarks/synthesis_filter.py``). Served with
``rstar serve``, a round reaches it over HTTP as it would reach GPT-4.
"""

from __future__ import annotations

import json
import random
from itertools import pairwise
from pathlib import Path

from rstar.format import ANSWER_END, build_prompt
from rstar.runtime import torch_threads
from rstar.toy.config import TeacherConfig, ToyWorldConfig
from rstar.toy.world import problem_pool
from rstar.train.config import PolicyTrainConfig
from rstar.train.sft import train_policy

# the synthesis prompts the toy teacher is trained for (profile: evolve.synthesis)
TOY_PROBLEM_PROMPT = "<|user|>:\nWrite a new problem like this one. {question}\n<|assistant|>:"
TOY_PROBLEM_END = ANSWER_END  # the toy tokenizer's end of text ends a written problem
TOY_SOLVE_PROMPT = build_prompt("{question}")


def teacher_rows(world: ToyWorldConfig, config: TeacherConfig) -> list[dict[str, str]]:
    """The write and solve rows (prompt / completion), shuffled with ``config.seed``."""
    rows = []
    for level, count in sorted(config.write_per_level.items()):
        pool = problem_pool(level, count + 1, "train", world)
        for seed, new in pairwise(pool):
            prompt = TOY_PROBLEM_PROMPT.replace("{question}", seed.question)
            rows.append({"prompt": prompt, "completion": f" {new.question}{TOY_PROBLEM_END}"})
    for level, count in sorted(config.solve_per_level.items()):
        for problem in problem_pool(level, count, "train", world):
            rows.append({"prompt": build_prompt(problem.question), "completion": problem.solution})
    random.Random(config.seed).shuffle(rows)
    return rows


def build_teacher(
    out_dir: str | Path,
    base: str | Path,
    world: ToyWorldConfig,
    config: TeacherConfig,
    *,
    threads: int | None = None,
    progress: bool = True,
) -> Path:
    """Fine-tune ``base`` into the toy teacher at ``out_dir`` (resumes after a crash)."""
    out_dir = Path(out_dir)
    data = out_dir.with_name(out_dir.name + ".rows.jsonl")
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in teacher_rows(world, config)))
    train = PolicyTrainConfig(
        epochs=config.epochs,
        learning_rate=config.learning_rate,
        warmup_ratio=0.05,
        weight_decay=0.0,
        batch_size=16,
        per_device_batch_size=16,
        max_length=512,
        seed=config.seed,
    )
    with torch_threads(threads):
        train_policy(data, base, out_dir, train, progress=progress)
    data.unlink()
    return out_dir
