"""MCTS against hand-computed trees (docs/method.md §2): a scripted policy, the real sandbox."""

from __future__ import annotations

import math

import pytest

from rstar.config import SearchConfig
from rstar.search.mcts import MCTS, MissingGoldError, SearchProblem
from rstar.search.records import trees_to_table
from rstar.search.tree import Node, Tree, select_child, uct
from tests.scripted import ReplayBackend, ScriptedPPM

A = "<code>\n# Step 1: [A] two\nx = 2\n<end_of_step>"
B = "<code>\n# Step 1: [B] three\nx = 3\n<end_of_step>"
A1 = "\n\n# Now print the final answer [A1]\nprint(x + 2)\n<end_of_code>"
A2 = "\n\n# Step 2: [A2] divide\ny = x / 0\n<end_of_step>"
A1X = "\n<answer>[A1X] The answer is \\boxed{4}.<end_of_answer>"
B1 = "\n\n# Now print the final answer [B1]\nprint(x + 2)\n<end_of_code>"
B_CUT = "\n\n# Step 2: [BT] this generation never reaches a stop str"
B1X = "\n<answer>[B1X] The answer is \\boxed{5}.<end_of_answer>"

SCRIPT = {
    "ROOT": [A, B],
    "A": [A1, A2, A1],  # the repeated A1 is merged
    "A1": [A1X],
    "B": [B1, B_CUT],
    "B1": [B1X],
}
QUESTION = "What is two plus two?"


def config(**overrides) -> SearchConfig:
    values = {"rollouts": 10, "candidates": 3, "error_threshold": 1, "c_puct": 2.0, "seed": 0}
    return SearchConfig(**(values | overrides))


def by_tag(tree: Tree) -> dict[str, Node]:
    nodes = {"ROOT": tree.root}
    for node in list(tree)[1:]:
        tag = node.text.split("[", 1)[1].split("]", 1)[0]
        nodes[tag] = node
    return nodes


def test_uct_picks_the_hand_computed_child() -> None:
    parent = Node(node_id=0, parent=None, depth=0, rollout=-1, visits=10, expanded=True)
    stats = [(5, 3.0), (2, -1.0), (3, 1.0)]  # (N, q): Q = 0.6, -0.5, 1/3
    for i, (visits, value) in enumerate(stats, start=1):
        parent.children.append(
            Node(node_id=i, parent=parent, depth=1, rollout=0, visits=visits, value_sum=value)
        )
    first, second, third = parent.children
    assert uct(second, 10, 2.0) == pytest.approx(1.64596, abs=1e-5)
    # UCT = Q + c sqrt(ln 10 / N): c = 2 → 1.9572, 1.6460, 2.0855 → the third child
    assert uct(first, 10, 2.0) == pytest.approx(0.6 + 2 * math.sqrt(math.log(10) / 5))
    assert uct(third, 10, 2.0) == pytest.approx(2.08551, abs=1e-5)
    assert select_child(parent, 2.0) is third
    # c = 0.5 → 0.9393, 0.0365, 0.7714 → exploitation wins: the first child
    assert select_child(parent, 0.5) is first
    # an unvisited child is taken before any visited one, the highest prior first
    fresh_low = Node(node_id=4, parent=parent, depth=1, rollout=1)
    fresh_high = Node(node_id=5, parent=parent, depth=1, rollout=1)
    fresh_low.set_prior(0.1)
    fresh_high.set_prior(0.7)
    parent.children += [fresh_low, fresh_high]
    assert select_child(parent, 2.0) is fresh_high
    # a visited terminal child is closed and skipped; when all are closed: None
    for child in parent.children:
        child.terminal, child.visits = True, max(child.visits, 1)
    assert select_child(parent, 2.0) is None


