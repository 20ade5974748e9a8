"""The toy teacher's training rows (rstar.toy.teacher): what it learns to write and solve."""

from __future__ import annotations

import random

from rstar.format import build_prompt
from rstar.toy.config import TeacherConfig, ToyWorldConfig
from rstar.toy.teacher import TOY_PROBLEM_END, TOY_PROBLEM_PROMPT, TOY_SOLVE_PROMPT, teacher_rows
from rstar.toy.world import problem_pool


def test_rows_pair_each_seed_with_its_neighbour_of_the_same_level_and_add_gold_solutions():
    world = ToyWorldConfig()
    config = TeacherConfig(write_per_level={3: 2}, solve_per_level={1: 1}, seed=5)
    pool = problem_pool(3, 3, "train", world)
    easy = problem_pool(1, 1, "train", world)[0]
    expected = [
        {
            "prompt": f"<|user|>:\nWrite a new problem like this one. {pool[0].question}\n"
            "<|assistant|>:",
            "completion": f" {pool[1].question}<end_of_answer>",
        },
        {
            "prompt": TOY_PROBLEM_PROMPT.replace("{question}", pool[1].question),
            "completion": f" {pool[2].question}{TOY_PROBLEM_END}",
        },
        {"prompt": build_prompt(easy.question), "completion": easy.solution},
    ]
    random.Random(5).shuffle(expected)
    assert teacher_rows(world, config) == expected
    assert all(p.level == 3 and p.split == "train" for p in pool)


def test_the_solve_prompt_is_the_policy_prompt():
    question = "Ann has 3 pens. She buys 2 more. How many pens does Ann have?"
    assert TOY_SOLVE_PROMPT.replace("{question}", question) == build_prompt(question)
