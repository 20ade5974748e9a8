"""rstar.format: steps, programs, continuations and the released data's byte-exact round trip."""

from __future__ import annotations

import json

import pytest

from rstar.format import (
    ANSWER_END,
    CODE_END,
    PROMPT_TEMPLATE,
    SPECIAL_TOKENS,
    STEP_END,
    STOP_STRINGS,
    FormatError,
    Step,
    StepKind,
    Trajectory,
    build_prompt,
    continuation,
    cumulative_program,
    format_output,
    output_block,
    parse_pair,
    parse_response,
    parse_step,
    parse_trajectory,
    render_gold_solution,
    render_response,
    render_trajectory,
)
from tests.conftest import RELEASE_DIR

QUESTION = "What is 2 times 3?"
STEP_1 = "<code>\n# Step 1: Define the numbers\na = 2\nb = 3\n<end_of_step>"
STEP_2 = "\n\n# Step 2: Multiply them\n# (order does not matter)\nproduct = a * b\n<end_of_step>"
STEP_3 = "\n\n# Now print the final answer\nprint(product)\n<end_of_code>"
ANSWER = "\n<answer>The product is \\boxed{6}.<end_of_answer>"
PROMPT = (
    "<|user|>:\nWhat is 2 times 3?\n"
    "<|assistant|>: Let's think step by step and solve the problem with code."
)


@pytest.fixture(scope="module")
def release() -> dict[str, list[dict]]:
    folder = RELEASE_DIR
    return {
        name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        for name in ("sft_examples", "ppm_pair_examples")
    }


def steps(*texts: str) -> list[Step]:
    return [parse_step(text) for text in texts]


def test_constants_and_prompt() -> None:
    assert PROMPT_TEMPLATE == (
        "<|user|>:\n{question}\n<|assistant|>: "
        "Let's think step by step and solve the problem with code."
    )
    assert STOP_STRINGS == ("<end_of_step>", "<end_of_code>", "<end_of_answer>")
    assert set(SPECIAL_TOKENS) == {
        "<|user|>",
        "<|assistant|>",
        "<code>",
        "<end_of_step>",
        "<end_of_code>",
        "<output>",
        "<end_of_output>",
        "<answer>",
        "<end_of_answer>",
    }
    assert build_prompt(QUESTION) == PROMPT
    assert output_block("6\n7") == "<output>6\n7<end_of_output>"


def test_parse_first_code_step() -> None:
    assert parse_step(STEP_1) == Step(
        text=STEP_1,
        kind=StepKind.CODE,
        code="\n# Step 1: Define the numbers\na = 2\nb = 3\n",
        comment="Step 1: Define the numbers",
        answer=None,
    )
    assert parse_step(STEP_1).opens_code


def test_parse_later_code_step_keeps_leading_whitespace() -> None:
    step = parse_step(STEP_2)
    assert step.kind is StepKind.CODE
    assert step.code == "\n\n# Step 2: Multiply them\n# (order does not matter)\nproduct = a * b\n"
    assert step.comment == "Step 2: Multiply them\n(order does not matter)"
    assert step.text == STEP_2
    assert not step.opens_code


def test_parse_final_code_step_comments_only_full_lines() -> None:
    text = "\n\n#No space\n    # indented\nx = 1  # inline, not reasoning\nprint(x)\n<end_of_code>"
    step = parse_step(text)
    assert step.kind is StepKind.FINAL_CODE
    assert step.code == "\n\n#No space\n    # indented\nx = 1  # inline, not reasoning\nprint(x)\n"
    assert step.comment == "No space\nindented"
    assert step.answer is None


def test_parse_empty_final_code_step() -> None:
    # The release's failing trajectories end "...<end_of_step><end_of_code><output>Error...".
    assert parse_step("<end_of_code>") == Step("<end_of_code>", StepKind.FINAL_CODE, "", "", None)


