"""The tiny base policy: a small bootstrap run, its checkpoint, greedy evaluation, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from rstar.cli.toy import toy_app
from rstar.config import load_profile
from rstar.format import build_prompt
from rstar.toy.bootstrap import bootstrap, training_problems
from rstar.toy.config import BootstrapConfig, ToyWorldConfig
from rstar.toy.evaluate_base import LevelResult, greedy_accuracy, greedy_results
from rstar.toy.world import problem_pool, read_jsonl

WORLD = ToyWorldConfig()
# One level-1 problem, learnt by heart: the checkpoint must then solve exactly that one.
MEMORISE = BootstrapConfig(
    problems_per_level={1: 1},
    vocab_size=400,
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    max_length=512,
    learning_rate=1e-2,
    warmup_ratio=0.0,
    batch_size=1,
    max_steps=120,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run no faster on two threads, and far slower when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    summary = bootstrap(out, WORLD, MEMORISE, progress=False)
    return out, summary


def test_checkpoint_loads_offline_and_generates(checkpoint):
    out, summary = checkpoint
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert summary["train_problems"] == 1
    assert json.loads((out / "bootstrap.json").read_text())["bootstrap"]["max_steps"] == 120
    assert tok.padding_side == "left"
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<end_of_answer>")
    [problem] = training_problems(WORLD, MEMORISE)
    prompt = tok(build_prompt(problem.question), return_tensors="pt")
    with torch.inference_mode():
        out_ids = model.generate(**prompt, max_new_tokens=300, do_sample=False)
    text = tok.decode(out_ids[0, prompt["input_ids"].shape[1] :])
    assert text == problem.solution  # learnt by heart, stops at <end_of_answer>


def test_same_seed_same_weights(checkpoint, tmp_path):
    out, _ = checkpoint
    again = tmp_path / "again"
    bootstrap(again, WORLD, MEMORISE, progress=False)
    first = AutoModelForCausalLM.from_pretrained(out).state_dict()
    second = AutoModelForCausalLM.from_pretrained(again).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert (out / "tokenizer.json").read_text() == (again / "tokenizer.json").read_text()


def test_greedy_accuracy_through_sandbox_and_grader(checkpoint):
    out, _ = checkpoint
    [learnt] = training_problems(WORLD, MEMORISE)
    other = next(p for p in problem_pool(2, 20, "test", WORLD) if p.answer != learnt.answer)
    limits = {"max_new_tokens": 128, "max_depth": 4, "progress": False}
    learnt_row, other_row = greedy_results(out, [learnt, other], **limits)
    assert learnt_row == LevelResult(level=1, problems=1, correct=1, answered=1)
    assert learnt_row.accuracy == 1.0
    assert (other_row.level, other_row.problems, other_row.correct) == (2, 1, 0)
    assert greedy_accuracy(out, [other, learnt], **limits) == {1: 1.0, 2: 0.0}


def test_cli_generate_writes_the_splits(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "policy: {path: x}\ntoy: {world: {max_level: 3, train_per_level: 4, test_per_level: 2}}\n"
    )
    result = CliRunner().invoke(
        toy_app, ["generate", "--out", str(tmp_path / "data"), "--profile", str(profile)]
    )
    assert result.exit_code == 0, result.output
    train = read_jsonl(tmp_path / "data" / "train.jsonl")
    test = read_jsonl(tmp_path / "data" / "test.jsonl")
    assert [p.level for p in train] == [1] * 4 + [2] * 4 + [3] * 4
    assert [p.level for p in test] == [1, 1, 2, 2, 3, 3]
    assert train[:4] == problem_pool(1, 4, "train", WORLD)


def test_cli_reports_a_bad_toy_section(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("policy: {path: x}\ntoy: {world: {max_levle: 3}}\n")
    result = CliRunner().invoke(toy_app, ["generate", "--profile", str(profile)])
    assert result.exit_code == 2
    assert "max_levle" in result.output


@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~7 minutes quiet; the default 600 s ran out on a loaded machine
def test_full_bootstrap_is_good_on_easy_levels_and_weak_on_hard_ones(tmp_path):
    """The tiny profile's build (about 8 minutes on 2 cores): the base policy of
    docs/toy_world.md, with room to grow from level 3 on."""
    torch.set_num_threads(2)
    toy = load_profile("tiny").toy
    summary = bootstrap(tmp_path / "base", toy.world, toy.bootstrap, progress=False)
    assert summary["parameters"] == 1_311_872
    problems = [p for lv in range(1, 6) for p in problem_pool(lv, 50, "val", toy.world)]
    accuracy = greedy_accuracy(tmp_path / "base", problems, backend="ctranslate2", progress=False)
    assert accuracy[1] >= 0.85 and accuracy[2] >= 0.7
    assert 0.03 <= accuracy[3] <= 0.4
    assert accuracy[4] <= 0.1 and accuracy[5] <= 0.1
