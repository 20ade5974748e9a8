"""PPM training: a scalar head on the round's policy, Bradley-Terry loss on preference pairs.

The PPM scores ``build_prompt(question) + partial`` (``rstar.models.PPMScorer``), where the
partial trajectory ends with the scored step. A pair row of ``rstar.curate`` has
``prompt = build_prompt(question) + the steps before`` and ``chosen``/``rejected`` = the
scored step (or, for final-answer pairs, the whole response), so ``prompt + chosen`` is
exactly the text the scorer sees at search time. Training therefore tokenises
``prompt + side`` as one text, keeps its last ``max_length`` tokens as the scorer does, and
adds nothing after it: TRL's ``RewardTrainer`` would append an end-of-text token to
untokenised rows, and the head would then learn to read a token the scorer never gives it.

The loss is the paper's Bradley-Terry loss ``-log sigmoid(r(chosen) - r(rejected))`` on the
score the search reads, ``r = tanh(raw * scale)`` in [-1, 1] (``loss_on: score``, the
default); ``loss_on: raw`` is TRL's loss on the raw head outputs (a margin there can grow
without bound, while the scores the search compares saturate). Pairs of a
held-out share of the problems are not trained on; their pair accuracy is measured on the
saved checkpoint through the scorer's own backend.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedTokenizerBase,
    TrainerCallback,
)
from trl import RewardConfig, RewardTrainer

from rstar.curate.export import PAIR_TRAINING_COLUMNS
from rstar.models.loading import checkpoint_dir, cut_left
from rstar.models.ppm import PPM_SCALE
from rstar.models.reward import TransformersRewardBackend
from rstar.tracking import PPM_MODEL, Tracking
from rstar.train.config import PPMTrainConfig
from rstar.train.data import held_out_split, read_rows
from rstar.train.run import (
    MetricsCallback,
    TrainingJob,
    TrainResult,
    train_model,
    trainer_arguments,
)
from rstar.train.tokens import add_format_tokens


class ScoreLossTrainer(RewardTrainer):
    """TRL's reward trainer with the loss on the scorer's output, tanh(raw * PPM_SCALE)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs["use_cache"] = False
        outputs = model(**inputs)
        scores = torch.tanh(outputs.logits.squeeze(-1) * PPM_SCALE)
        chosen, rejected = torch.chunk(scores, chunks=2)
        loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
        mode = "train" if model.training else "eval"
        with torch.no_grad():
            self._metrics[mode]["accuracy"].append((chosen > rejected).float().mean().item())
            self._metrics[mode]["margin"].append((chosen - rejected).mean().item())
        return (loss, outputs) if return_outputs else loss


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
    fixed_pairs: str | Path | None = None,
    tracking: Tracking | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    progress: bool = True,
) -> TrainResult:
    """Train a PPM from ``init_model`` (the round's policy) on the pairs in ``pairs``.

    ``result.metrics`` holds "ppm/pair_accuracy" (held-out pairs, measured on the saved
    checkpoint; also per kind, "ppm/pair_accuracy/step" and ".../final") and the pair counts;
    with ``fixed_pairs`` (a pair file no round trains on) also
    "ppm/heldout_pair_accuracy" (and per kind) on those.
    Resumes from ``<out_dir>.work`` after a crash. With ``tracking`` the loss curve is logged
    under "ppm/..." and, given ``round``, the checkpoint is registered as a version of the
    ``ppm`` model aliased ``round-N``.
    """
    config = config or PPMTrainConfig()
    pairs, init_model = Path(pairs), checkpoint_dir(init_model)
    rows = read_rows(pairs, PAIR_TRAINING_COLUMNS)
    train_rows, held_out = held_out_split(rows, config.eval_share, config.seed)
    fixed = read_rows(fixed_pairs, PAIR_TRAINING_COLUMNS) if fixed_pairs else None
    params = {
        "init_model": str(init_model),
        "data": str(pairs),
        "train_pairs": len(train_rows),
        "held_out_pairs": len(held_out),
    }
    job = TrainingJob(
        "ppm", PPM_MODEL, config, pairs, init_model, Path(out_dir), len(train_rows), params
    )

    def build(
        tokenizer: PreTrainedTokenizerBase, work_dir: Path
    ) -> tuple[RewardTrainer, list[str]]:
        model = AutoModelForSequenceClassification.from_pretrained(
            init_model, num_labels=1, dtype=torch.float32
        )  # the new value head is initialised at random (seeded)
        added = add_format_tokens(tokenizer, model)
        model.config.pad_token_id = tokenizer.pad_token_id
        trainer_class = ScoreLossTrainer if config.loss_on == "score" else RewardTrainer
        trainer = trainer_class(
            model=model,
            args=RewardConfig(**trainer_arguments(config, work_dir, progress), max_length=None),
            train_dataset=_tokenized(train_rows, tokenizer, config.max_length),
            processing_class=tokenizer,
            callbacks=[MetricsCallback("ppm"), *callbacks],
        )
        return trainer, added

    def measure(checkpoint: Path, device: str) -> dict[str, float]:
        counts = {"train_pairs": float(len(train_rows)), "held_out_pairs": float(len(held_out))}
        if not held_out and fixed is None:
            return counts
        backend = TransformersRewardBackend(
            checkpoint, device, max_length=config.max_length, progress=progress
        )
        if held_out:
            counts |= pair_accuracy(backend, held_out)
        if fixed:
            counts |= {f"heldout_{k}": v for k, v in pair_accuracy(backend, fixed).items()}
        return counts

    return train_model(
        job, build, measure=measure, tracking=tracking, round=round, progress=progress
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
