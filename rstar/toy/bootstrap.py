"""Build the tiny base policy: a toy tokenizer and a small Llama trained from scratch.

The model stands in for a pretrained base model. It is trained (SFT, completion-only loss)
on gold solutions of the easiest levels only, so it learns the step format and solves
easy problems; harder levels are left for self-evolution to win.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset
from transformers import GenerationConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from transformers.trainer_utils import TrainOutput
from trl import SFTConfig, SFTTrainer

from rstar.format import build_prompt
from rstar.toy.config import BootstrapConfig, ToyWorldConfig
from rstar.toy.model import build_tiny_llama
from rstar.toy.tokenizer import train_tokenizer
from rstar.toy.world import ToyProblem, problem_pool

TOKENIZER_SAMPLE_PER_LEVEL = 300  # questions per level the tokenizer's vocabulary is learnt from


def training_problems(world: ToyWorldConfig, boot: BootstrapConfig) -> list[ToyProblem]:
    """The train-pool problems whose gold solutions the base model is trained on."""
    return [
        p
        for level, count in sorted(boot.problems_per_level.items())
        for p in problem_pool(level, count, "train", world)
    ]


def build_tokenizer(
    world: ToyWorldConfig, boot: BootstrapConfig, problems: list[ToyProblem]
) -> PreTrainedTokenizerFast:
    """Tokenizer over the training texts plus train questions of every level.

    Harder levels only contribute vocabulary (words of their stories), never training signal.
    """
    texts = [build_prompt(p.question) + p.solution for p in problems]
    for level in range(1, world.max_level + 1):
        pool = problem_pool(level, TOKENIZER_SAMPLE_PER_LEVEL, "train", world)
        texts.extend(build_prompt(p.question) for p in pool)
    return train_tokenizer(texts, boot.vocab_size)


def bootstrap(
    out_dir: Path,
    world: ToyWorldConfig | None = None,
    boot: BootstrapConfig | None = None,
    progress: bool = True,
    extra_rows: Sequence[dict[str, str]] = (),
) -> dict:
    """Train the base policy and save it (model + tokenizer) as a checkpoint in ``out_dir``;
    ``extra_rows`` (prompt / completion) are trained on with the gold solutions (the toy
    teacher's problem-writing rows).

    Returns a summary (parameter count, training loss, seconds), also written to
    ``out_dir/bootstrap.json``. The same configs give the same weights.
    """
    world = world or ToyWorldConfig()
    boot = boot or BootstrapConfig()
    started = time.perf_counter()
    problems = training_problems(world, boot)
    tokenizer = build_tokenizer(world, boot, problems)
    model = build_tiny_llama(
        tokenizer,
        hidden=boot.hidden_size,
        layers=boot.num_layers,
        heads=boot.num_heads,
        max_positions=boot.max_length,
        seed=boot.seed,
    )
    rows = [{"prompt": build_prompt(p.question), "completion": p.solution} for p in problems]
    rows += list(extra_rows)
    with tempfile.TemporaryDirectory() as scratch:
        result = _train(model, tokenizer, rows, boot, Path(scratch), progress)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    summary = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_problems": len(problems),
        "extra_rows": len(extra_rows),
        "train_loss": result.training_loss,
        "seconds": round(time.perf_counter() - started, 1),
        "toy_world": world.model_dump(mode="json"),
        "bootstrap": boot.model_dump(mode="json"),
    }
    (out_dir / "bootstrap.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _train(
    model: LlamaForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    rows: list[dict[str, str]],
    boot: BootstrapConfig,
    scratch: Path,
    progress: bool,
) -> TrainOutput:
    """SFT with TRL: prompt/completion rows, loss on the completion only."""
    args = SFTConfig(
        output_dir=str(scratch),
        max_steps=boot.max_steps,
        per_device_train_batch_size=boot.batch_size,
        learning_rate=boot.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=boot.warmup_ratio,
        weight_decay=0.0,
        adam_beta2=0.95,
        max_length=boot.max_length,
        completion_only_loss=True,
        bf16=False,
        report_to="none",
        activation_checkpointing=False,
        dataloader_pin_memory=False,
        save_strategy="no",
        logging_steps=max(1, boot.max_steps // 20),
        seed=boot.seed,
        data_seed=boot.seed,
        dataloader_num_workers=0,
        disable_tqdm=not progress,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    return trainer.train()
