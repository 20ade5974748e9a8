"""A round's synthesis stage (rstar.evolve.round_synthesis) against a real HTTP teacher on
127.0.0.1 with scripted answers: seeds, shards, resume, the problems the round searches."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from http_stub import JSONHandler, start
from mlflow import MlflowClient

from rstar.config import Profile, load_profile
from rstar.evolve import round_synthesis
from rstar.evolve.report import synthesis_metrics
from rstar.evolve.round_models import RoundModels
from rstar.evolve.stages import open_round_run, prepare_round
from rstar.models import ModelConfig
from rstar.problems import problem_id
from rstar.problems.synthesis import outcome
from rstar.store import Catalog, RunLayout
from rstar.store.schema import PROBLEM_SCHEMA
from rstar.toy.world import problem_pool, split_of

WRITE, SOLVE = "WRITE:", "SOLVE:"
KEY = "sk-round-teacher-42"


class Teacher(JSONHandler):
    """Writes "<seed> Then twice as many?" and answers it 7 (10 of 10) when its seed has an
    even length, else 7 / 8 alternating (5 of 10: kept at min_agree 3, not at 6)."""

    def do_POST(self) -> None:
        body = self.body()
        prompt = body["prompt"]
        self.server.requests.append(prompt)
        self.server.keys.add(self.headers.get("Authorization"))
        if prompt.startswith(WRITE):
            texts = [prompt.removeprefix(WRITE) + " Then twice as many?"] * body["n"]
        else:
            seed = prompt.removeprefix(SOLVE).removesuffix(" Then twice as many?")
            answers = ["7"] * 10 if len(seed) % 2 == 0 else ["7", "8"] * 5
            texts = [f"so \\boxed{{{a}}}" for a in answers[: body["n"]]]
        choices = [{"index": i, "text": t, "finish_reason": "stop"} for i, t in enumerate(texts)]
        self.reply({"choices": choices, "usage": {"completion_tokens": 3}})


@pytest.fixture
def teacher():
    httpd = start(Teacher)
    httpd.requests, httpd.keys = [], set()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def profile(tmp_path, teacher, min_agree: int = 3) -> Profile:
    data = load_profile("tiny", quick=True, run_dir=tmp_path / "run").model_dump()
    data["evolve"]["problems"].pop("toy_levels")  # its toy_per_level names the levels
    data["evolve"]["synthesis"] = {
        "rounds": [1],
        "teacher": {
            "backend": "openai",
            "path": "toy-teacher",
            "base_url": f"http://127.0.0.1:{teacher.server_address[1]}/v1",
            "api_key_env": "ROUND_TEACHER_KEY",
            "extra": {"api": "completions", "max_retries": 0},
        },
        "toy_seeds_per_level": {1: 4, 2: 4},
        "filter": {
            "problem_prompt": WRITE + "{question}",
            "solve_prompt": SOLVE + "{question}",
            "min_agree": min_agree,
        },
        "shard_size": 3,
    }
    return Profile.model_validate(data)


def test_a_round_searches_the_problems_its_teacher_wrote(tmp_path, teacher, monkeypatch):
    monkeypatch.setenv("ROUND_TEACHER_KEY", KEY)
    prof = profile(tmp_path, teacher)
    world = prof.toy.world
    seeds = [p.question for lv in (1, 2) for p in problem_pool(lv, 4, "train", world)]
    # round 1's seeds: the first 4 train problems of levels 1 and 2, sorted by id
    assert round_synthesis.prepare_synthesis(prof, 1) == {"seeds": 8, "shards": 3}
    table = pq.read_table(round_synthesis.seeds_path(prof, 1))
    assert table["problem_id"].to_pylist() == sorted(problem_id(q) for q in seeds)
    done = [round_synthesis.synthesize_shard(prof, 1, s, progress=False) for s in range(3)]
    assert [d["judged"] for d in done] == [3, 3, 2]
    assert sum(d["requests"] for d in done) == 16  # one write and one solve per seed
    assert teacher.keys == {f"Bearer {KEY}"}
    # a retried shard asks for nothing again
    calls = len(teacher.requests)
    assert round_synthesis.synthesize_shard(prof, 1, 0, progress=False)["judged"] == 0
    assert len(teacher.requests) == calls

    written = {s + " Then twice as many?" for s in seeds}
    agreeing = {q for q in written if len(q.removesuffix(" Then twice as many?")) % 2 == 0}
    held_out = {q for q in written if split_of(q, world.test_share, world.val_share) != "train"}
    models = round_synthesis_models(prof)
    prepared = prepare_round(prof, 1, models, progress=False)
    problems = pq.read_table(RunLayout(prof.run_dir).round(1).problems).to_pylist()
    synthetic = {p["question"]: p for p in problems if p["source"] == "synthetic"}
    assert set(synthetic) == written - held_out  # 3 of 10 agree for every one
    assert prepared["synthetic"] == len(synthetic)
    assert prepared["contaminated"] == len(held_out)
    assert all(p["answer"] == "7" and p["level"] is None for p in synthetic.values())
    assert [p["problem_id"] for p in problems] == sorted(p["problem_id"] for p in problems)
    with Catalog(RunLayout(prof.run_dir).store) as catalog:  # each one's seed, in SQL
        rows = catalog.sql("SELECT problem_id, seed_problem_id, votes FROM synthetic_problems")
    assert sorted(rows.to_pylist(), key=lambda r: r["problem_id"]) == sorted(
        (
            {
                "problem_id": synthetic[s + " Then twice as many?"]["problem_id"],
                "seed_problem_id": problem_id(s),
                "votes": 10 if len(s) % 2 == 0 else 5,
            }
            for s in seeds
            if s + " Then twice as many?" in synthetic
        ),
        key=lambda r: r["problem_id"],
    )
    votes = {5: 8 - len(agreeing), 10: len(agreeing)}
    assert synthesis_metrics(RunLayout(prof.run_dir).store, 1) == {
        "synthesis/candidates": 8,
        "synthesis/kept": 8,
        "synthesis/kept_share": 1.0,
    } | {f"synthesis/agree_{k}": n for k, n in votes.items() if n}
    records = round_synthesis.round_records(RunLayout(prof.run_dir).store, 1).to_pylist()
    assert {outcome(r) for r in records} == {"kept"}
    plot = round_synthesis.synthesis_plot(RunLayout(prof.run_dir).store, 1, tmp_path / "s.png")
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert (
        round_synthesis.synthesis_plot(RunLayout(prof.run_dir).store, 2, tmp_path / "2.png") is None
    )


def test_min_agree_decides_what_the_round_gets(tmp_path, teacher, monkeypatch):
    monkeypatch.setenv("ROUND_TEACHER_KEY", KEY)
    prof = profile(tmp_path, teacher, min_agree=6)
    round_synthesis.prepare_synthesis(prof, 1)
    for shard in range(3):
        round_synthesis.synthesize_shard(prof, 1, shard, progress=False)
    kept, _ = round_synthesis.synthesized_problems(prof, 1, PROBLEM_SCHEMA.empty_table())
    world = prof.toy.world
    expected = {
        q + " Then twice as many?"
        for lv in (1, 2)
        for q in (p.question for p in problem_pool(lv, 4, "train", world))
        if len(q) % 2 == 0
    }
    expected = {q for q in expected if split_of(q, world.test_share, world.val_share) == "train"}
    assert set(kept["question"].to_pylist()) == expected  # 5 of 10 is below 6
    records = round_synthesis.round_records(RunLayout(prof.run_dir).store, 1).to_pylist()
    assert {outcome(r) for r in records} == {"kept", "too few agree"}


def test_the_round_run_names_the_teacher_but_never_holds_its_key(tmp_path, teacher, monkeypatch):
    monkeypatch.setenv("ROUND_TEACHER_KEY", KEY)
    prof = profile(tmp_path, teacher)
    run_id = open_round_run(prof, 1, round_synthesis_models(prof))
    tracking = prof.resolved_tracking()
    params = MlflowClient(tracking.tracking_uri).get_run(run_id).data.params
    assert params["synthesis_teacher"] == "toy-teacher"
    assert params["synthesis_min_agree"] == "3"
    assert not any(KEY in value for value in params.values())


def test_a_round_without_synthesis_prepares_nothing(tmp_path):
    prof = load_profile("tiny", quick=True, run_dir=tmp_path / "run")
    assert round_synthesis.prepare_synthesis(prof, 1) == {"seeds": 0, "shards": 0}
    kept, contaminated = round_synthesis.synthesized_problems(prof, 1, PROBLEM_SCHEMA.empty_table())
    assert (len(kept), contaminated) == (0, 0)


def round_synthesis_models(prof: Profile) -> RoundModels:
    entry = ModelConfig(path=str(prof.run_dir / "base-policy"))
    return RoundModels(search_policy=entry, ppm=None, base=entry.path, previous_policy=None)


@pytest.mark.parametrize(
    ("reason", "answers", "kept", "expected"),
    [
        ("7 of 10 answers agree", ["7"] * 10, True, "kept"),
        ("2 of 10 answers agree (< 3)", ["7", "7", "8"], False, "too few agree"),
        ("the model wrote no problem", None, False, "wrote no problem"),
        ("cut off: no end within max_new_tokens (400)", None, False, "cut off"),
        ("not new: same question as a seed or an earlier candidate", None, False, "not new"),
        ("not a problem: it asks nothing (question_pattern)", None, False, "not a problem"),
    ],
)
def test_each_candidate_outcome_has_a_short_name(reason, answers, kept, expected):
    record = {"reason": reason, "answers": answers, "kept": kept}
    assert outcome(record) == expected
