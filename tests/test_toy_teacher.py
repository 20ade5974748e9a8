"""The toy teacher (rstar.toy.teacher): what it learns to write, and its training recipe."""

from __future__ import annotations

from rstar.format import build_prompt
from rstar.toy.config import BootstrapConfig, TeacherConfig, ToyWorldConfig
from rstar.toy.teacher import (
    TOY_PROBLEM_END,
    TOY_PROBLEM_PROMPT,
    TOY_SOLVE_PROMPT,
    teacher_recipe,
    write_rows,
)
from rstar.toy.world import problem_pool


def test_each_seed_is_paired_with_its_neighbour_of_the_same_level():
    world = ToyWorldConfig()
    pool = problem_pool(3, 3, "train", world)
    assert write_rows(world, TeacherConfig(write_per_level={3: 2})) == [
        {
            "prompt": f"<|user|>:\nWrite a new problem like this one. {pool[0].question}\n"
            "<|assistant|>:",
            "completion": f" {pool[1].question}<end_of_answer>",
        },
        {
            "prompt": TOY_PROBLEM_PROMPT.replace("{question}", pool[1].question),
            "completion": f" {pool[2].question}{TOY_PROBLEM_END}",
        },
    ]
    assert all(p.level == 3 and p.split == "train" for p in pool)


def test_the_teacher_has_the_base_shape_and_its_own_data():
    base = BootstrapConfig(hidden_size=128, num_layers=4, problems_per_level={1: 3000, 2: 3000})
    config = TeacherConfig(seed=7, solve_per_level={3: 10, 4: 20}, max_steps=99)
    recipe = teacher_recipe(base, config)
    assert (recipe.hidden_size, recipe.num_layers) == (128, 4)
    assert recipe.problems_per_level == {3: 10, 4: 20}
    assert (recipe.seed, recipe.max_steps, recipe.learning_rate) == (7, 99, 3e-3)
    assert base.problems_per_level == {1: 3000, 2: 3000}  # the base's own is unchanged


def test_the_solve_prompt_is_the_policy_prompt():
    question = "Ann has 3 pens. She buys 2 more. How many pens does Ann have?"
    assert TOY_SOLVE_PROMPT.replace("{question}", question) == build_prompt(question)
