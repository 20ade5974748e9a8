"""The toy teacher: writes new problems like a seed problem and solves them (issue 16).

In rStar-Math, GPT-4 writes new problems from seed problems and samples 10 solutions of
each; a problem is kept when at least 3 answers agree. The toy world's teacher is a model
of the base policy's shape trained from scratch with the bootstrap's recipe
(``rstar.toy.bootstrap``) on two kinds of rows drawn from the toy world's train pool:

- *solve*: ``build_prompt(question)`` -> the gold solution, levels 1-4 (the base sees
  levels 1-2 and a few level-3 rows): a teacher much stronger than the policy, as GPT-4 is;
- *write*: ``TOY_PROBLEM_PROMPT`` with a seed problem -> another problem of the seed's level
  (the seed's neighbour in the train pool), ended by ``TOY_PROBLEM_END``.

Served with ``rstar serve --execute``, its solutions' programs run in the sandbox (as with a
code interpreter), and a round reaches it over HTTP as it would reach GPT-4. Its answers
are still sometimes wrong, so the agreement filter has real work to do (its precision:
``benchmarks/synthesis_filter.py``).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from rstar.atomic import atomic_dir
from rstar.format import ANSWER_END, build_prompt
from rstar.runtime import torch_threads
from rstar.toy.bootstrap import bootstrap
from rstar.toy.config import BootstrapConfig, TeacherConfig, ToyWorldConfig
from rstar.toy.world import problem_pool

# the synthesis prompts the toy teacher is trained for (profile: evolve.synthesis.filter)
TOY_PROBLEM_PROMPT = "<|user|>:\nWrite a new problem like this one. {question}\n<|assistant|>:"
TOY_PROBLEM_END = ANSWER_END  # the toy tokenizer's end of text ends a written problem
TOY_SOLVE_PROMPT = build_prompt("{question}")


def write_rows(world: ToyWorldConfig, config: TeacherConfig) -> list[dict[str, str]]:
    """The problem-writing rows (prompt / completion): each seed -> its neighbour."""
    rows = []
    for level, count in sorted(config.write_per_level.items()):
        pool = problem_pool(level, count + 1, "train", world)
        for seed, new in pairwise(pool):
            prompt = TOY_PROBLEM_PROMPT.replace("{question}", seed.question)
            rows.append({"prompt": prompt, "completion": f" {new.question}{TOY_PROBLEM_END}"})
    return rows


def teacher_recipe(base: BootstrapConfig, config: TeacherConfig) -> BootstrapConfig:
    """The bootstrap settings the teacher trains with: the base's shape, its own data."""
    return base.model_copy(
        update={
            "seed": config.seed,
            "problems_per_level": dict(config.solve_per_level),
            "max_steps": config.max_steps,
            "learning_rate": config.learning_rate,
        }
    )


def build_teacher(
    out_dir: str | Path,
    world: ToyWorldConfig,
    base: BootstrapConfig,
    config: TeacherConfig,
    *,
    threads: int | None = None,
    progress: bool = True,
) -> dict:
    """Train the toy teacher into ``out_dir`` (atomically); its training summary."""
    recipe, rows = teacher_recipe(base, config), write_rows(world, config)
    summary: dict = {}
    with torch_threads(threads):
        atomic_dir(
            Path(out_dir),
            lambda tmp: summary.update(bootstrap(tmp, world, recipe, progress, extra_rows=rows)),
        )
    return summary