def test_parse_answer_step() -> None:
    step = parse_step(
        " <answer>So \\boxed{\\frac{1}{2}}, not \\boxed{3}? \\boxed{\\{1\\}}<end_of_answer>"
    )
    assert step.kind is StepKind.ANSWER
    assert step.code == ""
    assert step.comment == "So \\boxed{\\frac{1}{2}}, not \\boxed{3}? \\boxed{\\{1\\}}"
    assert step.answer == "\\{1\\}"
    assert parse_step("\n<answer>No box here.\n<end_of_answer>").answer is None


@pytest.mark.parametrize(
    ("text", "problem", "offset"),
    [
        ("x = 1\n", "step does not end with <end_of_step>, <end_of_code> or <end_of_answer>", 6),
        (
            "x = 1\n<end_of_answer>",
            "a step ending with <end_of_answer> must start with <answer>",
            0,
        ),
        ("x = 1\n<end_of_step>y = 2<end_of_step>", "unexpected <end_of_step> inside the step", 6),
        ("<code>\nx = 1\n<code>y<end_of_step>", "unexpected <code> inside the step", 13),
        ("\n<answer>4<output>\n<end_of_answer>", "unexpected <output> inside the step", 10),
    ],
)
def test_parse_step_errors(text: str, problem: str, offset: int) -> None:
    with pytest.raises(FormatError) as caught:
        parse_step(text)
    assert caught.value.problem.startswith(problem)
    assert caught.value.offset == offset
    assert caught.value.step is None
    assert f"character {offset}" in str(caught.value)


def test_cumulative_program_of_three_steps() -> None:
    program = cumulative_program(steps(STEP_1, STEP_2, STEP_3, ANSWER))
    assert program == (
        "\n# Step 1: Define the numbers\na = 2\nb = 3\n"
        "\n\n# Step 2: Multiply them\n# (order does not matter)\nproduct = a * b\n"
        "\n\n# Now print the final answer\nprint(product)\n"
    )


def test_cumulative_program_adds_newline_only_where_lines_would_merge() -> None:
    joined = cumulative_program(
        steps("<code>x = 1<end_of_step>", "y = 2<end_of_step>", "<end_of_code>")
    )
    assert joined == "x = 1\ny = 2"
    assert cumulative_program([]) == ""


def test_continuation() -> None:
    assert continuation(QUESTION, []) == PROMPT
    assert continuation(QUESTION, steps(STEP_1, STEP_2)) == PROMPT + STEP_1 + STEP_2
    assert (
        continuation(QUESTION, steps(STEP_1, STEP_2, STEP_3), output="6")
        == PROMPT
        + "<code>\n# Step 1: Define the numbers\na = 2\nb = 3\n<end_of_step>"
        + "\n\n# Step 2: Multiply them\n# (order does not matter)\nproduct = a * b\n<end_of_step>"
        + "\n\n# Now print the final answer\nprint(product)\n<end_of_code>"
        + "\n<output>6<end_of_output>"
    )
    with pytest.raises(FormatError, match="needs a step ending with <end_of_code>"):
        continuation(QUESTION, steps(STEP_1, STEP_2), output="6")


@pytest.mark.parametrize(
    ("response", "kinds", "output", "separator"),
    [
        (STEP_1 + STEP_2 + STEP_3 + "\n<output>6<end_of_output>" + ANSWER, "CCFA", "6", "\n"),
        # a space before <answer>, "\n\n\n" between steps, the output block not yet there
        (
            STEP_1 + "\n\n\n# Step 2\nprint(a)\n<end_of_code>\n<output>2<end_of_output> "
            "<answer>\\boxed{2}<end_of_answer>",
            "CFA",
            "2",
            "\n",
        ),
        (STEP_1 + STEP_2, "CC", None, "\n"),
        (STEP_1 + STEP_2 + STEP_3, "CCF", None, "\n"),
        # a failed run: no separator before <output>, no answer step
        (STEP_1 + "<end_of_code><output>NameError: x<end_of_output>", "CF", "NameError: x", ""),
        ("", "", None, "\n"),
    ],
)
def test_hand_written_round_trip(
    response: str, kinds: str, output: str | None, separator: str
) -> None:
    traj = parse_response(response)
    kind_of = {"C": StepKind.CODE, "F": StepKind.FINAL_CODE, "A": StepKind.ANSWER}
    assert [s.kind for s in traj.steps] == [kind_of[k] for k in kinds]
    assert (traj.output, traj.output_separator, traj.question) == (output, separator, None)
    assert render_response(traj) == response
    full = PROMPT + response
    assert parse_trajectory(full) == Trajectory(QUESTION, traj.steps, output, separator)
    assert render_trajectory(parse_trajectory(full)) == full


