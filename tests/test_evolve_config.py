"""The evolve section of profiles, the quick size, and how a round finds its models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rstar.config import ProfileError, load_profile
from rstar.evolve.config import EvolveConfig, RoundConfig
from rstar.evolve.models import RoundNotReadyError, round_models
from rstar.store import Catalog, StoreLayout


def test_defaults_are_the_papers_rounds():
    rounds = EvolveConfig().rounds
    assert [(r.rollouts, r.values, r.extra_rollouts) for r in rounds.values()] == [
        (8, "terminal", 16),
        (16, "terminal", 16),
        (16, "ppm", 16),
        (16, "ppm", 64),
    ]
    assert rounds[1].error_threshold == 2 and rounds[2].error_threshold is None


def test_round_one_cannot_search_with_a_ppm_and_all_four_rounds_are_needed():
    with pytest.raises(ValueError, match="round 1 has no PPM"):
        EvolveConfig(rounds={**EvolveConfig().rounds, 1: RoundConfig(values="ppm")})
    with pytest.raises(ValueError, match=r"rounds 1-4, got \[1, 2\]"):
        EvolveConfig(rounds={1: RoundConfig(), 2: RoundConfig()})


def test_quick_lays_the_quick_mapping_over_the_profile(tmp_path):
    full, quick = load_profile("tiny"), load_profile("tiny", quick=True)
    assert full.evolve.problems.toy_per_level == 12 and quick.evolve.problems.toy_per_level == 6
    # merged key by key: what quick does not name stays as the full profile has it
    assert quick.evolve.concurrency == full.evolve.concurrency
    assert quick.train.policy.learning_rate == full.train.policy.learning_rate
    assert quick.train.policy.epochs == 2 and full.train.policy.epochs == 6
    assert str(quick.run_dir) == "runs/quick" and quick.policy.path == "runs/quick/toy/base-policy"
    # an explicit run directory still wins
    assert load_profile("tiny", tmp_path, quick=True).policy.path == f"{tmp_path}/toy/base-policy"


def test_a_profile_without_a_quick_size_says_so(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"policy": {"path": str(tmp_path)}}))
    with pytest.raises(ProfileError, match="has no `quick:` mapping"):
        load_profile(path, quick=True)


def _profile(tmp_path: Path, **extra) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    path = tmp_path / "p.yaml"
    path.write_text(
        yaml.safe_dump({"policy": {"path": str(base)}, "run_dir": str(tmp_path), **extra})
    )
    return path


def test_round_one_searches_with_the_teacher_when_there_is_one(tmp_path):
    path = _profile(
        tmp_path,
        teacher={"backend": "openai", "path": "big-coder", "base_url": "http://127.0.0.1:9/v1"},
    )
    models = round_models(load_profile(path), 1)
    assert (models.search_policy.backend, models.search_policy.path) == ("openai", "big-coder")
    assert models.ppm is None and models.previous_policy is None
    assert models.base == str(tmp_path / "base")


def test_round_n_refuses_until_round_n_minus_one_completed(tmp_path):
    prof = load_profile(_profile(tmp_path))
    with pytest.raises(RoundNotReadyError) as error:
        round_models(prof, 3)
    message = str(error.value)
    assert "round 3 needs round 2 to have completed" in message
    assert "prefect deployment run evolve/round-2" in message
    assert "`policy` and `ppm`" in message
    # started is not completed
    with Catalog(StoreLayout.for_run(tmp_path)) as catalog:
        catalog.start_round(2)
    with pytest.raises(RoundNotReadyError):
        round_models(prof, 3)


def test_explicit_checkpoints_need_no_previous_round(tmp_path):
    prof = load_profile(_profile(tmp_path))
    models = round_models(prof, 3, policy="/ckpt/policy", ppm="/ckpt/ppm")
    assert models.search_policy.path == "/ckpt/policy"
    assert (models.ppm.backend, models.ppm.path) == ("transformers", "/ckpt/ppm")
    assert models.previous_policy == "/ckpt/policy"
    # round 2 is terminal-guided: no PPM even when one is given
    assert round_models(prof, 2, policy="/ckpt/policy", ppm="/ckpt/ppm").ppm is None