def test_terminal_guided_search_matches_hand_computation(sandbox) -> None:
    backend = ReplayBackend(SCRIPT)
    mcts = MCTS(backend, sandbox, config(), progress=False)
    [result] = mcts.search([SearchProblem("p1", QUESTION, gold="4")])
    nodes = by_tag(result.tree)

    # rollout 0: root → A → A1 → A1X (+1); rollout 1: root → B (unvisited) → B1 → B1X (−1);
    # rollout 2: UCT(A) = 1 + 2√(ln2/1) = 2.665 > UCT(B) = −1 + 1.665 → A → A2 (code error, −1);
    # rollout 3: A is closed → B → BT (truncated, −1); then the root is closed.
    expected = {  # tag: (N, q)
        "ROOT": (4, -2.0),
        "A": (2, 0.0),
        "B": (2, -2.0),
        "A1": (1, 1.0),
        "A2": (1, -1.0),
        "A1X": (1, 1.0),
        "B1": (1, -1.0),
        "BT": (1, -1.0),
        "B1X": (1, -1.0),
    }
    assert set(nodes) == set(expected)  # the duplicate A1 was merged
    for tag, (visits, value) in expected.items():
        assert (nodes[tag].visits, nodes[tag].value_sum) == (visits, value), tag
    assert nodes["B"].q == -1.0 and nodes["ROOT"].q == -0.5
    assert result.rollouts == 4 and result.trajectories == 4 and result.correct == 1
    assert nodes["A2"].terminal_reason == "code_error" and not nodes["A2"].exec_ok
    assert "ZeroDivisionError" in nodes["A2"].output
    assert nodes["BT"].terminal_reason == "truncated"
    assert (nodes["A1X"].answer, nodes["A1X"].correct) == ("4", True)
    assert (nodes["B1X"].answer, nodes["B1X"].correct) == ("5", False)
    assert nodes["A1"].output == "4" and nodes["A1"].kind == "final_code"
    assert len(backend.calls) == 5  # root, A, A1, B, B1
    # the answer step continues from the program's real output
    assert backend.calls[2][0].endswith("<end_of_code>\n<output>4<end_of_output>")


def test_ppm_augmented_initial_values(sandbox) -> None:
    script = {"ROOT": [A, B], "A": [A1], "A1": [A1X], "B": [B1], "B1": [B1X]}
    ppm = ScriptedPPM({"A": 0.2, "B": 0.6, "A1": 0.1, "B1": 0.5})
    mcts = MCTS(ReplayBackend(script), sandbox, config(), ppm=ppm, progress=False)
    [result] = mcts.search([SearchProblem("p1", QUESTION, gold="4")])
    nodes = by_tag(result.tree)
    # q(s)_0 = PPM score; B (0.6) is tried before A (0.2). Terminal answers are graded by
    # the gold answer during data generation (not scored by the PPM).
    # rollout 0: root → B → B1 → B1X (−1); rollout 1: root → A → A1 → A1X (+1).
    assert nodes["B"].value_sum == pytest.approx(0.6 - 1) and nodes["B"].visits == 1
    assert nodes["B1"].value_sum == pytest.approx(0.5 - 1)
    assert nodes["A"].value_sum == pytest.approx(0.2 + 1) and nodes["A"].q == pytest.approx(1.2)
    assert nodes["A1"].q == pytest.approx(1.1)
    assert nodes["ROOT"].visits == 2 and nodes["ROOT"].value_sum == pytest.approx(0.0)
    assert nodes["A"].ppm_score == 0.2 and nodes["A1X"].ppm_score is None
    assert [node.rollout for node in (nodes["B"], nodes["B1"], nodes["A1"])] == [0, 0, 1]
    assert len(ppm.calls) == 3  # one PPM batch per expansion that made open nodes


def test_test_time_answers_are_scored_by_the_ppm(sandbox) -> None:
    script = {"ROOT": [A], "A": [A1], "A1": [A1X]}
    ppm = ScriptedPPM({"A": 0.2, "A1": 0.1, "A1X": 0.9})
    mcts = MCTS(ReplayBackend(script), sandbox, config(), ppm=ppm, test_time=True, progress=False)
    [result] = mcts.search([SearchProblem("p1", QUESTION)])
    nodes = by_tag(result.tree)
    assert nodes["A1X"].reward == 0.9 and nodes["A1X"].correct is None
    assert nodes["A"].value_sum == pytest.approx(0.2 + 0.9)


def test_error_threshold_and_recovery(sandbox) -> None:
    bad = "<code>\n# [E1] fails\nx = 1 / 0\n<end_of_step>"
    bad_again = "\n\n# [E2] fails again\nz = undefined_name\n<end_of_step>"
    recover = "\n\n# [R] fine\nx = 4\n<end_of_step>"
    spin = "\n\n# [S] never ends\nwhile True:\n    pass\n<end_of_step>"
    final = "\n\n# [RF] print\nprint(x + 2)\n<end_of_code>"
    answer = "\n<answer>[RX] \\boxed{6}<end_of_answer>"
    script = {"ROOT": [bad], "E1": [bad_again, recover, spin], "R": [final], "RF": [answer]}
    mcts = MCTS(ReplayBackend(script), sandbox, config(error_threshold=2), progress=False)
    [result] = mcts.search([SearchProblem("p1", QUESTION, gold="6")])
    nodes = by_tag(result.tree)
    assert (nodes["E1"].consecutive_errors, nodes["E1"].terminal) == (1, False)
    assert (nodes["E2"].consecutive_errors, nodes["E2"].terminal_reason) == (2, "code_error")
    assert (nodes["R"].consecutive_errors, nodes["R"].exec_ok, nodes["R"].terminal) == (
        0,
        True,
        False,
    )
    # a candidate that hangs the sandbox is one failed candidate, not a failed batch
    assert nodes["S"].terminal_reason == "code_error" and "timeout" in nodes["S"].output
    # the failed step is left out of later programs: x = 4, so x + 2 prints 6
    assert nodes["RF"].output == "6" and nodes["RX"].correct is True


