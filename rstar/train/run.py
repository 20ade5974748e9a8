"""What both trainers share: the run skeleton (:func:`train_model`), resumable runs, atomic
checkpoints out, tracking, the result.

A training run writing ``out_dir`` keeps its resumable Trainer checkpoints (weights,
optimizer, scheduler, RNG states every ``save_steps``) in the sibling directory
``<out_dir>.work``. A rerun after a crash resumes from the newest complete checkpoint there,
provided the run is the same (same config, data content and initial model: a fingerprint
kept beside the checkpoints); a different run starts afresh. The finished model + tokenizer
is written to a temporary directory and renamed to ``out_dir``, so ``out_dir`` is always
either the previous model or the whole new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback, set_seed
from transformers.utils import logging as hf_logging

from rstar.atomic import atomic_dir, atomic_write
from rstar.models.loading import load_tokenizer
from rstar.tracking import Tracking, file_digest, log_metrics, register_checkpoint, start_run
from rstar.train.config import BaseTrainConfig

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "rstar_run.json"
SUMMARY_FILE = "rstar_train.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


class MetricsCallback(TrainerCallback):
    """Logs every trainer log entry to the active MLflow run as ``{prefix}/{key}``.

    Keys keep the trainer's names, its "train_"/"eval_" prefixes turned into path parts
    ("loss" -> "sft/loss", "train_loss" -> "sft/train/loss"); the step is the optimizer
    step. Nothing is logged while no run is active.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:  # type: ignore[override]
        names = {}
        for key, value in (logs or {}).items():
            head, _, rest = key.partition("_")
            name = f"{head}/{rest}" if head in ("train", "eval") and rest else key
            names[f"{self.prefix}/{name}"] = value
        log_metrics(names, step=state.global_step)


@dataclass(frozen=True)
class TrainResult:
    """What a training run did; ``metrics`` holds the final numbers also logged to MLflow."""

    out_dir: Path
    steps: int
    rows: int
    seconds: float
    loss_history: list[tuple[int, float]]
    resumed_from: str | None = None
    added_tokens: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    model_version: str | None = None

    @property
    def first_loss(self) -> float | None:
        return self.loss_history[0][1] if self.loss_history else None

    @property
    def last_loss(self) -> float | None:
        return self.loss_history[-1][1] if self.loss_history else None


def work_dir_for(out_dir: Path) -> Path:
    """Where the resumable checkpoints of the run writing ``out_dir`` live."""
    return out_dir.with_name(out_dir.name + ".work")


def fingerprint(kind: str, config: BaseTrainConfig, data: Path, init_model: Path) -> dict[str, Any]:
    """What makes two runs the same run (so one may resume the other)."""
    return {
        "kind": kind,
        "config": config.model_dump(mode="json"),
        "data_sha256": file_digest(data),
        "init_model": str(init_model.resolve()),
    }


def last_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete checkpoint (``trainer_state.json`` is written last)."""
    found = []
    for child in work_dir.glob("checkpoint-*"):
        match = _CHECKPOINT_RE.match(child.name)
        if match and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def prepare_work_dir(work_dir: Path, identity: Mapping[str, Any]) -> Path | None:
    """Make ``work_dir`` ready; returns the checkpoint to resume from, None to start afresh."""
    marker = work_dir / FINGERPRINT_FILE
    if marker.is_file() and json.loads(marker.read_text()) != identity:
        log.warning("%s holds checkpoints of a different run; starting afresh", work_dir)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(marker, lambda tmp: tmp.write_text(json.dumps(identity, indent=2)))
    return last_checkpoint(work_dir)


def trainer_arguments(config: BaseTrainConfig, work_dir: Path, progress: bool) -> dict[str, Any]:
    """The TrainingArguments (TRL config) fields both trainers set the same way."""
    return {
        "output_dir": str(work_dir),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # a value below 1 is a share of the steps
        "weight_decay": config.weight_decay,
        "per_device_train_batch_size": config.per_device_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "bf16": config.bf16,
        "activation_checkpointing": config.gradient_checkpointing,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "seed": config.seed,
        "data_seed": config.seed,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": torch.cuda.is_available(),
        "disable_tqdm": not progress,
    }


def run_trainer(
    trainer: Trainer, work_dir: Path, identity: Mapping[str, Any]
) -> tuple[str | None, list[tuple[int, float]]]:
    """Train (resuming when a checkpoint of the same run exists).

    Returns the checkpoint resumed from (its directory name) and the training loss curve,
    earlier runs' part included (the trainer state carries the log history).
    """
    resume = prepare_work_dir(work_dir, identity)
    if resume is not None:
        log.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    history = [
        (int(entry["step"]), float(entry["loss"]))
        for entry in trainer.state.log_history
        if "loss" in entry
    ]
    return (resume.name if resume else None), history


def register(
    tracking: Tracking | None, model_name: str, out_dir: Path, round: int | None
) -> str | None:
    """Register ``out_dir`` as the ``round-N`` version of ``model_name`` when tracked."""
    if tracking is None or round is None:
        return None
    return register_checkpoint(tracking, model_name, out_dir, round).version


def finish_work_dir(work_dir: Path, keep: bool) -> None:
    """Drop the resumable checkpoints after success unless asked to keep them."""
    if not keep:
        shutil.rmtree(work_dir, ignore_errors=True)


def write_summary(directory: Path, summary: Mapping[str, Any]) -> None:
    """The run's summary as ``rstar_train.json`` beside the checkpoint it describes."""
    text = json.dumps(summary, indent=2, default=str) + "\n"
    atomic_write(directory / SUMMARY_FILE, lambda tmp: tmp.write_text(text))


