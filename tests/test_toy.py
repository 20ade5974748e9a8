"""The toy world: determinism, step counts, distractors, gold programs, splits, tokenizer."""

from __future__ import annotations

import random
import re
from collections import Counter
from fractions import Fraction

import pytest
from transformers import AutoTokenizer

from rstar.format import SPECIAL_TOKENS, StepKind, build_prompt, parse_response
from rstar.grading import is_equivalent
from rstar.toy.config import ToyWorldConfig
from rstar.toy.templates import SCENARIOS
from rstar.toy.tokenizer import train_tokenizer
from rstar.toy.world import (
    generate_problem,
    normalise_question,
    problem_id,
    problem_pool,
    read_jsonl,
    split_of,
    toy_dataset,
    write_jsonl,
)

CFG = ToyWorldConfig()


def test_worked_example_is_exact():
    """A pinned problem, checked by hand: (15 * 6) - 26 = 64 in two steps."""
    p = generate_problem(2, random.Random("doc-example"), CFG)
    assert p.question == (
        "A room floor measures 15 m by 6 m. 26 square meters are used for a path. "
        "How many square meters are there in the end?"
    )
    assert p.answer == "64"
    assert p.template == "garden/floor/path"
    assert p.solution == (
        "<code>\n# Step 1: The area is 15 m times 6 m, so multiply\narea = 15 * 6\n<end_of_step>"
        "\n\n# Step 2: The path uses 26 square meters, so subtract 26\narea = area - 26\n"
        "<end_of_step>\n\n# Now print the final answer\nprint(area)\n<end_of_code>\n"
        "<output>64<end_of_output>\n<answer>The answer is \\boxed{64}.<end_of_answer>"
    )
    assert p.id == problem_id(p.question)


def test_same_seed_same_problems_other_seed_other_problems():
    first = problem_pool(3, 30, "train", CFG)
    again = problem_pool(3, 30, "train", ToyWorldConfig())
    other = problem_pool(3, 30, "train", ToyWorldConfig(seed=1))
    assert first == again
    assert len({p.id for p in first}) == 30
    assert not {p.id for p in first} & {p.id for p in other}


def test_id_is_a_hash_of_the_normalised_text():
    assert problem_id("Ann has 3 cards.  How many?") == problem_id(" ann has 3 cards. how many? ")
    assert problem_id("Ann has 3 cards.") != problem_id("Ann has 4 cards.")
    assert re.fullmatch(r"toy-[0-9a-f]{16}", problem_id("x"))


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 6, 8])
def test_level_is_the_number_of_steps(level):
    for p in problem_pool(level, 40, "train", CFG):
        traj = parse_response(p.solution)
        kinds = [s.kind for s in traj.steps]
        assert kinds == [StepKind.CODE] * level + [StepKind.FINAL_CODE, StepKind.ANSWER]
        assert [s.comment.split(":")[0] for s in traj.steps[:level]] == [
            f"Step {i}" for i in range(1, level + 1)
        ]
        # one arithmetic operation per step
        for step in traj.steps[:level]:
            assert len(re.findall(r" [-+*] |Fraction\(", step.code)) == 1, step.code
        assert traj.output == p.answer
        assert traj.answer == p.answer
        assert p.level == level


def _sentences(question: str) -> int:
    return len(re.findall(r"[.?](?= |$)", question))


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5, 6])
def test_distractors_only_from_level_three(level):
    problems = problem_pool(level, 100, "train", CFG)
    counts = Counter(p.distractors for p in problems)
    if level < 3:
        assert counts == {0: 100}
    else:
        most = min(3, level - 2)
        assert set(counts) == set(range(1, most + 1))  # every allowed count occurs
    for p in problems:
        facts = len(p.template.split("/")) - 1  # the start sentence and one per move
        assert _sentences(p.question) == facts + p.distractors + 1  # + the question


def test_gold_programs_print_the_answer_in_the_sandbox(sandbox):
    problems = [p for level in range(1, 7) for p in problem_pool(level, 9, "train", CFG)]
    programs = [parse_response(p.solution).program for p in problems]
    results = sandbox.run_many(programs)
    for problem, result in zip(problems, results, strict=True):
        assert result.ok, (problem.question, result.error)
        assert result.stdout == problem.answer + "\n"
        boxed = parse_response(problem.solution).answer
        assert boxed is not None and is_equivalent(boxed, problem.answer)
        assert Fraction(problem.answer) > 0


