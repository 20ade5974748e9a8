"""Expanding many leaves at once: one generate call, one sandbox batch, one PPM batch.

Every search strategy grows trees through :class:`Expander`. Given leaves from many trees,
it asks the policy for ``n`` candidate next steps of each (one batched call), merges
identical candidates, runs the cumulative program of every code candidate in the sandbox
(one ``run_many``), grades answer steps, and scores the new steps with the PPM (one batch).
The model is the expensive part; everything here stays small beside it.

How a candidate becomes a node:

- cut off by the token limit before a stop string: terminal, ``truncated``, reward −1;
- not a step of the format (``FormatError``), or a non-answer after the last code step:
  terminal, ``malformed``, reward −1;
- a code step: the program of the steps so far (:func:`program_of`) runs in the sandbox.
  On success the consecutive-error count resets to 0; on failure it is the parent's
  count + 1 and, once it reaches ``error_threshold``, the node is terminal
  (``code_error``, reward −1). A program that ran before in this expander, or that differs
  from one only in its comment lines, is not run again: its result is reused
  (:func:`program_key`);
- an answer step: terminal (``answer``). With a gold answer (data generation) the reward is
  +1 if the boxed answer is equivalent to it, else −1; at test time (no gold) the reward is
  the PPM's score of the whole trajectory, or 0 without a PPM;
- a node that is not terminal at ``max_depth`` becomes terminal (``max_depth``, reward −1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rstar.format import (
    STOP_STRINGS,
    FormatError,
    StepKind,
    Trajectory,
    continuation,
    cumulative_program,
    format_output,
    parse_step,
    render_response,
)
from rstar.grading import is_correct
from rstar.models import Completion, GenerationBackend, GenerationParams, PPMScorer
from rstar.sandbox import ExecResult, Sandbox
from rstar.search.config import SearchConfig
from rstar.search.tree import (
    ANSWER,
    CODE_ERROR,
    MALFORMED,
    MAX_DEPTH,
    TRUNCATED,
    Node,
    Tree,
)

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 200_000  # program results an expander keeps (a shard's worth, many times)


@dataclass
class SearchStats:
    """Where the search time went, and how many batched calls it made."""

    model_s: float = 0.0
    sandbox_s: float = 0.0
    ppm_s: float = 0.0
    total_s: float = 0.0
    generate_calls: int = 0
    sandbox_calls: int = 0
    ppm_calls: int = 0
    generated_tokens: int = 0
    generated_sequences: int = 0
    programs_run: int = 0  # programs the sandbox ran
    programs_reused: int = 0  # programs whose result an identical one had given

    @property
    def bookkeeping_s(self) -> float:
        return max(0.0, self.total_s - self.model_s - self.sandbox_s - self.ppm_s)


def _recorded_output(node: Node) -> str | None:
    """The output block's text once the path has run its final code step, else None."""
    final = next((n for n in node.path() if n.kind == StepKind.FINAL_CODE), None)
    return final.output if final is not None and final is not node else None


def partial_text(node: Node) -> str:
    """The trajectory from the first step to ``node`` as the PPM scores it (Eq. 3)."""
    return render_response(Trajectory(None, node.steps(), _recorded_output(node)))


def prompt_for(tree: Tree, node: Node) -> str:
    """What the policy continues from to propose the next step below ``node``."""
    output = node.output if node.kind == StepKind.FINAL_CODE else None
    return continuation(tree.question, node.steps(), output)


def program_key(program: str) -> str:
    """What decides a program's result: its text with every comment line blanked (line
    numbers, which error messages name, stay as they were)."""
    return "\n".join("" if line.lstrip().startswith("#") else line for line in program.split("\n"))


def program_of(node: Node) -> str:
    """The cumulative program that checks ``node``: its code after that of its ancestors.

    Ancestor steps whose code failed (kept while under the error threshold) are left out:
    their error cannot be undone by a later step, so a later step is judged on its own
    code on top of the steps that ran.
    """
    steps = [n.step for n in node.path() if n.step is not None and (n.exec_ok or n is node)]
    return cumulative_program(steps)


