"""New problems from seed problems, kept only when sampled solutions agree (docs/method.md §4).

For each seed, a model writes ``new_per_seed`` new problems (``problem_prompt``). Each new
problem gets ``num_solutions`` sampled solutions (``solve_prompt``); their final answers
(``rstar.grading.extract_answer``) are grouped by equivalence
(``rstar.grading.is_equivalent``), and the problem is kept when the largest group has at
least ``min_agree`` members; that group's first answer becomes its label.

Every judged candidate is written for audit (``SYNTHESIS_SCHEMA``: the answers, the vote,
the verdict) as one Parquet part per batch under ``<store>/synthesis/`` (the catalog's
``synthesis`` view). A rerun reads those parts and skips every candidate slot already
judged, so an interrupted run resumes and a finished one costs no model call.
Any ``GenerationBackend`` works (``OpenAIBackend`` for a GPT-4-class server). ``plan`` says
how many model calls a run will make at most before any is made (a dry run).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm.auto import tqdm

from rstar.atomic import atomic_write
from rstar.grading import extract_answer, is_equivalent
from rstar.models.base import GenerationBackend, GenerationParams
from rstar.problems.ids import problem_id
from rstar.store.layout import StoreLayout
from rstar.store.schema import PROBLEM_SCHEMA, SYNTHESIS_SCHEMA

DEFAULT_PROBLEM_PROMPT = (
    "Here is a competition math problem:\n\n{question}\n\n"
    "Write one new, different competition math problem on a similar topic and of similar "
    "or greater difficulty. It must have a single final answer. Reply with the problem "
    "statement only."
)
DEFAULT_SOLVE_PROMPT = (
    "Solve the following math problem step by step. Put the final answer in \\boxed{}.\n\n"
    "{question}"
)
SYNTHETIC_SOURCE = "synthetic"
# A problem asks something: a question mark or a word that asks for an answer.
DEFAULT_QUESTION_PATTERN = (
    r"\?|\b(?:find|compute|calculate|determine|evaluate|simplify|solve|express|prove|show|"
    r"what|how|which)\b"
)


class SynthesisConfig(BaseModel):
    """Prompts and sizes of problem synthesis; defaults follow the paper (10 solutions, >= 3
    agreeing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    problem_prompt: str = Field(
        DEFAULT_PROBLEM_PROMPT, description="the seed replaces the text {question}"
    )
    solve_prompt: str = Field(
        DEFAULT_SOLVE_PROMPT, description="the new problem replaces the text {question}"
    )
    new_per_seed: int = Field(1, ge=1, description="new problems written per seed")
    num_solutions: int = Field(10, ge=1, description="solutions sampled per new problem")
    min_agree: int = Field(3, ge=1, description="equivalent final answers needed to keep one")
    temperature: float = Field(1.0, ge=0.0, description="when writing problems")
    solve_temperature: float = Field(0.7, ge=0.0, description="when sampling solutions")
    max_new_tokens: int = Field(2048, gt=0)
    problem_stop: tuple[str, ...] = Field(
        (), description="stop strings that end a written problem (dropped from its text)"
    )
    question_pattern: str = Field(
        DEFAULT_QUESTION_PATTERN,
        description="regular expression (case-insensitive) a written problem must match "
        "somewhere to be a problem; one that does not is recorded as not a problem, unsolved",
    )
    batch_size: int = Field(64, gt=0, description="seeds per batch (one audit file each)")
    seed: int | None = None

    @field_validator("problem_prompt", "solve_prompt")
    @classmethod
    def _has_question(cls, value: str) -> str:
        if "{question}" not in value:
            raise ValueError("the prompt must contain {question}")
        return value

    @field_validator("question_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


@dataclass(frozen=True)
class SynthesisResult:
    problems: pa.Table  # every kept problem so far (PROBLEM_SCHEMA), this run's and earlier
    records: pa.Table  # every judged candidate so far (SYNTHESIS_SCHEMA)
    judged: int  # candidates judged by this call


@dataclass(frozen=True)
class SynthesisPlan:
    """The model calls a synthesis run will make at most; candidates judged before are not
    counted (they are skipped)."""

    seeds: int  # seeds with candidates still to judge
    candidates: int  # candidate slots still to judge
    write_requests: int  # one per such seed: its new problems
    solve_requests: int  # at most one per candidate (none for an empty or repeated one)
    samples: int  # completions asked for, at most
    max_completion_tokens: int  # samples x max_new_tokens: the worst case


@dataclass(frozen=True)
class Vote:
    votes: int  # size of the largest group of equivalent answers
    answer: str | None  # its first member


def vote(answers: Sequence[str | None]) -> Vote:
    """Group the answers by equivalence (``None`` = no answer, never counted); the largest
    group wins, the earliest-formed one on a tie."""
    groups: list[list[str]] = []
    for answer in answers:
        if answer is None:
            continue
        group = next((g for g in groups if answer == g[0] or is_equivalent(answer, g[0])), None)
        if group is None:
            groups.append([answer])
        else:
            group.append(answer)
    if not groups:
        return Vote(0, None)
    best = max(groups, key=len)  # max keeps the first of equal-sized groups
    return Vote(len(best), best[0])


def read_records(directory: Path) -> pa.Table:
    """Every audit record in ``directory`` (SYNTHESIS_SCHEMA; empty when there is none)."""
    parts = sorted(directory.glob("*.parquet"))
    if not parts:
        return SYNTHESIS_SCHEMA.empty_table()
    return pa.concat_tables(pq.read_table(part).cast(SYNTHESIS_SCHEMA) for part in parts)


def kept_problems(records: pa.Table) -> pa.Table:
    """The kept candidates of audit ``records`` as problem rows (``source = synthetic``)."""
    kept = records.filter(records["kept"]).to_pylist()
    return pa.table(
        {
            "problem_id": [r["problem_id"] for r in kept],
            "question": [r["question"] for r in kept],
            "answer": [r["agreed_answer"] for r in kept],
            "source": [SYNTHETIC_SOURCE] * len(kept),
            "level": pa.nulls(len(kept), pa.int32()),
            "split": ["train"] * len(kept),
        },
        schema=PROBLEM_SCHEMA,
    )


def outcome(record: Mapping) -> str:
    """What became of a judged candidate (an audit record), in a word or two: kept, too few
    agree, or the head of the reason it was not solved (``_judge_batch`` writes them)."""
    if record["kept"]:
        return "kept"
    if record["answers"] is not None:
        return "too few agree"
    return record["reason"].split(":")[0].removeprefix("the model ")


def asks_something(text: str, config: SynthesisConfig) -> bool:
    """Whether a written problem asks anything (``config.question_pattern`` matches)."""
    return re.search(config.question_pattern, text, re.IGNORECASE) is not None


def _params(
    config: SynthesisConfig, n: int, temperature: float, stop: tuple[str, ...] = ()
) -> GenerationParams:
    return GenerationParams(
        n=n,
        temperature=temperature,
        max_new_tokens=config.max_new_tokens,
        stop=stop,
        seed=config.seed,
    )


def _judge_batch(
    backend: GenerationBackend,
    config: SynthesisConfig,
    slots: list[tuple[str, str, list[int]]],
    known: set[str],
) -> list[dict]:
    """Write and judge the candidates of ``slots`` ((seed id, seed question, the k's still
    to judge) per seed); ``known`` (ids that are not new) grows with every new question."""
    written = backend.generate(
        [config.problem_prompt.replace("{question}", question) for _, question, _ in slots],
        _params(config, config.new_per_seed, config.temperature, config.problem_stop),
    )
    rows, to_solve = [], []
    for (seed_id, _, ks), completions in zip(slots, written, strict=True):
        for k in ks:
            reply = completions[k]
            question = reply.text.removesuffix(reply.stop or "").strip()
            pid = problem_id(question) if question else None
            row = {
                "candidate_id": f"{seed_id}:{k}",
                "seed_problem_id": seed_id,
                "problem_id": pid,
                "question": question,
                "answers": None,
                "votes": 0,
                "agreed_answer": None,
                "kept": False,
                "reason": None,
            }
            if pid is None:
                row["reason"] = "the model wrote no problem"
            elif reply.truncated:
                row["reason"] = f"cut off: no end within max_new_tokens ({config.max_new_tokens})"
            elif not asks_something(question, config):
                row["reason"] = "not a problem: it asks nothing (question_pattern)"
            elif pid in known:
                row["reason"] = "not new: same question as a seed or an earlier candidate"
            else:
                known.add(pid)
                to_solve.append(row)
            rows.append(row)
    if to_solve:
        solutions = backend.generate(
            [config.solve_prompt.replace("{question}", row["question"]) for row in to_solve],
            _params(config, config.num_solutions, config.solve_temperature),
        )
        for row, completions in zip(to_solve, solutions, strict=True):
            answers = [extract_answer(c.text) for c in completions]
            result = vote(answers)
            kept = result.votes >= config.min_agree
            verdict = f"{result.votes} of {len(answers)} answers agree"
            row.update(
                answers=answers,
                votes=result.votes,
                agreed_answer=result.answer if kept else None,
                kept=kept,
                reason=verdict if kept else f"{verdict} (< {config.min_agree})",
            )
    return rows


def _pending(
    seeds: pa.Table, previous: pa.Table, config: SynthesisConfig
) -> list[tuple[str, str, list[int]]]:
    """(seed id, seed question, the candidate slots k still to judge) of every seed with any."""
    done = set(previous["candidate_id"].to_pylist())
    pending = []
    for seed_id, question in zip(
        seeds["problem_id"].to_pylist(), seeds["question"].to_pylist(), strict=True
    ):
        ks = [k for k in range(config.new_per_seed) if f"{seed_id}:{k}" not in done]
        if ks:
            pending.append((seed_id, question, ks))
    return pending


def audit_dir(store: StoreLayout | str | Path, partition: str | None = None) -> Path:
    """Where the audit records go: ``<store>/synthesis/`` or a partition of it (a round's
    ``round=N``: candidates are judged once per partition)."""
    layout = store if isinstance(store, StoreLayout) else StoreLayout(Path(store))
    return layout.synthesis_dir / partition if partition else layout.synthesis_dir


def plan(
    seeds: pa.Table,
    store: StoreLayout | str | Path,
    config: SynthesisConfig | None = None,
    *,
    partition: str | None = None,
) -> SynthesisPlan:
    """What ``synthesize`` with these arguments would ask the model for, at most."""
    config = config or SynthesisConfig()
    pending = _pending(seeds, read_records(audit_dir(store, partition)), config)
    candidates = sum(len(ks) for _, _, ks in pending)
    samples = len(pending) * config.new_per_seed + candidates * config.num_solutions
    return SynthesisPlan(
        seeds=len(pending),
        candidates=candidates,
        write_requests=len(pending),
        solve_requests=candidates,
        samples=samples,
        max_completion_tokens=samples * config.max_new_tokens,
    )


def synthesize(
    seeds: pa.Table,
    backend: GenerationBackend,
    store: StoreLayout | str | Path,
    config: SynthesisConfig | None = None,
    *,
    partition: str | None = None,
    progress: bool = True,
) -> SynthesisResult:
    """Write and judge new problems from ``seeds`` (columns problem_id, question).

    Audit records go to ``<store>/synthesis/`` (or its ``partition``); slots judged by an
    earlier call are skipped.
    """
    config = config or SynthesisConfig()
    directory = audit_dir(store, partition)
    previous = read_records(directory)
    known = set(seeds["problem_id"].to_pylist()) | {
        pid for pid in previous["problem_id"].to_pylist() if pid is not None
    }
    pending = _pending(seeds, previous, config)
    judged = []
    batches = range(0, len(pending), config.batch_size)
    for start in tqdm(batches, desc="synthesis batches", disable=not progress):
        slots = pending[start : start + config.batch_size]
        rows = _judge_batch(backend, config, slots, known)
        table = pa.Table.from_pylist(rows, schema=SYNTHESIS_SCHEMA)
        name = hashlib.blake2b(
            "\n".join(r["candidate_id"] for r in rows).encode(), digest_size=8
        ).hexdigest()
        atomic_write(directory / f"part-{name}.parquet", partial(pq.write_table, table))
        judged.append(table)
    records = pa.concat_tables([previous, *judged])
    return SynthesisResult(kept_problems(records), records, sum(len(t) for t in judged))
