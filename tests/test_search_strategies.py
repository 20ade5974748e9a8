"""Test-time strategies and answer selection, on scripted candidates with the real sandbox."""

from __future__ import annotations

from rstar.config import SearchConfig
from rstar.search import Expander, SearchProblem
from rstar.search.answer import best_trajectory, grade_terminals, majority_vote
from rstar.search.beam import beam_search
from rstar.search.best_of_n import best_of_n
from rstar.search.greedy import greedy
from rstar.search.tree import Node
from tests.scripted import ReplayBackend, ScriptedPPM, last_tag


def step(tag: str, code: str, first: bool = False) -> str:
    return f"{'<code>' if first else ''}\n# [{tag}]\n{code}\n<end_of_step>"


def final(tag: str, expr: str) -> str:
    return f"\n# [{tag}]\nprint({expr})\n<end_of_code>"


def answer(tag: str, value: str) -> str:
    return f"\n<answer>[{tag}] \\boxed{{{value}}}<end_of_answer>"


CONFIG = SearchConfig(rollouts=4, candidates=2, error_threshold=1, max_depth=8)
QUESTION = "Six times seven?"


def leaf(answer_text: str, ppm: float | None, q: float = 0.0) -> Node:
    root = Node(node_id=0, parent=None, depth=0, rollout=-1)
    node = Node(node_id=1, parent=root, depth=1, rollout=0, terminal=True)
    node.terminal_reason, node.answer, node.ppm_score = "answer", answer_text, ppm
    node.visits, node.value_sum = 1, q
    return node


def test_best_trajectory_and_votes() -> None:
    ends = [leaf("42", 0.3), leaf("41", 0.9), leaf("42.0", 0.5), leaf("43", 0.1)]
    assert best_trajectory(ends) is ends[1]
    # unweighted: the group {42.0, 42} (2 votes) beats 41 and 43 (1 vote each); the group
    # answers with its best-scored trajectory
    assert majority_vote(ends, weighted=False).answer == "42.0"
    # weighted by (s+1)/2: 0.75 + 0.65 = 1.4 for the 42-group > 0.95 for 41
    assert majority_vote(ends, weighted=True).answer == "42.0"
    # top-2 only: 41 (0.9) and 42.0 (0.5) → one vote each; weighted, 41 wins
    assert majority_vote(ends, top_k=2).answer == "41"
    # without PPM scores the average Q ranks
    assert best_trajectory([leaf("1", None, q=-1.0), leaf("2", None, q=1.0)]).answer == "2"
    assert best_trajectory([]) is None and majority_vote([]) is None


def test_best_of_n_keeps_duplicate_samples_and_scores_answers(sandbox) -> None:
    same = step("S", "x = 6 * 7", first=True)
    script = {
        "ROOT": [same, same, step("T", "x = 41", first=True)],
        "S": [final("SF", "x")],
        "T": [final("TF", "x")],
        "SF": [answer("SA", "42")],
        "TF": [answer("TA", "41")],
    }
    ppm = ScriptedPPM({"SA": 0.8, "TA": 0.95})
    backend = ReplayBackend(script)
    [result] = best_of_n(
        Expander(backend, sandbox, CONFIG, ppm=ppm), [SearchProblem("p", QUESTION, "42")], n=3
    )
    answers = sorted(node.answer for node in result.terminals)
    assert answers == ["41", "42", "42"]  # the two identical samples stay two samples
    assert len(ppm.calls) == 1 and len(ppm.calls[0]) == 3  # only final answers are scored
    assert best_trajectory(result.terminals).answer == "41"
    assert majority_vote(result.terminals, weighted=False).answer == "42"
    assert all(node.correct is None for node in result.terminals)  # gold never seen
    grade_terminals(result.terminals, "42")
    assert sorted(node.correct for node in result.terminals) == [False, True, True]
    assert len(backend.calls) == 3  # root, then one call per step for all branches


def test_greedy_decodes_at_temperature_zero(sandbox) -> None:
    seen = []

    class Recorder(ReplayBackend):
        def generate(self, prompts, params):
            seen.append(params.temperature)
            return super().generate(prompts, params)

    script = {
        "ROOT": [step("G", "x = 42", first=True)],
        "G": [final("GF", "x")],
        "GF": [answer("GA", "42")],
    }
    [result] = greedy(Expander(Recorder(script), sandbox, CONFIG), [SearchProblem("p", QUESTION)])
    assert seen == [0.0, 0.0, 0.0]
    assert [n.answer for n in result.terminals] == ["42"]


def test_beam_search_keeps_the_best_scored_steps(sandbox) -> None:
    script = {
        "ROOT": [
            step("A", "x = 6", first=True),
            step("B", "x = 7", first=True),
            step("C", "x = 1", first=True),
        ],
        "A": [final("AF", "x * 7")],
        "B": [final("BF", "x * 6")],
        "C": [final("CF", "x")],
        "AF": [answer("AA", "42")],
        "BF": [answer("BA", "42")],
        "CF": [answer("CA", "1")],
    }
    ppm = ScriptedPPM(
        {
            "A": 0.5,
            "B": 0.9,
            "C": -0.2,
            "AF": 0.1,
            "BF": 0.4,
            "CF": 0.0,
            "AA": 0.3,
            "BA": 0.7,
            "CA": 0.0,
        }
    )
    backend = ReplayBackend(script)
    expander = Expander(backend, sandbox, CONFIG, ppm=ppm)
    [result] = beam_search(expander, [SearchProblem("p", QUESTION)], beam_width=2, candidates=3)
    # C (−0.2) falls out of the beam, so its branch is never continued; the beam is
    # ordered by PPM score: B (0.9) before A (0.5), then BF (0.4) before AF (0.1)
    assert [[last_tag(p) for p in call] for call in backend.calls] == [
        ["ROOT"],
        ["B", "A"],
        ["BF", "AF"],
    ]
    assert sorted(n.answer for n in result.terminals) == ["42", "42"]
    assert best_trajectory(result.terminals).ppm_score == 0.7