class Expander:
    """Grows trees by batched expansion; shared by every search strategy."""

    def __init__(
        self,
        policy: GenerationBackend,
        sandbox: Sandbox,
        config: SearchConfig,
        ppm: PPMScorer | None = None,
        grader: Callable[[str | None, str | None], bool] = is_correct,
    ) -> None:
        self.policy = policy
        self.sandbox = sandbox
        self.config = config
        self.ppm = ppm
        self.grader = grader
        self.stats = SearchStats()
        self._calls = 0
        self._results: dict[str, ExecResult] = {}  # by program_key

    def expand(
        self,
        items: Sequence[tuple[Tree, Node, int]],
        n: int | None = None,
        *,
        merge_duplicates: bool = True,
        score: bool = True,
    ) -> list[list[Node]]:
        """Expand each ``(tree, leaf, rollout)``; returns the new children of each leaf.

        ``merge_duplicates=False`` keeps identical samples apart (for votes over samples);
        ``score=False`` leaves PPM scoring to a later :meth:`score` call.
        """
        if not items:
            return []
        completions = self._generate([prompt_for(tree, leaf) for tree, leaf, _ in items], n)
        children = [
            self._add_candidates(tree, leaf, rollout, comps, merge_duplicates)
            for (tree, leaf, rollout), comps in zip(items, completions, strict=True)
        ]
        new_nodes = [
            (tree, child)
            for (tree, _, _), kids in zip(items, children, strict=True)
            for child in kids
        ]
        self._execute(new_nodes)
        for tree, child in new_nodes:
            self._classify(tree, child)
        if score:
            self.score(new_nodes)
        for _, leaf, _ in items:
            leaf.expanded = True
        return children

    def _generate(self, prompts: list[str], n: int | None) -> list[list[Completion]]:
        params = GenerationParams(
            n=n or self.config.candidates,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            max_new_tokens=self.config.max_new_tokens,
            stop=STOP_STRINGS,
            seed=self.config.seed + self._calls,
        )
        self._calls += 1
        start = time.perf_counter()
        completions = self.policy.generate(prompts, params)
        self.stats.model_s += time.perf_counter() - start
        self.stats.generate_calls += 1
        for comps in completions:
            self.stats.generated_sequences += len(comps)
            self.stats.generated_tokens += sum(c.num_tokens for c in comps)
        return completions

    @staticmethod
    def _add_candidates(
        tree: Tree, leaf: Node, rollout: int, completions: list[Completion], merge: bool
    ) -> list[Node]:
        """One child per candidate; identical candidate texts are merged when ``merge``."""
        seen: set[str] = set()
        children = []
        for comp in completions:
            if merge and comp.text in seen:
                continue
            seen.add(comp.text)
            child = tree.add_child(leaf, rollout, text=comp.text)
            if comp.truncated:
                _end(child, TRUNCATED, -1.0, kind=StepKind.CODE)
            else:
                _parse_into(child, leaf)
            children.append(child)
        return children

    def _execute(self, new_nodes: list[tuple[Tree, Node]]) -> None:
        """Run the cumulative program of every new code step in one sandbox batch."""
        runnable = [
            child
            for _, child in new_nodes
            if not child.terminal and child.kind in (StepKind.CODE, StepKind.FINAL_CODE)
        ]
        if not runnable:
            return
        start = time.perf_counter()
        results = self._results_of([program_of(child) for child in runnable])
        self.stats.sandbox_s += time.perf_counter() - start
        for child, result in zip(runnable, results, strict=True):
            parent_errors = child.parent.consecutive_errors if child.parent else 0
            child.exec_ok = result.ok
            child.output = format_output(result.stdout if result.ok else (result.error or "error"))
            child.consecutive_errors = 0 if result.ok else parent_errors + 1
            if child.consecutive_errors >= self.config.error_threshold:
                _end(child, CODE_ERROR, -1.0)

    def _results_of(self, programs: list[str]) -> list[ExecResult]:
        """The result of every program: remembered ones reused, the others run in one batch
        (each distinct program once). Results of a failing sandbox are not remembered."""
        keys = [program_key(program) for program in programs]
        todo = {key: program for key, program in zip(keys, programs, strict=True)}
        todo = {key: program for key, program in todo.items() if key not in self._results}
        if todo:
            ran = self._run_many(list(todo.values()))
            self.stats.sandbox_calls += 1
            self.stats.programs_run += len(todo)
            if len(self._results) > _MAX_REMEMBERED:
                self._results.clear()
            for key, result in zip(todo, ran, strict=True):
                if not (result.error or "").startswith("sandbox"):
                    self._results[key] = result
        found = {key: self._results.get(key) for key in keys}
        if todo:
            found |= dict(zip(todo, ran, strict=True))
        self.stats.programs_reused += len(keys) - len(todo)
        return [found[key] for key in keys]

    def _run_many(self, programs: list[str]) -> list[ExecResult]:
        """A sandbox failure on one program must never stop the batch."""
        try:
            return self.sandbox.run_many(programs)
        except Exception as exc:  # the sandbox itself broke: retry one by one
            log.warning("sandbox batch failed (%s); running programs one by one", exc)
        results = []
        for program in programs:
            try:
                results.append(self.sandbox.run(program))
            except Exception as exc:
                results.append(ExecResult(ok=False, stdout="", error=f"sandbox: {exc}", duration=0))
        return results

    def _classify(self, tree: Tree, child: Node) -> None:
        """Grade answers (with a gold answer) and force terminals at max depth."""
        if child.terminal:
            return
        if child.kind == StepKind.ANSWER:
            child.terminal, child.terminal_reason = True, ANSWER
            if tree.gold is not None:
                child.correct = self.grader(child.answer, tree.gold)
                child.reward = 1.0 if child.correct else -1.0
            return
        if child.depth >= self.config.max_depth:
            _end(child, MAX_DEPTH, -1.0)

    def score(self, nodes: Sequence[tuple[Tree, Node]]) -> None:
        """PPM scores in one batch: the initial value q(s)_0 of open nodes (Eq. 3), and
        the reward of answers that have none (test time: no gold answer to grade by).

        Without a PPM such answers get reward 0 (neutral).
        """
        to_score = [
            (tree, node)
            for tree, node in nodes
            if not node.terminal or (node.terminal_reason == ANSWER and node.reward is None)
        ]
        if self.ppm is not None and to_score:
            start = time.perf_counter()
            partials = [partial_text(n) for _, n in to_score]
            shared = [  # siblings share what comes before their own step
                len(p) - len(n.text) if p.endswith(n.text) else None
                for p, (_, n) in zip(partials, to_score, strict=True)
            ]
            scores = self.ppm.score([tree.question for tree, _ in to_score], partials, shared)
            self.stats.ppm_s += time.perf_counter() - start
            self.stats.ppm_calls += 1
            for (_, node), value in zip(to_score, scores, strict=True):
                node.ppm_score = float(value)
                if node.terminal:
                    node.reward = float(value)
                else:
                    node.set_prior(float(value))
        for _, node in nodes:
            if node.terminal and node.reward is None:
                node.reward = 0.0


def _end(node: Node, reason: str, reward: float, kind: str | None = None) -> None:
    node.terminal, node.terminal_reason, node.reward = True, reason, reward
    if kind is not None:
        node.kind = kind


def _parse_into(child: Node, parent: Node) -> None:
    """Fill ``child`` from its text; a step that breaks the format ends the branch.

    Besides the step itself, its place is checked (only the first step opens ``<code>``,
    the answer step comes right after the final code step and its output), so that every
    open node continues into a well-formed prompt.
    """
    try:
        step = parse_step(child.text)
        output = parent.output if parent.kind == StepKind.FINAL_CODE else None
        Trajectory(None, (*parent.steps(), step), output)
    except FormatError as exc:
        child.output = str(exc)
        _end(child, MALFORMED, -1.0, kind=StepKind.CODE)
        return
    child.step, child.kind, child.answer = step, step.kind, step.answer
