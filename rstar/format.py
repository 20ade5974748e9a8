"""The code-augmented chain-of-thought format of the released rStar-Math data.

A full trajectory, as the released SFT/PPM data writes it::

    <|user|>:
    {question}
    <|assistant|>: Let's think step by step and solve the problem with code.<code>
    # Step 1: ...
    x = ...
    <end_of_step>

    # Step 2: ...
    <end_of_step>

    # Now print the final answer
    print(y)
    <end_of_code>
    <output>{stdout}<end_of_output>
    <answer>The answer is \\boxed{42}.<end_of_answer>

Everything up to "...with code." is the prompt (`build_prompt`); the rest is the
*response*. The policy generates one *step* per call, stopping at a stop string
(`STOP_STRINGS`): a code step ends with `<end_of_step>`, the last code step with
`<end_of_code>`, the answer step with `<end_of_answer>`. The `<output>` block is
not generated: the system runs the program and appends it after the
`<end_of_code>` step (`continuation`).

Building blocks:

- `build_prompt(question)`; `PROMPT_TEMPLATE`, the markers, `STOP_STRINGS`, `SPECIAL_TOKENS`.
- `parse_step(text) -> Step`: one generated step (raw text ending with a stop string).
- `cumulative_program(steps)`: the program the steps so far make, ready to run.
- `format_output(stdout, program=None)`: stdout normalised as the released data records it.
- `output_block(output)`: `"<output>{output}<end_of_output>"`.
- `continuation(question, steps, output=None)`: the exact text the policy continues from.

Whole trajectories, with a byte-identical round trip (raw text is kept):

- `Trajectory`: question, steps, output and the raw separator before `<output>`.
- `parse_response(response)` / `render_response(traj)`: the SFT `response` field.
- `parse_trajectory(full_text)` / `render_trajectory(traj)`: prompt + response.
- `parse_pair(prompt, completion) -> PairCompletion`: one side of a PPM pair, whose
  prompt may already hold earlier steps.

Writing solutions:

- `render_gold_solution(steps, final_code, output, answer_text)`: a canonical response
  from (reasoning, code) steps, in the release's shape; used to write gold solutions.

Malformed text raises `FormatError`, which names the problem, the step number and
the character offset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rstar.grading import extract_answer

USER_TAG = "<|user|>"
ASSISTANT_TAG = "<|assistant|>"
PROMPT_TEMPLATE = (
    "<|user|>:\n{question}\n"
    "<|assistant|>: Let's think step by step and solve the problem with code."
)
CODE_START = "<code>"
STEP_END = "<end_of_step>"
CODE_END = "<end_of_code>"
OUTPUT_START = "<output>"
OUTPUT_END = "<end_of_output>"
ANSWER_START = "<answer>"
ANSWER_END = "<end_of_answer>"
STOP_STRINGS = (STEP_END, CODE_END, ANSWER_END)
SPECIAL_TOKENS: tuple[str, ...] = (
    USER_TAG,
    ASSISTANT_TAG,
    CODE_START,
    STEP_END,
    CODE_END,
    OUTPUT_START,
    OUTPUT_END,
    ANSWER_START,
    ANSWER_END,
)
# What the system writes between the `<end_of_code>` step and `<output>` (the release
# uses "\n"; a trajectory cut short by a failing step has "").
OUTPUT_SEPARATOR = "\n"

_PROMPT_HEAD, _PROMPT_TAIL = PROMPT_TEMPLATE.split("{question}")
_STOP_RE = re.compile("|".join(re.escape(s) for s in STOP_STRINGS))
_SPECIAL_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


class FormatError(ValueError):
    """Text that is not in the format; says what is wrong and where.

    `offset` is a character offset into the text given to the parser, `step` the
    1-based number of the step concerned; either may be None when not applicable.
    """

    def __init__(self, problem: str, *, offset: int | None = None, step: int | None = None):
        where = [f"step {step}"] if step is not None else []
        if offset is not None:
            where.append(f"character {offset}")
        super().__init__(f"{problem} ({', '.join(where)})" if where else problem)
        self.problem = problem
        self.offset = offset
        self.step = step


class StepKind(StrEnum):
    CODE = "code"  # ends with <end_of_step>
    FINAL_CODE = "final_code"  # ends with <end_of_code>; its program's output comes next
    ANSWER = "answer"  # <answer>...<end_of_answer>


@dataclass(frozen=True)
class Step:
    """One step, as generated. Build it with `parse_step`, which derives the fields from `text`.

    text: the raw step, byte-exact: its leading whitespace, `<code>` (first step only)
        and its end marker included.
    code: for code steps, `text` without `<code>` (and the whitespace before it) and
        without the end marker, comment lines included and nothing stripped, so that
        line numbers in the concatenated program match the released data's errors.
        "" for the answer step.
    comment: the natural-language reasoning: for code steps the full-line `#` comments,
        without `#` and one following space, joined by "\\n"; for the answer step the
        text inside `<answer>...<end_of_answer>`.
    answer: for an answer step, its answer as `rstar.grading.extract_answer` reads it
        (the last `\\boxed{}`); None for code steps or when it states none.
    """

    text: str
    kind: StepKind
    code: str
    comment: str
    answer: str | None

    @property
    def opens_code(self) -> bool:
        """Whether this step opens the code block (`<code>`), as the first step must."""
        return self.text.lstrip().startswith(CODE_START)


def build_prompt(question: str) -> str:
    """`PROMPT_TEMPLATE` filled in with the question."""
    return PROMPT_TEMPLATE.format(question=question)


def parse_step(text: str) -> Step:
    """Parse one generated step: raw text ending with one of `STOP_STRINGS`.

    A code step is optional whitespace, `<code>` (first step only), then Python code
    (its comment lines are the reasoning) and `<end_of_step>` or `<end_of_code>`.
    An answer step is optional whitespace, `<answer>`, text with `\\boxed{...}`, then
    `<end_of_answer>`. No other marker may appear inside a step.
    """
    return _parse_step(text, offset=0, number=None)


def _parse_step(text: str, offset: int, number: int | None) -> Step:
    end = next((s for s in STOP_STRINGS if text.endswith(s)), None)
    if end is None:
        raise FormatError(
            f"step does not end with {STEP_END}, {CODE_END} or {ANSWER_END}: {text[-40:]!r}",
            offset=offset + len(text),
            step=number,
        )
    inner = text[: -len(end)]
    stripped = inner.lstrip()
    start = len(inner) - len(stripped)  # where the first non-space character is
    if end == ANSWER_END:
        if not stripped.startswith(ANSWER_START):
            raise FormatError(
                f"a step ending with {ANSWER_END} must start with {ANSWER_START}",
                offset=offset + start,
                step=number,
            )
        body_at = start + len(ANSWER_START)
        content = inner[body_at:]
        _reject_markers(content, offset + body_at, number)
        return Step(text, StepKind.ANSWER, "", content, extract_answer(content))
    code_at = start + len(CODE_START) if stripped.startswith(CODE_START) else 0
    code = inner[code_at:]
    _reject_markers(code, offset + code_at, number)
    kind = StepKind.CODE if end == STEP_END else StepKind.FINAL_CODE
    return Step(text, kind, code, _comment_lines(code), None)


def _reject_markers(body: str, offset: int, number: int | None) -> None:
    found = _SPECIAL_RE.search(body)
    if found:
        raise FormatError(
            f"unexpected {found.group()} inside the step",
            offset=offset + found.start(),
            step=number,
        )


def _comment_lines(code: str) -> str:
    lines = []
    for line in code.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            text = stripped[1:]
            lines.append(text[1:] if text.startswith(" ") else text)
    return "\n".join(lines)


def cumulative_program(steps: Iterable[Step]) -> str:
    """The program of all steps so far: their code concatenated, to run in one namespace.

    Step code keeps its own leading/trailing newlines, so plain concatenation is the
    released data's program exactly (its error line numbers match); a newline is added
    only where two steps would otherwise share a line. Answer steps add nothing.
    """
    program = ""
    for step in steps:
        if not step.code:
            continue
        if program and not program.endswith("\n") and not step.code.startswith("\n"):
            program += "\n"
        program += step.code
    return program


_LONG_FLOAT_RE = re.compile(r"(?<![\w.])\d+\.\d{5,}(?![\d.])")
_PRINT_ARGS_RE = re.compile(r"print\((.*?)\)")


def format_output(stdout: str, program: str | None = None) -> str:
    """Normalise a program's stdout the way the released data records it in `<output>`.

    What the released examples show, applied in this order:

    1. Surrounding whitespace is stripped ("30\\n" is recorded as "30").
    2. Numbers with 5 or more decimals are rounded to 4, written as Python writes the
       rounded float (8.94427190999916 -> 8.9443, 75.52248781407008 -> 75.5225);
       shorter ones are untouched (84000.0 stays).
    3. When `program` is given and it has two or more `print(` calls, one per output
       line, each line is labelled with its print's argument text as the non-greedy
       regex `print\\((.*?)\\)` captures it, then ": ". The release shows this on
       `print("Roots of f(f(x)) = 0:", n)`, recorded as
       `"Roots of f(f(x: Roots of f(f(x)) = 0: 4` (the capture stops at the first ")").
       This is inferred from that one example.

    Format markers a program prints are removed first, so that its output cannot
    break the trajectory it is recorded in.
    """
    text = _SPECIAL_RE.sub("", stdout).strip()
    text = _LONG_FLOAT_RE.sub(lambda m: str(round(float(m.group()), 4)), text)
    if program is not None:
        labels = _PRINT_ARGS_RE.findall(program)
        lines = text.split("\n")
        if len(labels) >= 2 and len(labels) == len(lines):
            text = "\n".join(f"{label}: {line}" for label, line in zip(labels, lines, strict=True))
    return text


def output_block(output: str) -> str:
    """`"<output>{output}<end_of_output>"`; `output` is the text to record (see `format_output`)."""
    return f"{OUTPUT_START}{output}{OUTPUT_END}"


@dataclass(frozen=True)
class Trajectory:
    """A (possibly partial) trajectory in the released format, kept byte-exact.

    question: the question, or None when only a response was parsed.
    steps: code steps, then at most one FINAL_CODE step, then (after the output) at
        most one ANSWER step. The first step opens with `<code>`, no later one does.
    output: the text inside `<output>...<end_of_output>` after the FINAL_CODE step, or
        None when the program has not been run (yet).
    output_separator: the raw text between `<end_of_code>` and `<output>` (whitespace).

    Construction checks these rules and raises `FormatError` naming the broken one.
    """

    question: str | None
    steps: tuple[Step, ...]
    output: str | None = None
    output_separator: str = OUTPUT_SEPARATOR

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        _check_trajectory(self.steps, self.output, self.output_separator, offsets=None)

    @property
    def program(self) -> str:
        """The cumulative program of all code steps."""
        return cumulative_program(self.steps)

    @property
    def answer(self) -> str | None:
        """The boxed answer of the answer step, None without one."""
        last = self.steps[-1] if self.steps else None
        return last.answer if last is not None and last.kind is StepKind.ANSWER else None

    @property
    def is_complete(self) -> bool:
        """Whether the trajectory ends with an answer step."""
        return bool(self.steps) and self.steps[-1].kind is StepKind.ANSWER


def _check_trajectory(
    steps: Sequence[Step], output: str | None, separator: str, offsets: Sequence[int] | None
) -> None:
    """Raise FormatError for the first step that breaks the trajectory's ordering rules."""

    def fail(problem: str, index: int) -> None:
        at = offsets[index] if offsets is not None and index < len(offsets) else None
        raise FormatError(problem, offset=at, step=index + 1)

    if separator.strip():
        fail(f"only whitespace may separate {CODE_END} and {OUTPUT_START}", len(steps) - 1)
    final_at = next((i for i, s in enumerate(steps) if s.kind is StepKind.FINAL_CODE), None)
    if output is not None and final_at is None:
        fail(f"an {OUTPUT_START} block needs a step ending with {CODE_END} before it", len(steps))
    if output is not None and _SPECIAL_RE.search(output):
        fail(f"the output contains a format marker: {output!r}", len(steps))
    for i, step in enumerate(steps):
        if step.opens_code != (i == 0):
            problem = "the first step must open with" if i == 0 else "only the first step may open"
            fail(f"{problem} {CODE_START}", i)
        if final_at is not None and i > final_at:
            if step.kind is not StepKind.ANSWER or i > final_at + 1:
                fail(f"only one answer step may follow the {CODE_END} step", i)
            if output is None:
                fail(f"the answer step needs the {OUTPUT_START} block before it", i)
        elif step.kind is StepKind.ANSWER:
            fail(f"the answer step must follow a step ending with {CODE_END}", i)


