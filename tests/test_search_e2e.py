"""End to end: MCTS with a real tiny policy, the real sandbox and grader, into the store.

The policy is a tiny Llama that has learnt one toy problem's gold solution by heart, so
its sampled steps are mostly that solution: the search must find correct trajectories
for it. A second, unseen problem rides in the same batch.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from rstar.cli import app
from rstar.config import Profile, SearchConfig
from rstar.models import TransformersBackend
from rstar.search import MCTS, SearchProblem, Tree
from rstar.search.records import trees_to_table
from rstar.solve import Solution, solve
from rstar.store import Catalog, write_shard
from rstar.toy.bootstrap import bootstrap, training_problems
from rstar.toy.config import ToyWorldConfig
from rstar.toy.world import problem_pool
from tests.test_toy_bootstrap import MEMORISE  # one toy problem, learnt by heart
from tests.test_tree_html import dump_dom, needs_chromium, parse, rows

WORLD = ToyWorldConfig()


class CountingBackend(TransformersBackend):
    """The real backend, counting its calls and the prompts in each."""

    calls: list[int]

    def generate(self, prompts, params):
        self.calls.append(len(prompts))
        return super().generate(prompts, params)


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    out = tmp_path_factory.mktemp("policy")
    bootstrap(out, WORLD, MEMORISE, progress=False)
    return out


def subtree_terminals(node) -> list:
    found = [node] if node.terminal and node.visits else []
    for child in node.children:
        found += subtree_terminals(child)
    return found


def test_mcts_with_a_real_policy_lands_in_the_store(policy, tmp_path, sandbox) -> None:
    [learnt] = training_problems(WORLD, MEMORISE)
    [unseen] = problem_pool(2, 1, "test", WORLD)
    backend = CountingBackend(str(policy), batch_size=16, progress=False)
    backend.calls = []
    config = SearchConfig(
        rollouts=4, candidates=3, temperature=0.7, max_new_tokens=200, max_depth=6, seed=1
    )
    problems = [SearchProblem(p.id, p.question, p.answer) for p in (learnt, unseen)]
    results = MCTS(backend, sandbox, config, progress=False).search(problems)

    learnt_result = results[0]
    assert learnt_result.correct >= 1  # the memorised solution is found and graded correct
    for result in results:
        tree: Tree = result.tree
        assert tree.root.visits == result.rollouts == len(result.terminals)
        for node in tree:  # Eq. 2: N and q of every node come from the terminals below it
            below = subtree_terminals(node)
            assert node.visits == len(below)
            assert node.value_sum == pytest.approx(sum(t.reward for t in below))
    # every step of the search was one generate call holding both trees' leaves
    assert backend.calls[0] == 2 and max(backend.calls) <= 2

    table = trees_to_table(r.tree for r in results)
    write_shard(tmp_path / "store", table, round=1, stage="search", shard=0)
    with Catalog(tmp_path / "store") as catalog:
        stored = catalog.sql(
            "select problem_id, count(*) as n, count(*) filter (where correct) as ok "
            "from trajectories group by problem_id order by problem_id"
        ).to_pylist()
    expected = sorted((r.problem_id, r.trajectories, r.correct) for r in results)
    assert [(row["problem_id"], row["n"], row["ok"]) for row in stored] == expected


@needs_chromium
def test_rstar_solve_prints_the_answer_and_writes_the_tree_page(policy, tmp_path) -> None:
    [learnt] = training_problems(WORLD, MEMORISE)
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        f"policy: {{path: {policy}, batch_size: 16}}\n"
        "search: {rollouts: 3, candidates: 2, temperature: 0.7, max_new_tokens: 200, "
        "max_depth: 6}\nsandbox: {timeout: 5.0, workers: 2}\n"
    )
    page = tmp_path / "tree.html"
    result = CliRunner().invoke(
        app, ["solve", learnt.question, "--profile", str(profile), "--tree", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert f"answer: {learnt.answer}" in result.output
    assert "print(money)" in result.output  # the chosen trajectory's steps are shown
    nodes = int(re.search(r"search tree \((\d+) nodes\)", result.output).group(1))
    dom = parse(dump_dom(page, tmp_path))
    assert len(rows(dom)) == nodes


def test_solve_uses_the_profiles_ppm_only_when_its_checkpoint_exists(policy, tmp_path) -> None:
    [learnt] = training_problems(WORLD, MEMORISE)

    def solved_with(ppm_path) -> Solution:
        prof = Profile.model_validate(
            {
                "name": "solve-test",
                "policy": {"path": str(policy), "batch_size": 16},
                "ppm": {"path": str(ppm_path)},  # the policy loads as a PPM with a new head
                "search": {"rollouts": 2, "candidates": 2, "max_new_tokens": 200, "seed": 1},
                "sandbox": {"timeout": 5.0, "workers": 2},
            }
        )
        return solve(learnt.question, prof, progress=False)

    scored = [n.ppm_score for n in solved_with(policy).tree if n.parent is not None]
    assert scored and all(s is not None for s in scored)
    unscored = [n.ppm_score for n in solved_with(tmp_path / "no-ppm").tree]
    assert unscored and all(s is None for s in unscored)  # no PPM yet: solved without one
