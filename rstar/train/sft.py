"""Policy SFT: TRL ``SFTTrainer`` on a round's SFT rows, loss on the completions only.

The rows are ``rstar.curate`` SFT rows: ``prompt = build_prompt(question)``, ``completion``
= the verified trajectory. TRL masks the prompt tokens out of the loss and appends the
tokenizer's end-of-text token to each completion (unless the completion already ends with
it, as with the toy tokenizer, whose end-of-text is ``<end_of_answer>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase, TrainerCallback
from trl import SFTConfig, SFTTrainer

from rstar.curate.export import SFT_TRAINING_COLUMNS
from rstar.models.loading import checkpoint_dir
from rstar.tracking import POLICY_MODEL, Tracking
from rstar.train.config import PolicyTrainConfig
from rstar.train.data import read_rows
from rstar.train.run import (
    MetricsCallback,
    TrainingJob,
    TrainResult,
    train_model,
    trainer_arguments,
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
    data, init_model = Path(data), checkpoint_dir(init_model)
    rows = read_rows(data, SFT_TRAINING_COLUMNS)
    params = {"init_model": str(init_model), "data": str(data), "rows": len(rows)}
    job = TrainingJob(
        "sft", POLICY_MODEL, config, data, init_model, Path(out_dir), len(rows), params
    )

    def build(tokenizer: PreTrainedTokenizerBase, work_dir: Path) -> tuple[SFTTrainer, list[str]]:
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
        return trainer, added

    return train_model(job, build, tracking=tracking, round=round, progress=progress)
