"""Policy SFT: TRL ``SFTTrainer`` on a round's SFT rows, loss on the completions only.

The rows are ``rstar.curate`` SFT rows: ``prompt = build_prompt(question)``, ``completion``
= the verified trajectory. TRL masks the prompt tokens out of the loss and appends the
tokenizer's end-of-text token to each completion (unless the completion already ends with
it, as with the toy tokenizer, whose end-of-text is ``<end_of_answer>``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, TrainerCallback, set_seed
from trl import SFTConfig, SFTTrainer

from rstar.curate.export import SFT_TRAINING_COLUMNS
from rstar.models.loading import checkpoint_dir, load_tokenizer
from rstar.tracking import POLICY_MODEL, Tracking, log_metrics
from rstar.train.config import PolicyTrainConfig
from rstar.train.data import read_rows
from rstar.train.run import (
    MetricsCallback,
    TrainResult,
    elapsed,
    fingerprint,
    finish_work_dir,
    publish_checkpoint,
    quiet,
    register,
    run_trainer,
    torch_threads,
    tracked_run,
    trainer_arguments,
    work_dir_for,
)
from rstar.train.tokens import add_format_tokens


def policy_init(config: PolicyTrainConfig, base: str | Path, previous: str | Path | None) -> Path:
    """The checkpoint a round's SFT starts from, as ``config.init_from`` says.

    Round 1 has no previous policy: it starts from ``base`` either way.
    """
    if config.init_from == "previous" and previous is not None:
        return Path(previous)
    return Path(base)


def train_policy(
    data: str | Path,
    init_model: str | Path,
    out_dir: str | Path,
    config: PolicyTrainConfig | None = None,
    *,
    round: int | None = None,
    tracking: Tracking | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = True,
) -> TrainResult:
    """Fine-tune ``init_model`` on the SFT rows in ``data``; the checkpoint goes to ``out_dir``.

    Resumes from ``<out_dir>.work`` after a crash (see ``rstar.train.run``). With
    ``tracking``, the run's loss curve is logged under "sft/..." and, given ``round``, the
    checkpoint is registered as a version of the ``policy`` model aliased ``round-N``.
    """
    config = config or PolicyTrainConfig()
    data, out_dir = Path(data), Path(out_dir)
    init_model = checkpoint_dir(init_model)
    rows = read_rows(data, SFT_TRAINING_COLUMNS)
    started = time.perf_counter()
    work_dir = work_dir_for(out_dir)
    params = {"init_model": str(init_model), "data": str(data), "rows": len(rows)}
    with (
        tracked_run(tracking, "sft", round, config, params),
        torch_threads(config.num_threads),
        quiet(progress),
    ):
        set_seed(config.seed)
        tokenizer = load_tokenizer(init_model, require_special_tokens=False)
        model = AutoModelForCausalLM.from_pretrained(init_model, dtype=torch.float32)
        added = add_format_tokens(tokenizer, model)
        args = SFTConfig(
            **trainer_arguments(config, work_dir, progress),
            max_length=config.max_length,
            completion_only_loss=True,
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(
                [{c: row[c] for c in SFT_TRAINING_COLUMNS} for row in rows]
            ),
            processing_class=tokenizer,
            callbacks=[MetricsCallback("sft"), *callbacks],
        )
        identity = fingerprint("sft", config, data, init_model)
        resumed_from, history = run_trainer(trainer, work_dir, identity)

        seconds = elapsed(started)
        metrics = {
            "sft/final_loss": history[-1][1] if history else float("nan"),
            "sft/steps": float(trainer.state.global_step),
            "sft/seconds": seconds,
        }
        summary = {"kind": "sft", **params, "added_tokens": added, "resumed_from": resumed_from}
        summary |= {"metrics": metrics, "loss_history": history}
        publish_checkpoint(trainer, tokenizer, out_dir, summary)
        log_metrics(metrics)
        version = register(tracking, POLICY_MODEL, out_dir, round)
    finish_work_dir(work_dir, config.keep_checkpoints)
    return TrainResult(
        out_dir=out_dir,
        steps=int(metrics["sft/steps"]),
        rows=len(rows),
        seconds=seconds,
        loss_history=history,
        resumed_from=resumed_from,
        added_tokens=added,
        metrics=metrics,
        model_version=version,
    )
