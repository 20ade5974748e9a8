"""Hyperparameters of policy SFT and PPM training (the ``train:`` section of a profile).

Defaults are the authors' 7B recipe (docs/method.md §3-4): policy SFT for 2 epochs at
learning rate 7e-6 with a linear schedule, weight decay 0.1 and 128 sequences per optimizer
step, initialised from the base model every round; the PPM initialised from the round's new
policy. The tiny profile overrides them with values that move a 2 M parameter model on a CPU
(docs/training.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rstar.settings import Settings


class BaseTrainConfig(Settings):
    """What both trainers share: schedule, batch, checkpointing, precision."""

    epochs: float = Field(2.0, gt=0.0, description="passes over the data")
    max_steps: int | None = Field(
        None, gt=0, description="optimizer steps; overrides epochs when set"
    )
    learning_rate: float = Field(7e-6, gt=0.0, description="peak learning rate")
    lr_scheduler: str = Field("linear", description="a transformers scheduler name")
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="share of steps warming up")
    weight_decay: float = Field(0.1, ge=0.0, description="AdamW weight decay")
    batch_size: int = Field(128, gt=0, description="sequences per optimizer step (effective)")
    per_device_batch_size: int = Field(
        4, gt=0, description="sequences per forward pass; the rest is gradient accumulation"
    )
    max_length: int = Field(4096, gt=0, description="tokens per training sequence")
    save_steps: int = Field(100, gt=0, description="optimizer steps between resumable checkpoints")
    save_total_limit: int = Field(2, gt=0, description="resumable checkpoints kept")
    keep_checkpoints: bool = Field(
        False, description="keep the resumable checkpoints after a successful run"
    )
    logging_steps: int = Field(10, gt=0, description="optimizer steps between loss logs")
    seed: int = Field(0, description="seed of data order and new weights")
    bf16: bool = Field(False, description="bfloat16 mixed precision (GPU)")
    gradient_checkpointing: bool = Field(False, description="recompute activations (large models)")

    @model_validator(mode="after")
    def _batch_divides(self) -> BaseTrainConfig:
        if self.batch_size % self.per_device_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} must be a multiple of per_device_batch_size "
                f"{self.per_device_batch_size} (the rest is gradient accumulation)"
            )
        return self

    @property
    def gradient_accumulation_steps(self) -> int:
        return self.batch_size // self.per_device_batch_size


class PolicyTrainConfig(BaseTrainConfig):
    """Policy SFT on the round's SFT rows (completion-only loss)."""

    init_from: Literal["base", "previous"] = Field(
        "base",
        description="checkpoint each round starts from: the base model (the authors) or the "
        "previous round's policy",
    )


class PPMTrainConfig(BaseTrainConfig):
    """PPM training on the round's preference pairs (Bradley-Terry loss)."""

    epochs: float = Field(1.0, gt=0.0, description="passes over the pairs")
    batch_size: int = Field(512, gt=0, description="pairs per optimizer step (effective)")
    eval_share: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="share of problems whose pairs are held out to measure pair accuracy",
    )
    loss_on: Literal["score", "raw"] = Field(
        "score",
        description="Bradley-Terry loss on the score the search reads, tanh(raw * scale) in "
        "[-1, 1] (the paper), or on the head's raw output (TRL's RewardTrainer)",
    )


class TrainConfig(Settings):
    """The ``train:`` section of a profile."""

    policy: PolicyTrainConfig = Field(
        default_factory=PolicyTrainConfig, description="policy SFT on the round's SFT rows"
    )
    ppm: PPMTrainConfig = Field(
        default_factory=PPMTrainConfig, description="PPM training on the round's pairs"
    )