def test_trajectory_properties() -> None:
    full = PROMPT + STEP_1 + STEP_2 + STEP_3 + "\n<output>6<end_of_output>" + ANSWER
    traj = parse_trajectory(full)
    assert traj.question == QUESTION
    assert traj.answer == "6"
    assert traj.is_complete
    assert traj.program == cumulative_program(traj.steps)
    partial = Trajectory(QUESTION, traj.steps[:2])
    assert (partial.answer, partial.is_complete) == (None, False)
    with pytest.raises(ValueError, match="no question"):
        render_trajectory(Trajectory(None, traj.steps, "6"))


RESPONSE_ERRORS = [
    # STEP_1 is 61 characters long, STEP_3 59, the output block with its "\n" 25.
    (STEP_1 + "\n\nx = 1\n", "unterminated step: no <end_of_step>", 61, 2),
    (STEP_1 + "<output>1<end_of_output>", "unterminated step: no <end_of_step>", 61, 2),
    (
        STEP_1 + STEP_3 + "\n<output>6<end_of_output>" + ANSWER + "\n",
        "text after <end_of_answer>",
        194,
        3,
    ),
    (
        STEP_1 + STEP_3 + "\n<output>6" + ANSWER,
        "<output> is never closed by <end_of_output>",
        121,
        2,
    ),
    (STEP_1 + STEP_3 + "\n" + ANSWER, "expected <output> after <end_of_code>", 120, 2),
    (STEP_1 + STEP_3 + STEP_3, "expected <output> after <end_of_code>", 120, 2),
    (STEP_1 + ANSWER, "the answer step must follow a step ending with <end_of_code>", 61, 2),
    (STEP_2 + STEP_3, "the first step must open with <code>", 0, 1),
    (STEP_1 + "<code>x<end_of_step>", "only the first step may open <code>", 61, 2),
    (
        STEP_1 + "<end_of_code>\n<output>1<end_of_output>" + STEP_2,
        "only one answer step may",
        99,
        3,
    ),
]


@pytest.mark.parametrize(("response", "problem", "offset", "step"), RESPONSE_ERRORS)
def test_malformed_response(response: str, problem: str, offset: int, step: int) -> None:
    with pytest.raises(FormatError) as caught:
        parse_response(response)
    assert caught.value.problem.startswith(problem)
    assert (caught.value.offset, caught.value.step) == (offset, step)
    assert str(caught.value).endswith(f"(step {step}, character {offset})")
    # In a full text the offsets count the prompt too.
    with pytest.raises(FormatError) as caught:
        parse_trajectory(PROMPT + response)
    assert (caught.value.offset, caught.value.step) == (len(PROMPT) + offset, step)


def test_malformed_prompt() -> None:
    with pytest.raises(FormatError, match=r"must start with '<\|user\|>:\\n' \(character 0\)"):
        parse_trajectory("<|assistant|>: hi")
    with pytest.raises(FormatError, match="the prompt does not end with"):
        parse_trajectory("<|user|>:\nWhat?\n<|assistant|>: Let me see.<code>\nx<end_of_step>")


def test_trajectory_construction_is_checked() -> None:
    code, final, answer = steps(STEP_1, STEP_3, ANSWER)
    with pytest.raises(FormatError, match="needs the <output> block before it"):
        Trajectory(QUESTION, (code, final, answer))
    with pytest.raises(FormatError, match="only whitespace may separate"):
        Trajectory(QUESTION, (code, final), "6", output_separator="x")
    with pytest.raises(FormatError, match="the output contains a format marker"):
        Trajectory(QUESTION, (code, final), "6<end_of_output>")


