"""The toy world: procedural multi-step arithmetic word problems with exact answers.

A problem of level L is a story whose tracked quantity goes through exactly L arithmetic
operations (+, -, x, / with exact fractions); from ``distractor_from_level`` on, irrelevant
facts with numbers are mixed in. Everything is drawn from ``random.Random`` seeded by
``(seed, level, index)``, so a seed always gives the same problems. A problem's id and its
train/test split come from a hash of its normalised question text, so both are stable
across runs and a test question can never be in a train pool.
"""

from __future__ import annotations

import hashlib
import json
import operator
import random
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from rstar.format import format_output, render_gold_solution
from rstar.toy.config import ToyWorldConfig
from rstar.toy.templates import (
    FEMALE_NAMES,
    GENERIC_DISTRACTORS,
    MALE_NAMES,
    OTHER_THINGS,
    SCENARIOS,
    Move,
    Op,
    Scenario,
)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ToyProblem:
    """One toy-world problem; ``solution`` is the gold response (bootstrap data only)."""

    id: str
    question: str
    answer: str
    level: int
    solution: str
    scenario: str
    template: str
    distractors: int
    split: str


def normalise_question(question: str) -> str:
    """Lower-case, single-spaced text: the identity of a question."""
    return re.sub(r"\s+", " ", question).strip().lower()


def _digest(question: str) -> str:
    return hashlib.sha256(normalise_question(question).encode()).hexdigest()


def problem_id(question: str) -> str:
    """Stable id from the question's normalised text."""
    return "toy-" + _digest(question)[:16]


def split_of(question: str, test_share: float, val_share: float = 0.0) -> str:
    """``"test"`` for a fixed ``test_share`` of all question texts (by hash), ``"val"`` for
    the next ``val_share``, else ``"train"``: a text's split never depends on the seed."""
    bucket = int(_digest(question)[16:24], 16) / 0x1_0000_0000
    if bucket < test_share:
        return "test"
    return "val" if bucket < test_share + val_share else "train"


def _var(text: str) -> str:
    return re.sub(r"\W+", "_", text.lower()).strip("_")


_APPLY = {
    Op.ADD: operator.add,
    Op.SUB: operator.sub,
    Op.MUL: operator.mul,
    Op.DIV: operator.truediv,
}


def _apply(op: Op, value: Fraction, n: int) -> Fraction:
    return _APPLY[op](value, n)  # Fraction arithmetic: exact, divisions included


def _numbers_for(op: Op, value: Fraction, scenario: Scenario, cfg: ToyWorldConfig) -> list[int]:
    """The numbers ``n`` that keep ``value op n`` a sensible quantity (positive, not huge)."""
    if op is Op.ADD:
        return list(range(cfg.add_range[0], cfg.add_range[1] + 1))
    if op is Op.SUB:
        return list(range(cfg.add_range[0], min(cfg.add_range[1], int(value) - 1) + 1))
    if op is Op.MUL:
        return list(range(cfg.mul_range[0], cfg.mul_range[1] + 1)) if value <= cfg.max_value else []
    divisors = range(cfg.div_range[0], cfg.div_range[1] + 1)
    if scenario.exact_division:
        return [n for n in divisors if (value / n).denominator == 1]
    return list(divisors)


def _choose_move(
    rng: random.Random, scenario: Scenario, value: Fraction, cfg: ToyWorldConfig
) -> tuple[Move, int]:
    """A random applicable move (uniform over operations, then over moves) and its number."""
    options: dict[Op, list[tuple[Move, list[int]]]] = {}
    for move in scenario.moves:
        numbers = _numbers_for(move.op, value, scenario, cfg)
        if move.fixed is not None:
            numbers = [move.fixed] if move.fixed in numbers else []
        if numbers:
            options.setdefault(move.op, []).append((move, numbers))
    op = rng.choice(sorted(options))
    move, numbers = rng.choice(options[op])
    return move, rng.choice(numbers)


def _code(target: str, left: str, op: Op, n: int) -> str:
    if op is Op.DIV:
        return f"from fractions import Fraction\n{target} = Fraction({left}, {n})"
    return f"{target} = {left} {op.value} {n}"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def gold_solution(steps: list[tuple[str, str]], final_var: str, answer: str) -> str:
    """The gold response: the steps, a final print, its recorded output and the boxed answer."""
    final_code = f"print({final_var})"
    return render_gold_solution(
        steps,
        final_code=final_code,
        output=format_output(answer + "\n", final_code),
        answer_text=f"The answer is \\boxed{{{answer}}}.",
    )