def test_max_depth_makes_a_terminal(sandbox) -> None:
    step1 = "<code>\n# [D1]\nx = 1\n<end_of_step>"
    step2 = "\n\n# [D2]\nx = 2\n<end_of_step>"
    mcts = MCTS(
        ReplayBackend({"ROOT": [step1], "D1": [step2]}),
        sandbox,
        config(max_depth=2),
        progress=False,
    )
    [result] = mcts.search([SearchProblem("p1", QUESTION, gold="2")])
    nodes = by_tag(result.tree)
    assert nodes["D2"].terminal_reason == "max_depth" and nodes["D2"].depth == 2
    assert nodes["D1"].value_sum == -1.0 and result.rollouts == 1


def test_malformed_steps_end_the_branch(sandbox) -> None:
    no_code_tag = "# [M1] first step without <code>\nx = 1\n<end_of_step>"
    answer_too_early = "<answer>[M2] \\boxed{4}<end_of_answer>"
    mcts = MCTS(
        ReplayBackend({"ROOT": [no_code_tag, answer_too_early]}), sandbox, config(), progress=False
    )
    [result] = mcts.search([SearchProblem("p1", QUESTION, gold="4")])
    reasons = sorted(node.terminal_reason for node in list(result.tree)[1:])
    assert reasons == ["malformed", "malformed"]


def test_one_generate_call_per_step_for_many_trees(sandbox) -> None:
    backend = ReplayBackend(SCRIPT)
    mcts = MCTS(backend, sandbox, config(), progress=False)
    problems = [SearchProblem(f"p{i}", QUESTION, gold="4") for i in range(3)]
    results = mcts.search(problems)
    assert len(backend.calls) == 5 and all(len(prompts) == 3 for prompts in backend.calls)
    assert mcts.stats.sandbox_calls == 3  # expansions that made code steps: root, A, B
    assert [r.tree.root.visits for r in results] == [4, 4, 4]


def test_missing_gold_is_a_clear_error(sandbox) -> None:
    mcts = MCTS(ReplayBackend(SCRIPT), sandbox, config(), progress=False)
    with pytest.raises(MissingGoldError, match="'toy-17'"):
        mcts.search([SearchProblem("toy-17", QUESTION)])


def test_records_have_one_row_per_node(sandbox) -> None:
    mcts = MCTS(ReplayBackend(SCRIPT), sandbox, config(), progress=False)
    [result] = mcts.search([SearchProblem("p1", QUESTION, gold="4")])
    table = trees_to_table([result.tree])
    assert table.num_rows == len(result.tree) == 9
    rows = {row["node_id"]: row for row in table.to_pylist()}
    assert rows[0]["parent_id"] == -1 and rows[0]["kind"] == "root"
    assert [rows[i]["parent_id"] for i in (1, 2, 3, 4)] == [0, 0, 1, 1]
    assert rows[5]["correct"] is True and rows[5]["q"] == 1.0 and rows[5]["answer"] == "4"


def test_a_program_differing_only_in_comments_is_not_run_again(sandbox) -> None:
    c = "<code>\n# Step 1: [C] two, said otherwise\nx = 2\n<end_of_step>"
    c1 = "\n\n# Print it [C1]\nprint(x + 2)\n<end_of_code>"
    c1x = "\n<answer>[C1X] The answer is \\boxed{4}.<end_of_answer>"
    script = {"ROOT": [A, c], "A": [A1], "C": [c1], "A1": [A1X], "C1": [c1x]}
    mcts = MCTS(ReplayBackend(script), sandbox, config(rollouts=4, candidates=2), progress=False)
    [result] = mcts.search([SearchProblem("p1", QUESTION, gold="4")])
    nodes = by_tag(result.tree)
    # x = 2 (A, C), then x = 2; print(x + 2) (A1, C1): two programs run, two reused
    assert (mcts.stats.programs_run, mcts.stats.programs_reused) == (2, 2)
    assert nodes["A1"].output == nodes["C1"].output == "4"
    assert nodes["A1X"].correct and nodes["C1X"].correct