def test_release_sft_examples_round_trip(release: dict[str, list[dict]]) -> None:
    examples = release["sft_examples"]
    assert len(examples) == 8
    for example in examples:
        traj = parse_response(example["response"], example["query"])
        assert render_response(traj) == example["response"]
        full = build_prompt(example["query"]) + example["response"]
        assert parse_trajectory(full) == traj
        assert render_trajectory(traj) == full
    summary = [
        (
            "".join(s.kind.value[0] for s in t.steps),
            t.answer,
            t.steps[0].comment.split("\n")[0],
        )
        for t in (parse_response(e["response"]) for e in examples)
    ]
    assert summary == [
        ("ccfa", "4", "Step 1: Define the function G(m, n, p, q)"),
        (
            "cccfa",
            "[0, \\arcsin(\\frac{\\sqrt{2}}{3})]",
            "Define the edge length of the tetrahedron",
        ),
        (
            "cfa",
            "30",
            "Given the function property g(5+x) = g(5-x), roots are symmetrical around x = 5.",
        ),
        ("cccfa", "1210", "Step 1: Find the range of two-digit numbers"),
        ("ccccccfa", "84000", "Step 1: Calculate the total daily water consumption for goats"),
        ("ccccfa", "-160", "Define the variable x"),
        (
            "cccfa",
            "\\text{No}",
            "Step 1: Define a quadratic polynomial f(x) with two distinct roots",
        ),
        (
            "ccfa",
            "120",
            "Step 1: Calculate the total number of ways to arrange six sessions "
            "without any restrictions",
        ),
    ]


def test_release_sft_final_step_of_example_0(release: dict[str, list[dict]]) -> None:
    final = parse_response(release["sft_examples"][0]["response"]).steps[2]
    assert final.kind is StepKind.FINAL_CODE
    assert final.comment == (
        "Step 3: Solve for y\nWe need to find y such that 3^y + 6 * 15 = 171\n"
        "Simplify the equation: 3^y + 90 = 171\nTherefore, 3^y = 81\n"
        "We know that 81 = 3^4, so y = 4\nNow print the final answer"
    )


def test_release_ppm_pairs_parse(release: dict[str, list[dict]]) -> None:
    pairs = release["ppm_pair_examples"]
    assert len(pairs) == 5
    seen = []
    for pair in pairs:
        for side in ("pos", "neg"):
            parsed = parse_pair(pair["prompt"], pair[side])
            assert render_trajectory(parsed.trajectory) == pair["prompt"] + pair[side]
            assert parsed.question in pair["prompt"]
            assert parsed.prefix + parsed.completion == parsed.trajectory.steps
            completion = "".join(s.text for s in parsed.completion)
            if parsed.trajectory.output is not None:
                assert f"<output>{parsed.trajectory.output}<end_of_output>" in pair[side]
            else:
                assert completion == pair[side]
            seen.append(
                (
                    parsed.prefix_length,
                    "".join(s.kind.value[0] for s in parsed.completion),
                    parsed.trajectory.answer,
                )
            )
    assert seen == [
        (0, "ccfa", "8.9443"),
        (0, "cccf", None),
        (0, "cccfa", "Tuesday"),
        (0, "ccfa", "Wednesday"),
        (0, "cccfa", "63"),
        (0, "fa", "76"),
        (1, "c", None),
        (1, "c", None),
        (3, "c", None),
        (3, "c", None),
    ]
    first = parse_pair(pairs[0]["prompt"], pairs[0]["pos"])
    assert first.question == (
        "We have a triangle $\\triangle XYZ$ such that $XY = XZ = 12$ and $YZ = 16.$ "
        "What is the length of the median $XM$?\n Let's write a program."
    )
    failed = parse_pair(pairs[0]["prompt"], pairs[0]["neg"]).trajectory
    assert (failed.output_separator, failed.steps[-1].text) == ("", "<end_of_code>")
    assert failed.output == "IndentationError: unexpected indent (<unknown>, line 20)"
    intermediate = parse_pair(pairs[3]["prompt"], pairs[3]["pos"])
    assert intermediate.prefix[0].comment.startswith("Step 1: Set up the equation")
    assert intermediate.completion[0].comment.startswith("Step 2: Find all divisors of 105")


