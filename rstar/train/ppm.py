"""PPM training: a scalar head on the round's policy, Bradley-Terry loss on preference pairs.

The PPM scores ``build_prompt(question) + partial`` (``rstar.models.PPMScorer``), where the
partial trajectory ends with the scored step. A pair row of ``rstar.curate`` has
``prompt = build_prompt(question) + the steps before`` and ``chosen``/``rejected`` = the
scored step (or, for final-answer pairs, the whole response), so ``prompt + chosen`` is
exactly the text the scorer sees at search time. Training therefore tokenises
``prompt + side`` as one text, keeps its last ``max_length`` tokens as the scorer does, and
adds nothing after it: TRL's ``RewardTrainer`` would append an end-of-text token to
untokenised rows, and the head would then learn to read a token the scorer never gives it.

The loss is TRL's: ``-log sigmoid(r(chosen) - r(rejected))`` on the raw head outputs; the
scorer applies ``tanh(raw * scale)``, a monotone map, so rankings carry over. Pairs of a
held-out share of the problems are not trained on; their pair accuracy is measured on the
saved checkpoint through the scorer's own backend.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedTokenizerBase,
    TrainerCallback,
    set_seed,
)
from trl import RewardConfig, RewardTrainer

from rstar.curate.export import PAIR_TRAINING_COLUMNS
from rstar.models.loading import checkpoint_dir, cut_left, load_tokenizer
from rstar.models.reward import TransformersRewardBackend
from rstar.tracking import PPM_MODEL, Tracking, log_metrics
from rstar.train.config import PPMTrainConfig
from rstar.train.data import held_out_split, read_rows
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
    write_summary,
)
from rstar.train.tokens import add_format_tokens


def pair_texts(row: dict[str, str]) -> tuple[str, str]:
    """The two texts the PPM scores for a pair row: prompt + chosen, prompt + rejected."""
    return row["prompt"] + row["chosen"], row["prompt"] + row["rejected"]


def pair_accuracy(
    backend: TransformersRewardBackend, rows: Sequence[dict[str, str]]
) -> dict[str, float]:
    """Share of pairs whose chosen side scores strictly higher, overall and per pair kind.

    Keys: "pair_accuracy" and "pair_accuracy/<kind>" for each kind present.
    """
    texts = [text for row in rows for text in pair_texts(row)]
    scores = backend.raw_scores(texts)
    hits: dict[str, list[bool]] = defaultdict(list)
    for i, row in enumerate(rows):
        won = scores[2 * i] > scores[2 * i + 1]
        hits["pair_accuracy"].append(won)
        if "kind" in row:
            hits[f"pair_accuracy/{row['kind']}"].append(won)
    return {key: sum(values) / len(values) for key, values in hits.items()}


def train_ppm(
    pairs: str | Path,
    init_model: str | Path,
    out_dir: str | Path,
    config: PPMTrainConfig | None = None,
    *,
    round: int | None = None,
    tracking: Tracking | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = True,
) -> TrainResult:
    """Train a PPM from ``init_model`` (the round's policy) on the pairs in ``pairs``.

    ``result.metrics`` holds "ppm/pair_accuracy" (held-out pairs, measured on the saved
    checkpoint; also per kind, "ppm/pair_accuracy/step" and ".../final") and the pair counts.
    Resumes from ``<out_dir>.work`` after a crash. With ``tracking`` the loss curve is logged
    under "ppm/..." and, given ``round``, the checkpoint is registered as a version of the
    ``ppm`` model aliased ``round-N``.
    """
    config = config or PPMTrainConfig()
    pairs, out_dir = Path(pairs), Path(out_dir)
    init_model = checkpoint_dir(init_model)
    rows = read_rows(pairs, PAIR_TRAINING_COLUMNS)
    train_rows, held_out = held_out_split(rows, config.eval_share, config.seed)
    started = time.perf_counter()
    work_dir = work_dir_for(out_dir)
    params = {
        "init_model": str(init_model),
        "data": str(pairs),
        "train_pairs": len(train_rows),
        "held_out_pairs": len(held_out),
    }
    with (
        tracked_run(tracking, "ppm", round, config, params),
        torch_threads(config.num_threads),
        quiet(progress),
    ):
        set_seed(config.seed)  # the new value head is initialised at random
        tokenizer = load_tokenizer(init_model, require_special_tokens=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            init_model, num_labels=1, dtype=torch.float32
        )
        added = add_format_tokens(tokenizer, model)
        model.config.pad_token_id = tokenizer.pad_token_id
        trainer = RewardTrainer(
            model=model,
            args=RewardConfig(**trainer_arguments(config, work_dir, progress), max_length=None),
            train_dataset=_tokenized(train_rows, tokenizer, config.max_length),
            processing_class=tokenizer,
            callbacks=[MetricsCallback("ppm"), *callbacks],
        )
        identity = fingerprint("ppm", config, pairs, init_model)
        resumed_from, history = run_trainer(trainer, work_dir, identity)
        summary = {"kind": "ppm", **params, "added_tokens": added, "resumed_from": resumed_from}
        summary |= {"loss_history": history}
        publish_checkpoint(trainer, tokenizer, out_dir, summary)
        metrics: dict[str, float] = {
            "ppm/final_loss": history[-1][1] if history else float("nan"),
            "ppm/steps": float(trainer.state.global_step),
            "ppm/train_pairs": float(len(train_rows)),
            "ppm/held_out_pairs": float(len(held_out)),
        }
        device = str(trainer.args.device)
        del trainer, model  # the checkpoint is scored as the search will load it
        if held_out:
            backend = TransformersRewardBackend(
                out_dir, device, max_length=config.max_length, progress=progress
            )
            accuracy = pair_accuracy(backend, held_out)
            metrics |= {f"ppm/{key}": value for key, value in accuracy.items()}
        metrics["ppm/seconds"] = elapsed(started)
        write_summary(out_dir, {**summary, "metrics": metrics})
        log_metrics(metrics)
        version = register(tracking, PPM_MODEL, out_dir, round)
    finish_work_dir(work_dir, config.keep_checkpoints)
    return TrainResult(
        out_dir=out_dir,
        steps=int(metrics["ppm/steps"]),
        rows=len(train_rows),
        seconds=metrics["ppm/seconds"],
        loss_history=history,
        resumed_from=resumed_from,
        added_tokens=added,
        metrics=metrics,
        model_version=version,
    )


def _tokenized(
    rows: Sequence[dict[str, str]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Dataset:
    """``chosen_ids``/``rejected_ids`` as the scorer tokenises the texts (see module doc)."""
    chosen, rejected = zip(*(pair_texts(row) for row in rows), strict=True)
    return Dataset.from_dict(
        {
            "chosen_ids": cut_left(tokenizer(list(chosen))["input_ids"], max_length, "PPM text"),
            "rejected_ids": cut_left(
                tokenizer(list(rejected))["input_ids"], max_length, "PPM text"
            ),
        }
    )
