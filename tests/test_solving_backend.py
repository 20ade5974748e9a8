"""rstar.search.solving_backend: question prompts answered with solutions whose programs ran
in the real sandbox (the toy teacher behind `rstar serve --execute`)."""

from __future__ import annotations

from rstar.config import SearchConfig
from rstar.format import ANSWER_END, build_prompt
from rstar.grading import extract_answer
from rstar.models import GenerationParams
from rstar.search.solving_backend import SolvingBackend, question_of
from tests.scripted import ReplayBackend
from tests.test_search_strategies import answer, final, step

WRITE = "Write a new problem like this one [W]"
SCRIPT = {
    # two programs; the model writes no output: the sandbox's real one goes in the text
    "ROOT": [step("S", "x = 6 * 7", first=True), step("T", "x = 6 * 7 - 2", first=True)],
    "S": [final("SF", "x")],
    "T": [final("TF", "x")],
    "SF": [answer("SA", "42")],
    "TF": [answer("TA", "40")],
    "W": ["Six times seven? [X]<end_of_answer>"],
}


def test_questions_get_executed_solutions_and_other_prompts_plain_generation(sandbox):
    policy = ReplayBackend(SCRIPT)
    backend = SolvingBackend(policy, sandbox, SearchConfig(max_depth=8), len)
    params = GenerationParams(n=2, temperature=0.7, seed=3)
    solved, written = backend.generate([build_prompt("Six times seven?"), WRITE], params)
    assert written == policy.generate([WRITE], params)[0]
    assert sorted(extract_answer(c.text) for c in solved) == ["40", "42"]
    by_answer = {extract_answer(c.text): c for c in solved}
    assert by_answer["42"].text == (
        "<code>\n# [S]\nx = 6 * 7\n<end_of_step>\n# [SF]\nprint(x)\n<end_of_code>\n"
        "<output>42<end_of_output>\n<answer>[SA] \\boxed{42}<end_of_answer>"
    )
    assert "<output>40<end_of_output>" in by_answer["40"].text
    assert all(c.stop == ANSWER_END and not c.truncated for c in solved)
    assert all(c.num_tokens == len(c.text) for c in solved)


def test_only_the_policy_prompt_is_a_question():
    assert question_of(build_prompt("What is 2 + 3?")) == "What is 2 + 3?"
    assert question_of("What is 2 + 3?") is None
    assert question_of(build_prompt("")) is None
