"""The evolve section of profiles, the quick size, and how a round finds its models."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import ValidationError

from rstar.config import (
    EvolveConfig,
    ProblemsConfig,
    Profile,
    ProfileError,
    RoundConfig,
    load_profile,
)
from rstar.evolve.round_models import RoundNotReadyError, round_models
from rstar.evolve.round_problems import source_problems
from rstar.evolve.stages import prepare_round
from rstar.settings import Settings
from rstar.store import Catalog, RunLayout, StoreLayout
from rstar.toy.world import problem_pool
from rstar.tracking import POLICY_MODEL, PPM_MODEL, promote, register_checkpoint, start_run
from tests.conftest import shipped_rows


def test_defaults_are_the_papers_rounds(tmp_path):
    prof = load_profile(_profile(tmp_path))
    searches = [(prof.round_search(n), prof.round_search(n, extra=1)) for n in range(1, 5)]
    assert [(s.rollouts, s.error_threshold, x.rollouts) for s, x in searches] == [
        (8, 2, 16),
        (16, 1, 16),
        (16, 1, 16),
        (16, 1, 64),
    ]
    assert [prof.evolve.round(n).values for n in range(1, 5)] == ["terminal"] * 2 + ["ppm"] * 2


def test_a_round_lays_its_search_over_the_profiles(tmp_path):
    rounds = {
        1: {"search": {"rollouts": 3}, "extra": {"rollouts": 5, "temperature": 0.5}},
        2: {"extra": None},
        3: {"values": "ppm"},
        4: {
            "values": "ppm",
            "search": {"candidates": 2},
            "escalate": [{"rollouts": 64}, {"rollouts": 128, "temperature": 1.0}],
        },
    }
    search = {"rollouts": 7, "candidates": 6, "temperature": 0.9}
    prof = load_profile(_profile(tmp_path, search=search, evolve={"rounds": rounds}))
    one, extra = prof.round_search(1), prof.round_search(1, extra=1)
    assert (one.rollouts, one.candidates, one.temperature) == (3, 6, 0.9)
    assert (extra.rollouts, extra.candidates, extra.temperature) == (5, 6, 0.5)
    assert prof.round_search(3).rollouts == 7 and prof.round_search(4).candidates == 2
    with pytest.raises(ValueError, match="round 2 has 0 extra searches, not 1"):
        prof.round_search(2, extra=1)
    # round 4: the default extra search (16 rollouts), then the two escalation stages
    escalation = [prof.round_search(4, extra=n) for n in (1, 2, 3)]
    assert [(s.rollouts, s.candidates, s.temperature) for s in escalation] == [
        (16, 2, 0.9),
        (64, 2, 0.9),
        (128, 2, 1.0),
    ]
    assert [prof.evolve.round(n).extra_passes for n in (1, 2, 3, 4)] == [1, 0, 1, 3]
    no_extra = {**rounds, 4: {"extra": None, "escalate": [{"rollouts": 64}]}}
    with pytest.raises(ProfileError, match="escalate follows the extra search"):
        load_profile(_profile(tmp_path / "no-extra", evolve={"rounds": no_extra}))
    bad_stage = {**rounds, 4: {"escalate": [{"rollouts": 0}]}}
    with pytest.raises(ProfileError, match=r"evolve.rounds.4.escalate.0: rollouts"):
        load_profile(_profile(tmp_path / "bad-stage", evolve={"rounds": bad_stage}))
    bad = {**rounds, 2: {"search": {"rolouts": 4}}}
    with pytest.raises(ProfileError, match=r"\['rolouts'\] are not search settings"):
        load_profile(_profile(tmp_path / "x", evolve={"rounds": bad}))
    worse = {**rounds, 2: {"search": {"rollouts": 0}}}
    with pytest.raises(ProfileError, match=r"evolve.rounds.2.search: .*rollouts"):
        load_profile(_profile(tmp_path / "y", evolve={"rounds": worse}))


def test_a_profile_of_the_earlier_layout_says_where_each_key_moved(tmp_path):
    old = {
        "evolve": {
            "rounds": {1: {"rollouts": 4, "extra_rollouts": 8, "error_threshold": 2}},
            "search_threads": 2,
            "evaluation": {"greedy_per_level": 40},
            "experiment": "evolve",
        },
        "train": {"policy": {"num_threads": 2}},
        "quick": {"eval": {"num_threads": 1}},
    }
    with pytest.raises(ProfileError) as raised:
        load_profile(_profile(tmp_path, **old))
    message = str(raised.value)
    for moved in (
        "`evolve.rounds.1.rollouts` is now `evolve.rounds.1.search.rollouts`",
        "`evolve.rounds.1.extra_rollouts` is now `evolve.rounds.1.extra.rollouts",
        "`evolve.rounds.1.error_threshold` is now `evolve.rounds.1.search.error_threshold`",
        "`evolve.search_threads` is now `threads`",
        "`evolve.evaluation` is now `eval`",
        "`evolve.evaluation.greedy_per_level` is now `eval.toy_per_level`",
        "`evolve.experiment` is now `tracking.experiment`",
        "`train.policy.num_threads` is now `threads`",
        "`quick.eval.num_threads` is now `quick.threads`",
    ):
        assert moved in message


def _fields(model: type, prefix: str = "") -> list[tuple[str, object]]:
    """Every field of a settings class and of the settings classes it holds."""
    found = []
    for name, info in model.model_fields.items():
        found.append((f"{prefix}{name}", info))
        kinds = [info.annotation, *getattr(info.annotation, "__args__", ())]
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, Settings):
                found += _fields(kind, f"{prefix}{name}.")
    return found


def test_every_profile_setting_has_a_description():
    missing = [name for name, info in _fields(Profile) if not info.description]
    assert missing == []
    names = [name for name, _ in _fields(Profile)]
    assert "evolve.rounds" in names and "toy.bootstrap.hidden_size" in names
    assert "eval.toy_search_per_level" in names and "threads" in names


def test_round_one_cannot_search_with_a_ppm_and_all_four_rounds_are_needed():
    with pytest.raises(ValueError, match="round 1 has no PPM"):
        EvolveConfig(rounds={**EvolveConfig().rounds, 1: RoundConfig(values="ppm")})
    with pytest.raises(ValueError, match=r"rounds 1-4, got \[1, 2\]"):
        EvolveConfig(rounds={1: RoundConfig(), 2: RoundConfig()})


def test_quick_lays_the_quick_mapping_over_the_profile(tmp_path):
    full, quick = load_profile("tiny"), load_profile("tiny", quick=True)
    assert full.evolve.problems.level_counts() == {1: 50, 2: 150, 3: 500, 4: 300}
    # counts per level are replaced whole, not merged level by level
    assert quick.evolve.problems.level_counts() == {1: 6, 2: 6}
    assert quick.toy.bootstrap.problems_per_level == {1: 3000}
    # merged key by key: what quick does not name stays as the full profile has it
    assert quick.evolve.concurrency == full.evolve.concurrency
    assert quick.train.policy.learning_rate == full.train.policy.learning_rate
    assert quick.train.policy.epochs == 2 and full.train.policy.epochs == 3
    assert quick.eval.benchmarks == full.eval.benchmarks and quick.eval.toy_per_level == 4
    assert quick.evolve.round(4).extra == {"rollouts": 8}
    assert quick.evolve.round(4).escalate == full.evolve.round(4).escalate
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
    base.mkdir(parents=True)
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


def test_search_with_champion_takes_the_champion_not_the_last_round(tmp_path):
    tracking_config = {"copy_checkpoints": False}
    profiles = {
        how: load_profile(
            _profile(tmp_path / how, evolve={"search_with": how}, tracking=tracking_config)
        )
        for how in ("round", "champion")
    }
    for prof in profiles.values():
        tracking = prof.resolved_tracking()
        for round, score in ((1, 0.5), (2, 0.4)):  # round 2 scores lower: no promotion
            checkpoint = prof.run_dir / f"round-{round}-models"
            checkpoint.mkdir()
            with start_run(tracking, f"round-{round}"):
                versions = {
                    name: register_checkpoint(tracking, name, checkpoint, round).version
                    for name in (POLICY_MODEL, PPM_MODEL)
                }
            promote(tracking, versions, score, "eval/toy-val/greedy/accuracy")
        with Catalog(StoreLayout.for_run(prof.run_dir)) as catalog:
            catalog.start_round(2)
            catalog.finish_round(2)
    by_round, by_champion = (round_models(profiles[how], 3) for how in ("round", "champion"))
    # the models are named by registry version, resolved where a shard runs
    assert by_round.search_policy.path == f"models:/{POLICY_MODEL}/2"
    assert (by_champion.search_policy.path, by_champion.ppm.path) == (
        f"models:/{POLICY_MODEL}/1",
        f"models:/{PPM_MODEL}/1",
    )
    uri = profiles["champion"].resolved_tracking().tracking_uri
    local = by_champion.resolved(uri)
    assert Path(local.search_policy.path).name == "round-1-models"
    assert Path(local.ppm.path).name == "round-1-models"
    assert Path(local.previous_policy).name == "round-1-models"
    assert local.base == by_champion.base
    assert Path(by_round.resolved(uri).search_policy.path).name == "round-2-models"


def test_explicit_checkpoints_need_no_previous_round(tmp_path):
    prof = load_profile(_profile(tmp_path))
    models = round_models(prof, 3, policy="/ckpt/policy", ppm="/ckpt/ppm")
    assert models.search_policy.path == "/ckpt/policy"
    assert (models.ppm.backend, models.ppm.path) == ("transformers", "/ckpt/ppm")
    assert models.previous_policy == "/ckpt/policy"
    # round 2 is terminal-guided: no PPM even when one is given
    assert round_models(prof, 2, policy="/ckpt/policy", ppm="/ckpt/ppm").ppm is None


def test_a_round_from_problem_files_leaves_out_bad_rows_and_benchmark_questions(tmp_path):
    math500, gsm8k = shipped_rows("math500"), shipped_rows("gsm8k")
    # gsm8k #0 with a new first sentence: its long tail overlaps in 13-grams
    paraphrase = "Consider this farm story. " + gsm8k[0]["question"]
    lines = [
        {"problem": "What is $2 + 3$?", "solution": "It is $\\boxed{5}$."},
        {"problem": math500[0]["question"], "solution": "\\boxed{x}"},  # exact copy
        {"problem": paraphrase, "solution": "\\boxed{18}"},
        {"problem": " What is  $2 + 3$?\n", "solution": "\\boxed{5}"},  # same, other spaces
        {"problem": "What is $7 - 4$?", "solution": "no final answer here"},
        {"problem": "What is $6 / 2$?", "solution": "So $\\boxed{3}$."},
    ]
    data = tmp_path / "numina.jsonl"
    data.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json\n")
    path = _profile(
        tmp_path,
        evolve={"problems": {"source": "files", "files": [str(data)]}, "shard_size": 1},
        eval={"benchmarks": ["math500", "gsm8k"]},
    )
    prof = load_profile(path)
    prepared = prepare_round(prof, 1, round_models(prof, 1), progress=False)
    assert prepared == {
        "problems": 2,
        "shards": 2,
        "rejected": 5,
        "contaminated": 2,
        "synthetic": 0,
    }
    with Catalog(StoreLayout.for_run(tmp_path), read_only=True) as catalog:
        kept = catalog.sql("SELECT question, answer FROM problems ORDER BY answer").to_pylist()
        rejects = catalog.sql("SELECT source, line, reason FROM rejects ORDER BY line").to_pylist()
    assert kept == [
        {"question": "What is $6 / 2$?", "answer": "3"},
        {"question": "What is $2 + 3$?", "answer": "5"},
    ]
    assert [(r["source"], r["line"]) for r in rejects] == [("numina", n) for n in (2, 3, 4, 5, 7)]
    reasons = [r["reason"] for r in rejects]
    assert reasons[0] == "contaminated: exact match with math500 #0"
    assert reasons[1] == "contaminated: 13-gram overlap with gsm8k #0"
    assert reasons[2].startswith("duplicate: of numina row 0")
    assert reasons[3].startswith("no final answer:")
    assert reasons[4].startswith("invalid JSON:")
    assert pq.read_table(RunLayout(tmp_path).round(1).problems).num_rows == 2


def test_decontamination_can_be_turned_off(tmp_path):
    math500 = shipped_rows("math500")
    data = tmp_path / "p.json"
    data.write_text(json.dumps([{"question": math500[0]["question"], "answer": "1"}]))
    problems = {"source": "files", "files": [str(data)], "decontaminate": []}
    prof = load_profile(_profile(tmp_path, evolve={"problems": problems}))
    assert prof.decontamination_benchmarks() == ()
    assert source_problems(prof, progress=False).problems.num_rows == 1


def test_rounds_evaluate_on_and_decontaminate_against_every_shipped_benchmark(tmp_path):
    names = [
        "math", "math500", "aime2024", "amc23", "gsm8k",
        "olympiadbench", "collegemath", "gaokao2023en", "omni_math",
    ]  # fmt: skip
    copies = [shipped_rows(name)[3]["question"] for name in names]
    data = tmp_path / "pool.json"
    data.write_text(json.dumps([{"question": q, "answer": "1"} for q in [*copies, "New 1+1?"]]))
    problems = {"source": "files", "files": [str(data)]}
    evaluation = {"benchmarks": ["toy", *names]}
    prof = load_profile(_profile(tmp_path, evolve={"problems": problems}, eval=evaluation))
    assert prof.decontamination_benchmarks() == ("toy", *names)
    loaded = source_problems(prof, progress=False)
    assert loaded.problems["question"].to_pylist() == ["New 1+1?"]
    assert loaded.report.rejected == {"contaminated": 9}


def test_each_round_new_gives_every_round_its_own_slice_of_the_toy_pool(tmp_path):
    toy = {"bootstrap": {"problems_per_level": {1: 4}}}
    problems = {"toy_per_level": {1: 3, 2: 2}}
    same = load_profile(_profile(tmp_path / "same", toy=toy, evolve={"problems": problems}))
    new = load_profile(
        _profile(tmp_path / "new", toy=toy, evolve={"problems": problems | {"each_round": "new"}})
    )
    pool = {lv: problem_pool(lv, 10, "train", new.toy.world) for lv in (1, 2)}

    def ids(prof, round):
        return set(source_problems(prof, round, progress=False).problems["problem_id"].to_pylist())

    # level 1 starts after the bootstrap's 4 problems, level 2 at the start of its pool
    assert ids(same, 1) == ids(same, 3) == {p.id for p in pool[1][4:7] + pool[2][0:2]}
    assert ids(new, 1) == ids(same, 1)
    assert ids(new, 2) == {p.id for p in pool[1][7:10] + pool[2][2:4]}


def test_each_round_new_slices_problem_files_by_limit(tmp_path):
    data = tmp_path / "pool.json"
    rows = [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(5)]
    data.write_text(json.dumps(rows))
    problems = {"source": "files", "files": [str(data)], "limit": 2, "each_round": "new"}
    prof = load_profile(_profile(tmp_path, evolve={"problems": problems}))
    rounds = [source_problems(prof, r, progress=False).problems for r in (1, 2, 3)]
    every = sorted(rounds[0]["problem_id"].to_pylist() + rounds[1]["problem_id"].to_pylist())
    assert [len(t) for t in rounds] == [2, 2, 1]
    assert len(set(every)) == 4 and rounds[2]["problem_id"][0].as_py() not in every
    with pytest.raises(ValueError, match="round 4 searches problems 7-8 of the problem files"):
        source_problems(prof, 4, progress=False)
    with pytest.raises(ValidationError, match=r"each_round is 'new' but problems\.limit"):
        ProblemsConfig(source="files", files=("x",), each_round="new")


def test_the_tiny_profile_serves_every_rounds_ppm_with_ctranslate2():
    prof = load_profile("tiny", quick=True)
    entry = prof.ppm_at("/runs/round-3/ppm")
    assert (entry.backend, entry.path, entry.create_with) == (
        "ctranslate2",
        "/runs/round-3/ppm",
        None,
    )