def test_parse_pair_split_inside_a_step() -> None:
    full = PROMPT + STEP_1 + STEP_2
    with pytest.raises(FormatError, match=r"ends in the middle of a step \(step 2, character"):
        parse_pair(full[: len(PROMPT) + len(STEP_1) + 5], full[len(PROMPT) + len(STEP_1) + 5 :])
    # Split right after the output block: the completion is the answer step.
    done = PROMPT + STEP_1 + STEP_3 + "\n<output>6<end_of_output>"
    answer_only = parse_pair(done, ANSWER)
    assert (answer_only.prefix_length, [s.kind for s in answer_only.completion]) == (
        2,
        [StepKind.ANSWER],
    )


@pytest.mark.parametrize(
    ("stdout", "program", "expected"),
    [
        ("8.94427190999916\n", None, "8.9443"),
        ("75.52248781407008\n", None, "75.5225"),
        ("84000.0\n", None, "84000.0"),
        ("x = 0.30000000000000004, y = -1.25, z = 1.99999\n", None, "x = 0.3, y = -1.25, z = 2.0"),
        ("1.2345678e-05 v1.23456 1.2.34567\n", None, "1.2346e-05 v1.23456 1.2.34567"),
        ("  30\n\n", None, "30"),
        ("4\n8\n", 'print("a(b)", 1)\nprint(x)\n', '"a(b: 4\nx: 8'),
        ("4\n", "print(x)", "4"),  # one print: no labels
        ("<end_of_output>9<answer>\n", None, "9"),  # printed markers cannot break the format
        ("1\n2\n3\n", "for i in range(3):\n    print(i)\n", "1\n2\n3"),  # lines != prints
    ],
)
def test_format_output(stdout: str, program: str | None, expected: str) -> None:
    assert format_output(stdout, program) == expected


def test_render_gold_solution() -> None:
    response = render_gold_solution(
        [
            ("Define the numbers", "a = 2\nb = 3\n"),
            ("Multiply them\n(order does not matter)", "product = a * b"),
        ],
        "print(product)",
        "6",
        "The product is \\boxed{6}.",
    )
    assert response == (
        "<code>\n# Step 1: Define the numbers\na = 2\nb = 3\n<end_of_step>"
        "\n\n# Step 2: Multiply them\n# (order does not matter)\nproduct = a * b\n<end_of_step>"
        "\n\n# Now print the final answer\nprint(product)\n<end_of_code>"
        "\n<output>6<end_of_output>"
        "\n<answer>The product is \\boxed{6}.<end_of_answer>"
    )
    assert response == STEP_1 + STEP_2 + STEP_3 + "\n<output>6<end_of_output>" + ANSWER
    reasoning_only = render_gold_solution([("Think", "")], "print(1)", "1", "\\boxed{1}")
    assert reasoning_only.startswith("<code>\n# Step 1: Think\n<end_of_step>\n\n# Now print")
    assert parse_response(reasoning_only).answer == "1"


def test_render_gold_solution_rejects_broken_pieces() -> None:
    with pytest.raises(FormatError, match="no \\\\boxed"):
        render_gold_solution([], "print(1)", "1", "The answer is 1.")
    with pytest.raises(
        FormatError, match=r"step 1 reasoning contains the marker <end_of_step> \(character 5\)"
    ):
        render_gold_solution([("Oops <end_of_step>", "x = 1")], "print(x)", "1", "\\boxed{1}")
    with pytest.raises(FormatError, match="output contains the marker <end_of_output>"):
        render_gold_solution([], "print(1)", "1<end_of_output>", "\\boxed{1}")


def test_stop_strings_end_every_release_step(release: dict[str, list[dict]]) -> None:
    for example in release["sft_examples"]:
        for step in parse_response(example["response"]).steps:
            assert step.text.endswith(
                {
                    StepKind.CODE: STEP_END,
                    StepKind.FINAL_CODE: CODE_END,
                    StepKind.ANSWER: ANSWER_END,
                }[step.kind]
            )
