"""Profiles: shipped ones validate, bad ones fail with messages that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from rstar.cli import app
from rstar.config import ProblemsConfig, ProfileError, load_profile, profile_names


def test_shipped_profiles_validate() -> None:
    assert {"tiny", "qwen2.5-math-7b"} <= set(profile_names())
    tiny = load_profile("tiny", run_dir="/tmp/r")
    assert tiny.policy.backend == "ctranslate2"
    assert tiny.policy.path == "/tmp/r/toy/base-policy"
    qwen = load_profile("qwen2.5-math-7b")
    assert qwen.policy.backend == "vllm"
    assert (qwen.search.rollouts, qwen.search.candidates, qwen.search.max_depth) == (16, 12, 16)
    assert qwen.search.c_puct == 2.0


def test_run_dir_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSTAR_RUN_DIR", "/data/rstar")
    assert load_profile("tiny").policy.path == "/data/rstar/toy/base-policy"


def test_missing_model_dir_names_path_and_command(tmp_path: Path) -> None:
    tiny = load_profile("tiny", run_dir=tmp_path)
    with pytest.raises(ProfileError) as err:
        tiny.policy.local_path()
    message = str(err.value)
    assert str(tmp_path / "toy" / "base-policy") in message
    assert "rstar toy bootstrap" in message


def test_existing_model_dir_and_hub_id(tmp_path: Path) -> None:
    (tmp_path / "toy" / "base-policy").mkdir(parents=True)
    assert load_profile("tiny", run_dir=tmp_path).policy.local_path().is_dir()
    assert str(load_profile("qwen2.5-math-7b").policy.local_path()) == "Qwen/Qwen2.5-Math-7B"


def test_unknown_backend_lists_known(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy:\n  backend: tgi\n  path: /x\n")
    known = "transformers, ctranslate2, vllm, openai"
    with pytest.raises(ProfileError, match=rf"bad.yaml: policy.backend.*{known}"):
        load_profile(bad)


def test_unknown_profile_and_unknown_field(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"known profiles: .*tiny"):
        load_profile("nope")
    bad = tmp_path / "typo.yaml"
    bad.write_text("policy:\n  path: /x\nserach:\n  rollouts: 3\n")
    with pytest.raises(ProfileError, match="serach"):
        load_profile(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("policy: [unclosed\n")
    with pytest.raises(ProfileError, match=r"broken\.yaml: not valid YAML"):
        load_profile(broken)


def test_cli_profile_commands() -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["profile", "tiny"])
    assert shown.exit_code == 0
    assert "backend: ctranslate2" in shown.output
    resolved = yaml.safe_load(shown.output.split("# the search of each round, resolved")[1])
    assert resolved["round 1"]["search"]["error_threshold"] == 2
    assert resolved["round 4"]["extra"]["rollouts"] == 8
    assert [stage["rollouts"] for stage in resolved["round 4"]["escalate"]] == [16]
    assert resolved["round 2"]["search"]["candidates"] == 4  # the profile's search: section
    missing = runner.invoke(app, ["profile", "nope"])
    assert missing.exit_code == 2
    assert "unknown profile" in missing.output


def test_toy_problems_per_level_one_count_or_a_count_per_level() -> None:
    same = ProblemsConfig(toy_levels=(2, 3), toy_per_level=5)
    assert same.level_counts() == {2: 5, 3: 5}
    frontier = ProblemsConfig(toy_per_level={4: 30, 2: 10})
    assert frontier.level_counts() == {2: 10, 4: 30}
    with pytest.raises(ValidationError, match="leave toy_levels out"):
        ProblemsConfig(toy_levels=(1,), toy_per_level={2: 10})
    with pytest.raises(ValidationError, match="every count must be >= 1"):
        ProblemsConfig(toy_per_level={2: 0})
