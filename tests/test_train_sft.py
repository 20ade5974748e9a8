"""Policy SFT with real TRL on a tiny Llama built here: loss, format tokens, checkpoint, resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, TrainerCallback

from rstar.format import SPECIAL_TOKENS, build_prompt
from rstar.models import GenerationParams, TransformersBackend
from rstar.models.loading import atomic_token_id, load_tokenizer
from rstar.train.config import PolicyTrainConfig
from rstar.train.data import TrainingDataError, read_rows
from rstar.train.run import SUMMARY_FILE, work_dir_for
from rstar.train.sft import policy_init, train_policy
from rstar.train.tokens import add_format_tokens
from tests.tiny_models import tiny_checkpoint

QUESTION = "What is 2 plus 3?"
STEP_1 = "<code>\n# Step 1: add\nx = 2 + 3\n<end_of_step>"
SOLUTION = (
    STEP_1 + "\n# Now print the final answer\nprint(x)\n<end_of_code>\n<output>5<end_of_output>"
    "\n<answer>The answer is \\boxed{5}.<end_of_answer>"
)
# One thread: other jobs share the 2 cores, and 2 oversubscribed threads run 50x slower.
FAST = {"weight_decay": 0.0, "max_length": 256, "logging_steps": 1}


def config(**overrides) -> PolicyTrainConfig:
    values = {"batch_size": 4, "per_device_batch_size": 4, "learning_rate": 5e-3, **FAST}
    return PolicyTrainConfig(**(values | overrides))


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A base model whose tokenizer spells the format's markers as plain text."""
    path = tmp_path_factory.mktemp("base")
    tiny_checkpoint(path, [build_prompt(QUESTION) + SOLUTION], (), hidden=64, layers=2)
    tok = load_tokenizer(path, require_special_tokens=False)
    assert all(atomic_token_id(tok, t) is None for t in SPECIAL_TOKENS)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "sft.jsonl"
    row = {"problem_id": "p1", "prompt": build_prompt(QUESTION), "completion": SOLUTION}
    path.write_text((json.dumps(row) + "\n") * 32)
    return path


@pytest.fixture(scope="module")
def trained(base_dir, data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "policy"
    return train_policy(data, base_dir, out, config(max_steps=120), progress=False)


def test_sft_lowers_the_loss_and_adds_the_format_tokens(trained):
    assert trained.steps == 120 and trained.rows == 32
    assert [step for step, _ in trained.loss_history][:3] == [1, 2, 3]
    assert trained.first_loss > 4.0
    assert trained.last_loss < trained.first_loss / 10
    assert trained.added_tokens == list(SPECIAL_TOKENS)
    tok = AutoTokenizer.from_pretrained(trained.out_dir)
    assert all(atomic_token_id(tok, t) is not None for t in SPECIAL_TOKENS)
    weights = load_file(trained.out_dir / "model.safetensors")
    assert weights["model.embed_tokens.weight"].shape[0] == len(tok)
    summary = json.loads((trained.out_dir / SUMMARY_FILE).read_text())
    assert summary["kind"] == "sft" and summary["metrics"]["sft/steps"] == 120
    assert not work_dir_for(trained.out_dir).exists()  # checkpoints dropped after success


def test_checkpoint_generates_in_the_format(trained):
    backend = TransformersBackend(trained.out_dir, progress=False)
    [[step]] = backend.generate(
        [build_prompt(QUESTION)], GenerationParams(temperature=0, max_new_tokens=40)
    )
    assert step.text == STEP_1 and step.stop == "<end_of_step>"
    assert backend.stop_token_ids(("<end_of_step>",)) is not None  # a single-token stop


class StopAt(TrainerCallback):
    """Crash the run when step ``step`` is about to start (``step - 1`` is checkpointed)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 == self.step:
            raise RuntimeError(f"simulated crash before step {self.step}")


class Steps(TrainerCallback):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append(state.global_step)


def test_a_crashed_run_resumes_from_its_last_checkpoint(base_dir, data, tmp_path):
    cfg = config(max_steps=8, save_steps=2, learning_rate=1e-3)
    whole = train_policy(data, base_dir, tmp_path / "whole", cfg, progress=False)

    out = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_policy(data, base_dir, out, cfg, callbacks=[StopAt(5)], progress=False)
    work = work_dir_for(out)
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not out.exists()

    steps = Steps()
    resumed = train_policy(data, base_dir, out, cfg, callbacks=[steps], progress=False)
    assert resumed.resumed_from == "checkpoint-4"
    assert steps.seen == [5, 6, 7, 8]
    assert [s for s, _ in resumed.loss_history] == list(range(1, 9))  # the log history carries
    losses = [loss for _, loss in resumed.loss_history]
    assert losses == pytest.approx([loss for _, loss in whole.loss_history], rel=1e-4)
    same = load_file(out / "model.safetensors")
    for name, tensor in load_file(tmp_path / "whole" / "model.safetensors").items():
        torch.testing.assert_close(same[name], tensor, rtol=1e-4, atol=1e-5)


def test_a_different_run_does_not_resume_old_checkpoints(base_dir, data, tmp_path):
    out = tmp_path / "policy"
    with pytest.raises(RuntimeError):
        cfg = config(max_steps=4, save_steps=2)
        train_policy(data, base_dir, out, cfg, callbacks=[StopAt(3)], progress=False)
    assert (work_dir_for(out) / "checkpoint-2").is_dir()
    result = train_policy(data, base_dir, out, config(max_steps=3, save_steps=2), progress=False)
    assert result.resumed_from is None and result.steps == 3


def test_bad_rows_name_the_file_row_and_field(tmp_path):
    path = tmp_path / "sft.jsonl"
    path.write_text('{"prompt": "p", "completion": "c"}\n{"prompt": "p", "completion": ""}\n')
    with pytest.raises(TrainingDataError, match=r"sft.jsonl row 1 \(line 2\): field 'completion'"):
        read_rows(path, ("prompt", "completion"))
    with pytest.raises(TrainingDataError, match="does not exist"):
        read_rows(tmp_path / "missing.jsonl", ("prompt",))


def test_policy_init_follows_the_config(tmp_path):
    base, previous = tmp_path / "base", tmp_path / "round-1" / "policy"
    assert policy_init(PolicyTrainConfig(), base, previous) == base
    assert policy_init(PolicyTrainConfig(init_from="previous"), base, previous) == previous
    assert policy_init(PolicyTrainConfig(init_from="previous"), base, None) == base


def test_batch_must_split_into_device_batches():
    with pytest.raises(ValueError, match="multiple of per_device_batch_size"):
        PolicyTrainConfig(batch_size=10, per_device_batch_size=4)
    assert (
        PolicyTrainConfig(batch_size=128, per_device_batch_size=4).gradient_accumulation_steps == 32
    )


def test_format_tokens_are_added_once(trained):
    from transformers import AutoModelForCausalLM

    tok = AutoTokenizer.from_pretrained(trained.out_dir)
    model = AutoModelForCausalLM.from_pretrained(trained.out_dir)
    rows = model.get_input_embeddings().num_embeddings
    assert add_format_tokens(tok, model) == []
    assert model.get_input_embeddings().num_embeddings == rows
