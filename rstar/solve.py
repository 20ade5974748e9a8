"""Solve one question with test-time MCTS: the engine behind ``rstar solve``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rstar.config import ModelConfig, Profile
from rstar.search import MCTS, Node, SearchProblem, Tree
from rstar.search.answer import best_trajectory, majority_vote
from rstar.search.session import search_session


@dataclass
class Solution:
    """The searched tree, the trajectory chosen for the answer, and the answer."""

    tree: Tree
    chosen: Node | None

    @property
    def answer(self) -> str | None:
        return self.chosen.answer if self.chosen is not None else None


def solve(
    question: str,
    profile: Profile,
    rollouts: int | None = None,
    policy: ModelConfig | None = None,
    ppm: ModelConfig | None = None,
    vote: bool = False,
    progress: bool = True,
) -> Solution:
    """MCTS over ``question`` without a gold answer; the PPM (if any) scores the answers.

    The PPM is ``ppm``, else the profile's when its checkpoint exists (a base policy can
    be tried before any round has trained a PPM).

    The chosen trajectory is the best-scored one, or with ``vote`` the best of the
    answer with the most score-weighted votes.
    """
    policy_entry = policy or profile.policy
    policy_entry.local_path()
    ppm_entry = ppm
    if ppm_entry is None and profile.ppm is not None and Path(profile.ppm.path).is_dir():
        ppm_entry = profile.ppm
    if ppm_entry is not None:
        ppm_entry.local_path()
    with search_session(
        policy_entry, ppm_entry, profile.sandbox, threads=profile.threads, progress=progress
    ) as session:
        mcts = MCTS(
            session.policy,
            session.sandbox,
            profile.search,
            ppm=session.ppm,
            test_time=True,
            progress=progress,
        )
        [result] = mcts.search([SearchProblem("question", question)], rollouts=rollouts)
    chosen = majority_vote(result.terminals) if vote else best_trajectory(result.terminals)
    return Solution(result.tree, chosen)