def render_response(traj: Trajectory) -> str:
    """The response text of a trajectory (everything after the prompt), byte-exact."""
    parts = []
    for step in traj.steps:
        parts.append(step.text)
        if step.kind is StepKind.FINAL_CODE and traj.output is not None:
            parts.append(traj.output_separator + output_block(traj.output))
    return "".join(parts)


def render_trajectory(traj: Trajectory) -> str:
    """Prompt + response: the full text of a trajectory with a question."""
    if traj.question is None:
        raise ValueError("this trajectory has no question: render_response renders it alone")
    return build_prompt(traj.question) + render_response(traj)


def continuation(question: str, steps: Sequence[Step], output: str | None = None) -> str:
    """The exact text the policy continues from: prompt + steps so far.

    Give `output` (the recorded program output, see `format_output`) once the last
    step is the FINAL_CODE step: the system appends `OUTPUT_SEPARATOR` and the output
    block, and the policy then writes the answer step. Steps that break the
    trajectory's rules (see `Trajectory`) raise FormatError.
    """
    return render_trajectory(Trajectory(question, tuple(steps), output))


def parse_response(response: str, question: str | None = None) -> Trajectory:
    """Parse a response (the text after the prompt) into a `Trajectory`.

    `render_response(parse_response(r)) == r` for every well-formed `r`; offsets in
    errors are into `response`.
    """
    return _parse_response(response, question, base=0)