def generate_problem(level: int, rng: random.Random, cfg: ToyWorldConfig) -> ToyProblem:
    """Draw one problem needing exactly ``level`` operations."""
    if level < 1:
        raise ValueError(f"level must be >= 1, got {level}")
    scenario = rng.choice(SCENARIOS)
    male = rng.random() < 0.5
    name = rng.choice(MALE_NAMES if male else FEMALE_NAMES)
    people = [p for p in rng.sample(MALE_NAMES + FEMALE_NAMES, level + 3) if p != name]
    slots: dict[str, object] = {
        "name": name,
        "He": "He" if male else "She",
        "he": "he" if male else "she",
        "His": "His" if male else "Her",
        "his": "his" if male else "her",
        "him": "him" if male else "her",
        "friend": people.pop(),
        "other": people.pop(),
        "other_things": rng.choice(OTHER_THINGS),
    }
    for key, choices in scenario.vocab.items():
        slots[key] = rng.choice(choices)
        slots[f"{key}_var"] = _var(slots[key])
        slots[f"{key}_cap"] = _capitalise(slots[key])

    def fill(template: str, **values: object) -> str:
        subject = str(values.get("subject", name))
        return template.format(
            **{**slots, "subject": subject, "subject_var": _var(subject), **values}
        )

    # Each story sentence: (template, its values, whether it is a distractor).
    story: list[tuple[str, dict[str, object], bool]] = []
    steps: list[tuple[str, str]] = []  # (reasoning, code) of the gold solution
    start = rng.choice(scenario.starts)
    if start.op is None:
        a = rng.randint(*cfg.start_range)
        value, left, pending = Fraction(a), str(a), fill(start.comment, a=a)
        story.append((start.text, {"a": a}, False))
    else:
        a, b = rng.randint(*cfg.pair_range), rng.randint(*cfg.pair_range)
        value, left, pending = _apply(start.op, Fraction(a), b), fill(scenario.var), None
        story.append((start.text, {"a": a, "b": b}, False))
        steps.append((_capitalise(fill(start.comment, a=a, b=b)), _code(left, str(a), start.op, b)))
    keys = [scenario.key, start.key]
    question_template = rng.choice(scenario.questions)
    subject = name
    while len(steps) < level:
        move, n = _choose_move(rng, scenario, value, cfg)
        values = {"n": n, "subject": subject, "new": people.pop() if move.new_subject else subject}
        comment = fill(move.comment, **values)
        if pending is not None:
            comment, pending = f"{pending}; {comment}", None
        subject = str(values["new"])
        target = fill(scenario.var, subject=subject)
        steps.append((_capitalise(comment), _code(target, left, move.op, n)))
        story.append((move.text, values, False))
        value, left = _apply(move.op, value, n), target
        question_template = move.question or question_template
        keys.append(move.key)

    distractors = 0
    if level >= cfg.distractor_from_level and cfg.max_distractors > 0:
        most = min(cfg.max_distractors, level - cfg.distractor_from_level + 1)
        distractors = rng.randint(1, most)
    for _ in range(distractors):
        template = rng.choice(scenario.distractors + GENERIC_DISTRACTORS)
        story.insert(
            rng.randint(0, len(story)), (template, {"n": rng.randint(*cfg.add_range)}, True)
        )

    sentences = []
    after_distractor = False
    for template, values, is_distractor in story:
        if after_distractor:  # a pronoun here could point at the distractor's person
            values = {**values, "He": name, "His": f"{name}'s"}
        sentences.append(fill(template, **values))
        after_distractor = is_distractor
    question = " ".join([*sentences, fill(question_template, subject=subject)])
    answer = str(value)
    return ToyProblem(
        id=problem_id(question),
        question=question,
        answer=answer,
        level=level,
        solution=gold_solution(steps, final_var=left, answer=answer),
        scenario=scenario.key,
        template="/".join(keys),
        distractors=distractors,
        split=split_of(question, cfg.test_share, cfg.val_share),
    )


def problem_pool(level: int, count: int, split: str, cfg: ToyWorldConfig) -> list[ToyProblem]:
    """``count`` distinct problems of one level and split, the same for the same config."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    found: dict[str, ToyProblem] = {}
    texts: set[str] = set()
    attempts = 0
    max_attempts = 100 * count + 1000
    while len(found) < count:
        if attempts >= max_attempts:
            raise RuntimeError(
                f"level {level}: only {len(found)} distinct {split} problems after {attempts} "
                f"draws; lower the count or widen the number ranges in ToyWorldConfig"
            )
        rng = random.Random(f"rstar-toy/{cfg.seed}/{level}/{attempts}")
        attempts += 1
        problem = generate_problem(level, rng, cfg)
        norm = normalise_question(problem.question)
        if problem.split == split and problem.id not in found and norm not in texts:
            found[problem.id] = problem
            texts.add(norm)
    return list(found.values())


def toy_dataset(cfg: ToyWorldConfig) -> dict[str, list[ToyProblem]]:
    """Train pool and held-out test set of levels 1..max_level, keyed by split name."""
    levels = range(1, cfg.max_level + 1)
    return {
        "train": [p for lv in levels for p in problem_pool(lv, cfg.train_per_level, "train", cfg)],
        "test": [p for lv in levels for p in problem_pool(lv, cfg.test_per_level, "test", cfg)],
    }


def write_jsonl(problems: Iterable[ToyProblem], path: Path) -> int:
    """Write problems as JSON lines (atomically); returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    rows = 0
    with tmp.open("w") as fh:
        for problem in problems:
            fh.write(json.dumps(asdict(problem)) + "\n")
            rows += 1
    tmp.replace(path)
    return rows


def read_jsonl(path: Path) -> list[ToyProblem]:
    """Read problems written by :func:`write_jsonl`; errors name the file and line."""
    problems = []
    with path.open() as fh:
        for number, line in enumerate(fh, 1):
            try:
                problems.append(ToyProblem(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(
                    f"{path}:{number}: not a toy problem row ({exc}); regenerate it with "
                    "`rstar toy generate`"
                ) from exc
    return problems