@contextlib.contextmanager
def tracked_run(
    tracking: Tracking | None,
    name: str,
    round: int | None,
    config: BaseTrainConfig,
    params: Mapping[str, Any],
) -> Iterator[None]:
    """An MLflow run for one training (nested in the round's run); nothing without tracking."""
    if tracking is None:
        yield
        return
    tags = {"stage": name, **({"round": round} if round is not None else {})}
    with start_run(tracking, name, tags=tags, params={**config.model_dump(), **params}):
        yield


@contextlib.contextmanager
def quiet(progress: bool) -> Iterator[None]:
    """Without ``progress``, silence the datasets and transformers progress bars too."""
    if progress:
        yield
        return
    datasets_was_on = datasets.is_progress_bar_enabled()
    transformers_was_on = hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_was_on:
            datasets.enable_progress_bars()
        if transformers_was_on:
            hf_logging.enable_progress_bar()


def elapsed(started: float) -> float:
    """Seconds since ``started`` (a ``time.perf_counter()`` reading), to 0.01 s."""
    return round(time.perf_counter() - started, 2)


@dataclass(frozen=True)
class TrainingJob:
    """One training run: what it trains, on what, from what, into where.

    ``kind`` ("sft", "ppm") names its MLflow run, prefixes its metrics and is part of its
    fingerprint; ``model_name`` is the registered model its checkpoint becomes a version of.
    """

    kind: str
    model_name: str
    config: BaseTrainConfig
    data: Path
    init_model: Path
    out_dir: Path
    rows: int  # the rows (or pairs) trained on
    params: Mapping[str, Any]  # logged with the run and kept in its summary


def _save_checkpoint(trainer: Trainer, tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    trainer.save_model(str(directory))
    tokenizer.save_pretrained(directory)


def train_model(
    job: TrainingJob,
    build: Callable[[PreTrainedTokenizerBase, Path], tuple[Trainer, list[str]]],
    *,
    measure: Callable[[Path, str], Mapping[str, float]] | None = None,
    tracking: Tracking | None = None,
    round: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """The skeleton of both trainers: seed, tokenizer, ``build(tokenizer, work_dir)`` (the
    model with the format tokens added, and its trainer; returns the trainer and the added
    tokens), train or resume, publish the checkpoint atomically, ``measure(out_dir,
    device)`` on the saved checkpoint (after the trainer is released), log, register."""
    config = job.config
    started = time.perf_counter()
    work_dir = work_dir_for(job.out_dir)
    with tracked_run(tracking, job.kind, round, config, job.params), quiet(progress):
        set_seed(config.seed)
        tokenizer = load_tokenizer(job.init_model, require_special_tokens=False)
        trainer, added = build(tokenizer, work_dir)
        identity = fingerprint(job.kind, config, job.data, job.init_model)
        resumed_from, history = run_trainer(trainer, work_dir, identity)
        summary = {"kind": job.kind, **job.params, "added_tokens": added}
        summary |= {"resumed_from": resumed_from, "loss_history": history}
        atomic_dir(job.out_dir, partial(_save_checkpoint, trainer, tokenizer))
        metrics = {
            f"{job.kind}/final_loss": history[-1][1] if history else float("nan"),
            f"{job.kind}/steps": float(trainer.state.global_step),
        }
        device = str(trainer.args.device)
        del trainer  # the checkpoint is measured as a search will load it
        if measure is not None:
            metrics |= {f"{job.kind}/{k}": v for k, v in measure(job.out_dir, device).items()}
        metrics[f"{job.kind}/seconds"] = elapsed(started)
        write_summary(job.out_dir, {**summary, "metrics": metrics})
        log_metrics(metrics)
        version = register(tracking, job.model_name, job.out_dir, round)
    finish_work_dir(work_dir, config.keep_checkpoints)
    return TrainResult(
        out_dir=job.out_dir,
        steps=int(metrics[f"{job.kind}/steps"]),
        rows=job.rows,
        seconds=metrics[f"{job.kind}/seconds"],
        loss_history=history,
        resumed_from=resumed_from,
        added_tokens=added,
        metrics=metrics,
        model_version=version,
    )
