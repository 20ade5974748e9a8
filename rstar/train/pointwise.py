"""Pointwise reward models: the PPM's baselines in the paper's ablation (Table 8).

A Q-value PRM and an outcome reward model (rows from ``rstar.curate.reward_rows``) share the
PPM's architecture and initialisation (a scalar head on the round's policy) and its score,
``tanh(raw * PPM_SCALE)`` read at the last token, so ``rstar.models.PPMScorer`` serves all
three alike. Only the loss differs: the PPM ranks pairs (Bradley-Terry), these regress each
text's score on its target (mean squared error), which is what the paper's ablation
contrasts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)

from rstar.atomic import atomic_write
from rstar.models.loading import checkpoint_dir, cut_left
from rstar.models.ppm import PPM_SCALE
from rstar.train.config import PPMTrainConfig
from rstar.train.run import (
    MetricsCallback,
    TrainingJob,
    TrainResult,
    train_model,
    trainer_arguments,
)
from rstar.train.tokens import add_format_tokens


class PointwiseTrainer(Trainer):
    """Mean squared error between the scorer's output, tanh(raw * PPM_SCALE), and the target."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        targets = inputs.pop("labels")
        outputs = model(**inputs, use_cache=False)
        scores = torch.tanh(outputs.logits.squeeze(-1) * PPM_SCALE)
        loss = torch.nn.functional.mse_loss(scores, targets.to(scores.dtype))
        return (loss, outputs) if return_outputs else loss


def train_pointwise(
    kind: str,
    rows: Sequence[dict],
    init_model: str | Path,
    out_dir: str | Path,
    config: PPMTrainConfig | None = None,
    *,
    progress: bool = True,
) -> TrainResult:
    """Train the reward model ``kind`` ("q_value", "outcome") on ``rows`` (text, target).

    The rows are kept beside the checkpoint (``<out_dir>.jsonl``): they are the run's data,
    whose content decides whether a crashed run resumes.
    """
    config = config or PPMTrainConfig()
    if not rows:
        raise ValueError(f"no {kind} rows to train on: the round's trees hold no trajectories")
    init_model, out_dir = checkpoint_dir(init_model), Path(out_dir)
    data = out_dir.with_suffix(".jsonl")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"text": r["text"], "target": r["target"]}) + "\n" for r in rows)
    atomic_write(data, lambda tmp: tmp.write_text(lines))
    params = {"init_model": str(init_model), "data": str(data), "rows": len(rows)}
    job = TrainingJob(kind, kind, config, data, init_model, out_dir, len(rows), params)

    def build(tokenizer: PreTrainedTokenizerBase, work_dir: Path) -> tuple[Trainer, list[str]]:
        model = AutoModelForSequenceClassification.from_pretrained(
            init_model, num_labels=1, dtype=torch.float32
        )
        added = add_format_tokens(tokenizer, model)
        model.config.pad_token_id = tokenizer.pad_token_id
        ids = tokenizer([r["text"] for r in rows])["input_ids"]
        dataset = Dataset.from_dict(
            {
                "input_ids": cut_left(ids, config.max_length, f"{kind} text"),
                "labels": [float(r["target"]) for r in rows],
            }
        )
        trainer = PointwiseTrainer(
            model=model,
            args=TrainingArguments(**trainer_arguments(config, work_dir, progress)),
            train_dataset=dataset,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            callbacks=[MetricsCallback(kind)],
        )
        return trainer, added

    return train_model(job, build, progress=progress)
