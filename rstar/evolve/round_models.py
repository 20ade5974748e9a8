"""Which models a round uses, found by the round itself (docs/method.md §4).

Round 1 searches with the bootstrap policy: the profile's ``teacher`` when it has one (a
large coder model behind an OpenAI-compatible server), else the profile's ``policy`` (the
toy base model). Round N > 1 searches with SLM-r(N-1), the policy registered in MLflow
with alias ``round-(N-1)``, and, when the round is PPM-augmented, PPM-r(N-1) (with
``evolve.search_with: champion``: the models aliased ``champion`` instead). A round
refuses to start while round N-1 has not completed, unless its checkpoints are given
explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from rstar.config import ModelConfig, Profile
from rstar.store import StoreLayout, finished_rounds
from rstar.tracking import (
    CHAMPION,
    POLICY_MODEL,
    PPM_MODEL,
    resolve_checkpoint,
    round_alias,
    version_uri,
)


class RoundNotReadyError(RuntimeError):
    """Round N was asked for before round N-1 completed; the message says what to run."""


@dataclass(frozen=True)
class RoundModels:
    """The round's searching policy, its PPM (None: terminal-guided), and SFT starts."""

    search_policy: ModelConfig
    ppm: ModelConfig | None
    base: str  # the base model SFT may start from
    previous_policy: str | None  # SLM-r(N-1), None in round 1

    def resolved(self, tracking_uri: str) -> RoundModels:
        """The same models with registry references (``models:/policy/3``) replaced by their
        checkpoint directories, resolved where this runs (a shard on any node)."""

        def local(entry: ModelConfig | None) -> ModelConfig | None:
            return entry and entry.at(resolve_checkpoint(entry.path, tracking_uri))

        previous = self.previous_policy
        return RoundModels(
            search_policy=local(self.search_policy),
            ppm=local(self.ppm),
            base=self.base,
            previous_policy=previous and resolve_checkpoint(previous, tracking_uri),
        )

    def as_params(self) -> dict[str, str | None]:
        return {
            "search_policy": self.search_policy.path,
            "search_ppm": self.ppm.path if self.ppm else None,
            "base_model": self.base,
            "previous_policy": self.previous_policy,
        }


def round_models(
    profile: Profile,
    round: int,
    *,
    policy: str | None = None,
    ppm: str | None = None,
) -> RoundModels:
    """The models of ``round``; ``policy`` / ``ppm`` checkpoints override the registry."""
    settings = profile.evolve.round(round)
    base = str(profile.policy.local_path())
    if round == 1:
        searcher = profile.teacher or profile.policy
        if policy:
            searcher = profile.policy.at(policy)
        return RoundModels(searcher, None, base, None)
    needs_ppm = settings.values == "ppm"
    if policy is None or (needs_ppm and ppm is None):
        _require_previous(profile, round)
        tracking = profile.resolved_tracking()
        alias = CHAMPION if profile.evolve.search_with == "champion" else round_alias(round - 1)
        policy = policy or version_uri(tracking, POLICY_MODEL, alias)
        if needs_ppm and ppm is None:
            ppm = version_uri(tracking, PPM_MODEL, alias)
    searcher = profile.policy.at(policy)
    scorer = profile.ppm_at(ppm) if needs_ppm and ppm else None
    return RoundModels(searcher, scorer, base, policy)


def _require_previous(profile: Profile, round: int) -> None:
    previous = round - 1
    if previous not in finished_rounds(StoreLayout.for_run(profile.run_dir)):
        raise RoundNotReadyError(
            f"round {round} needs round {previous} to have completed in {profile.run_dir}, "
            f"and it has not. Run round {previous} first (`prefect deployment run "
            f"evolve/round-{previous}`), or give round {round} its checkpoints explicitly "
            "(flow parameters `policy` and `ppm`)."
        )