def _parse_response(response: str, question: str | None, base: int) -> Trajectory:
    steps: list[Step] = []
    offsets: list[int] = []
    output: str | None = None
    separator = OUTPUT_SEPARATOR
    pos = 0
    while pos < len(response):
        number = len(steps) + 1
        if steps and steps[-1].kind is StepKind.ANSWER:
            raise FormatError(f"text after {ANSWER_END}", offset=base + pos, step=number - 1)
        stop = _STOP_RE.search(response, pos)
        if stop is None:
            raise FormatError(
                f"unterminated step: no {STEP_END}, {CODE_END} or {ANSWER_END} follows "
                f"{response[pos : pos + 40]!r}",
                offset=base + pos,
                step=number,
            )
        steps.append(_parse_step(response[pos : stop.end()], base + pos, number))
        offsets.append(base + pos)
        pos = stop.end()
        if steps[-1].kind is StepKind.FINAL_CODE and pos < len(response):
            output_at = len(response) - len(response[pos:].lstrip())
            if not response.startswith(OUTPUT_START, output_at):
                raise FormatError(
                    f"expected {OUTPUT_START} after {CODE_END}, found {response[pos : pos + 40]!r}",
                    offset=base + pos,
                    step=number,
                )
            separator = response[pos:output_at]
            body_at = output_at + len(OUTPUT_START)
            end_at = response.find(OUTPUT_END, body_at)
            if end_at == -1:
                raise FormatError(
                    f"{OUTPUT_START} is never closed by {OUTPUT_END}",
                    offset=base + output_at,
                    step=number,
                )
            output = response[body_at:end_at]
            pos = end_at + len(OUTPUT_END)
    _check_trajectory(steps, output, separator, offsets)
    return Trajectory(question, tuple(steps), output, separator)