def test_fractions_are_exact_and_appear():
    answers = [p.answer for p in problem_pool(2, 300, "train", CFG)]
    fractional = [a for a in answers if "/" in a]
    assert 10 <= len(fractional) < 150
    for answer in fractional:
        value = Fraction(answer)
        assert value.denominator > 1 and str(value) == answer  # lowest terms
    assert is_equivalent("\\frac{7}{2}", "7/2")


def test_train_val_and_test_never_overlap():
    cfg = ToyWorldConfig(train_per_level=200, test_per_level=40)
    data = toy_dataset(cfg)
    train, test = data["train"], data["test"]
    val = [p for lv in range(1, 7) for p in problem_pool(lv, 40, "val", cfg)]
    assert len(train) == 6 * 200 and len(test) == 6 * 40
    assert Counter(p.level for p in test) == {lv: 40 for lv in range(1, 7)}
    norm = normalise_question
    for a, b in ((train, test), (train, val), (val, test)):
        assert not {p.id for p in a} & {p.id for p in b}
        assert not {norm(p.question) for p in a} & {norm(p.question) for p in b}
    # the split follows the text, so no seed's train pool holds a test or validation question
    other_train = problem_pool(1, 200, "train", ToyWorldConfig(seed=7))
    assert not {p.id for p in other_train} & {p.id for p in test + val}
    assert all(split_of(p.question, cfg.test_share, cfg.val_share) == "test" for p in test)
    assert all(split_of(p.question, cfg.test_share, cfg.val_share) == "val" for p in val)
    # the test split is what it was before the validation split existed
    assert all(split_of(p.question, cfg.test_share) == "test" for p in test)


def test_test_share_is_respected():
    rng = random.Random(0)
    problems = [generate_problem(rng.randint(1, 6), rng, CFG) for _ in range(2000)]
    for split in ("test", "val"):
        share = sum(p.split == split for p in problems) / len(problems)
        assert 0.08 < share < 0.12
    with pytest.raises(ValueError, match="test_share \\+ val_share"):
        ToyWorldConfig(test_share=0.5, val_share=0.5)


def test_templates_vary():
    level1 = problem_pool(1, 300, "train", CFG)
    assert {p.scenario for p in level1} == {s.key for s in SCENARIOS}
    assert len({p.template for p in level1}) >= 60
    level3 = problem_pool(3, 200, "train", CFG)
    assert len({p.template for p in level3}) >= 150
    ops = Counter(
        op for p in level3 for op in re.findall(r"= \w+ ([-+*]) |(Fraction)\(", p.solution)
    )
    assert len(ops) == 4 and min(ops.values()) >= 50


def test_jsonl_round_trip_and_bad_row(tmp_path):
    problems = problem_pool(2, 5, "test", CFG)
    path = tmp_path / "p.jsonl"
    assert write_jsonl(problems, path) == 5
    assert read_jsonl(path) == problems
    path.write_text(path.read_text() + '{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"p\.jsonl:6: not a toy problem row"):
        read_jsonl(path)


def test_config_rejects_bad_ranges():
    with pytest.raises(ValueError, match="add_range"):
        ToyWorldConfig(add_range=(10, 2))
    with pytest.raises(ValueError, match="mul_range"):
        ToyWorldConfig(mul_range=(1, 3))


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    problems = [p for lv in (1, 2, 3) for p in problem_pool(lv, 100, "train", CFG)]
    tok = train_tokenizer([build_prompt(p.question) + p.solution for p in problems], 600)
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(path)
    return path


def test_tokenizer_round_trips_and_keeps_markers_whole(tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert tok.padding_side == "left"
    assert (tok.pad_token, tok.eos_token) == ("<pad>", "<end_of_answer>")
    for p in problem_pool(5, 10, "test", CFG):
        text = build_prompt(p.question) + p.solution
        ids = tok(text)["input_ids"]
        assert tok.decode(ids) == text
        pieces = tok.convert_ids_to_tokens(ids)
        for marker in SPECIAL_TOKENS:
            assert pieces.count(marker) == text.count(marker)
    for marker in SPECIAL_TOKENS:
        assert len(tok("x" + marker + "7")["input_ids"]) == 3
    assert tok.tokenize("x = 1234") == ["x", "Ġ=", "Ġ", "1", "2", "3", "4"]