def parse_trajectory(full_text: str) -> Trajectory:
    """Parse prompt + response (the prompt exactly as `build_prompt` writes it).

    `render_trajectory(parse_trajectory(t)) == t`; offsets in errors are into `full_text`.
    """
    question, response_at = _split_prompt(full_text)
    return _parse_response(full_text[response_at:], question, base=response_at)


def _split_prompt(full_text: str) -> tuple[str, int]:
    """The question and where the response starts."""
    if not full_text.startswith(_PROMPT_HEAD):
        raise FormatError(f"the text must start with {_PROMPT_HEAD!r}", offset=0)
    tail_at = full_text.find(_PROMPT_TAIL, len(_PROMPT_HEAD))
    if tail_at == -1:
        raise FormatError(f"the prompt does not end with {_PROMPT_TAIL!r}", offset=len(full_text))
    return full_text[len(_PROMPT_HEAD) : tail_at], tail_at + len(_PROMPT_TAIL)


@dataclass(frozen=True)
class PairCompletion:
    """One side (pos or neg) of a released PPM pair, parsed.

    trajectory: the trajectory of prompt + completion.
    prefix_length: how many of its steps the prompt already holds (0 for full-solution
        pairs, whose prompt is the question without the assistant header).
    """

    trajectory: Trajectory
    prefix_length: int

    @property
    def question(self) -> str:
        assert self.trajectory.question is not None  # parse_pair always sets it
        return self.trajectory.question

    @property
    def prefix(self) -> tuple[Step, ...]:
        """The steps in the prompt."""
        return self.trajectory.steps[: self.prefix_length]

    @property
    def completion(self) -> tuple[Step, ...]:
        """The steps of the completion (the pair's pos or neg)."""
        return self.trajectory.steps[self.prefix_length :]


def parse_pair(prompt: str, completion: str) -> PairCompletion:
    """Parse one side of a PPM pair: `prompt + completion` is a full (partial) trajectory.

    The prompt ends either inside the prompt header or right after a step (or after the
    output block); a prompt that cuts a step in two raises FormatError.
    """
    traj = parse_trajectory(prompt + completion)
    split = len(prompt)
    boundary = len(build_prompt(traj.question or ""))
    if split <= boundary:
        return PairCompletion(traj, 0)
    for count, step in enumerate(traj.steps, start=1):
        boundary += len(step.text)
        if step.kind is StepKind.FINAL_CODE and traj.output is not None:
            boundary += len(traj.output_separator + output_block(traj.output))
        if split == boundary:
            return PairCompletion(traj, count)
        if split < boundary:
            raise FormatError("the prompt ends in the middle of a step", offset=split, step=count)
    raise FormatError("the prompt is longer than prompt + completion's steps", offset=split)


def render_gold_solution(
    steps: Sequence[tuple[str, str]], final_code: str, output: str, answer_text: str
) -> str:
    """A canonical response (text after the prompt) in the release's shape.

    steps: (reasoning, code) pairs; reasoning becomes "# Step i: ..." comment lines
        (each further line of it another "# " line), code follows (may be "").
    final_code: the code printing the answer, after "# Now print the final answer".
    output: the text recorded in `<output>` (run the program and use `format_output`).
    answer_text: the answer sentence; it must contain `\\boxed{...}`.

    Result: "<code>\\n# Step 1: ...\\ncode\\n<end_of_step>\\n\\n# Step 2: ...<end_of_step>\\n\\n
    # Now print the final answer\\nprint(x)\\n<end_of_code>\\n<output>...<end_of_output>\\n
    <answer>...<end_of_answer>". Raises FormatError when a piece holds a format marker
    (the offset is into that piece) or the answer text has no `\\boxed{}`.
    """
    if "\\boxed" not in answer_text or extract_answer(answer_text) is None:
        raise FormatError(f"the answer text has no \\boxed{{...}}: {answer_text!r}")
    pieces_by_name = {"final_code": final_code, "output": output, "answer_text": answer_text}
    for number, (reasoning, code) in enumerate(steps, start=1):
        pieces_by_name |= {f"step {number} reasoning": reasoning, f"step {number} code": code}
    for name, piece in pieces_by_name.items():
        if found := _SPECIAL_RE.search(piece):
            raise FormatError(f"{name} contains the marker {found.group()}", offset=found.start())
    pieces = []
    for number, (reasoning, code) in enumerate(steps, start=1):
        lines = [f"# {line}".rstrip() for line in f"Step {number}: {reasoning}".split("\n")]
        if code.strip():
            lines.append(code.strip("\n"))
        pieces.append("\n".join(lines) + "\n" + STEP_END)
    final = final_code.strip("\n")
    pieces.append(f"# Now print the final answer\n{final}\n{CODE_END}")
    code_part = CODE_START + "\n" + "\n\n".join(pieces)
    answer_part = f"\n{ANSWER_START}{answer_text}{ANSWER_END}"
    return code_part + OUTPUT_SEPARATOR + output_block(output) + answer_part
