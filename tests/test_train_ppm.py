"""PPM training with real TRL on a tiny Llama; pair texts checked against the search's scorer."""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from types import SimpleNamespace

import pyarrow as pa
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rstar.config import SearchConfig
from rstar.curate import CurationConfig, select_pairs
from rstar.format import build_prompt
from rstar.models import PPM_SCALE, PPMScorer
from rstar.models.reward import TransformersRewardBackend
from rstar.search.expansion import partial_text
from rstar.search.mcts import MCTS, SearchProblem
from rstar.search.records import trees_to_table
from rstar.store import Catalog, write_shard
from rstar.store.schema import PROBLEM_SCHEMA
from rstar.train.config import PPMTrainConfig
from rstar.train.data import held_out_split
from rstar.train.ppm import ScoreLossTrainer, _tokenized, pair_accuracy, pair_texts, train_ppm
from tests.scripted import ReplayBackend
from tests.tiny_models import tiny_checkpoint

PREFIX = "<code>\n# Step 1: read the numbers\na = {a}\nb = {b}\n<end_of_step>"
GOOD = "\n# Step 2: add them\nx = a + b\n<end_of_step>"
BAD = "\n# Step 2: multiply them\nx = a * b\n<end_of_step>"


def separable_pairs(count: int) -> list[dict[str, str]]:
    """Step pairs whose chosen side adds and whose rejected side multiplies."""
    rng = random.Random(0)
    rows = []
    for i in range(count):
        a, b = rng.randint(2, 50), rng.randint(2, 50)
        question = f"What is {a} plus {b}?"
        rows.append(
            {
                "problem_id": f"p{i}",
                "kind": "step",
                "question": question,
                "prompt": build_prompt(question) + PREFIX.format(a=a, b=b),
                "chosen": GOOD,
                "rejected": BAD,
            }
        )
    return rows


def small_config(**changes) -> PPMTrainConfig:
    """A PPM training config for the tiny test models (3e-3, batches of 8, no decay)."""
    settings = {
        "learning_rate": 3e-3,
        "batch_size": 8,
        "per_device_batch_size": 8,
        "max_length": 256,
        "weight_decay": 0.0,
        "logging_steps": 1,
    }
    return PPMTrainConfig(**(settings | changes))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rows = separable_pairs(60)
    root = tmp_path_factory.mktemp("ppm")
    tiny_checkpoint(root / "policy", [r["prompt"] + GOOD + BAD for r in rows], layers=2)
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = small_config(epochs=3, eval_share=0.2)
    # a fixed held-out set (issue 15): ten more problems with chosen and rejected swapped
    fixed = root / "fixed.jsonl"
    swapped = [{**r, "chosen": BAD, "rejected": GOOD} for r in separable_pairs(70)[60:]]
    fixed.write_text("".join(json.dumps(r) + "\n" for r in swapped))
    result = train_ppm(
        data, root / "policy", root / "ppm", config, fixed_pairs=fixed, progress=False
    )
    return rows, config, result


def test_ppm_reaches_high_held_out_pair_accuracy(trained):
    result = trained[2]
    assert result.metrics["ppm/held_out_pairs"] == 12  # ceil(0.2 x 60 problems), one pair each
    assert result.metrics["ppm/train_pairs"] == 48 and result.rows == 48
    assert result.steps == 18  # 3 epochs x 48 pairs / 8
    assert result.metrics["ppm/pair_accuracy"] >= 0.9
    assert result.metrics["ppm/pair_accuracy/step"] == result.metrics["ppm/pair_accuracy"]
    assert result.last_loss < result.first_loss
    # the fixed pairs are scored, never trained on: their swapped sides lose
    assert result.metrics["ppm/heldout_pair_accuracy"] <= 0.1


def test_reloaded_scorer_ranks_held_out_chosen_above_rejected(trained):
    rows, config, result = trained
    _, held = held_out_split(rows, config.eval_share, config.seed)
    scorer = PPMScorer(result.out_dir, progress=False)
    questions = [r["question"] for r in held]
    prefixes = [r["prompt"].removeprefix(build_prompt(r["question"])) for r in held]
    chosen = scorer.score(questions, [p + GOOD for p in prefixes])
    rejected = scorer.score(questions, [p + BAD for p in prefixes])
    assert all(-1 < c <= 1 and -1 <= r < 1 for c, r in zip(chosen, rejected, strict=True))
    wins = sum(c > r for c, r in zip(chosen, rejected, strict=True))
    assert wins / len(held) >= 0.9
    # the accuracy reported at training time is this very ranking
    assert wins / len(held) == result.metrics["ppm/pair_accuracy"]


def test_pair_accuracy_counts_strict_wins_per_kind(trained):
    rows, result = trained[0], trained[2]
    backend = TransformersRewardBackend(result.out_dir, progress=False)
    mixed = [rows[0], {**rows[1], "kind": "final"}, {**rows[2], "chosen": BAD, "rejected": GOOD}]
    raw = backend.raw_scores([t for r in mixed for t in pair_texts(r)])
    wins = [raw[0] > raw[1], raw[2] > raw[3], raw[4] > raw[5]]
    assert pair_accuracy(backend, mixed) == {
        "pair_accuracy": sum(wins) / 3,
        "pair_accuracy/step": (wins[0] + wins[2]) / 2,
        "pair_accuracy/final": float(wins[1]),
    }


def test_held_out_split_keeps_problems_whole_and_is_stable():
    rows = [
        {"problem_id": f"p{i // 3}", "prompt": "x", "chosen": "a", "rejected": "b"}
        for i in range(30)
    ]  # 10 problems, 3 pairs each
    train, held = held_out_split(rows, 0.25, seed=7)
    assert len(held) == 9 and len(train) == 21  # ceil(2.5) = 3 problems held out
    assert not {r["problem_id"] for r in held} & {r["problem_id"] for r in train}
    assert held_out_split(rows, 0.25, seed=7) == (train, held)
    assert held_out_split(rows, 0.0) == (rows, [])
    one_problem = [r for r in rows if r["problem_id"] == "p0"]
    assert held_out_split(one_problem, 0.25) == (one_problem, [])  # none to hold out


# --- the pair rows of rstar.curate are exactly what the PPM scores during search ---

STEP_A = "<code>\n# Step 1: [A] two\nx = 2\n<end_of_step>"
STEP_B = "<code>\n# Step 1: [B] three\nx = 3\n<end_of_step>"
FINAL_A = "\n\n# Now print the final answer [A1]\nprint(x + 2)\n<end_of_code>"
FAIL_A = "\n\n# Step 2: [A2] divide\ny = x / 0\n<end_of_step>"
ANSWER_A = "\n<answer>[A1X] The answer is \\boxed{4}.<end_of_answer>"
FINAL_B = "\n\n# Now print the final answer [B1]\nprint(x + 2)\n<end_of_code>"
ANSWER_B = "\n<answer>[B1X] The answer is \\boxed{5}.<end_of_answer>"
SCRIPT = {
    "ROOT": [STEP_A, STEP_B],
    "A": [FINAL_A, FAIL_A],
    "A1": [ANSWER_A],
    "B": [FINAL_B],
    "B1": [ANSWER_B],
}
QUESTION = "What is two plus two?"


def test_curated_pairs_are_the_texts_the_scorer_sees(tmp_path, trained, sandbox):
    config = SearchConfig(rollouts=6, candidates=2, error_threshold=1, seed=0)
    mcts = MCTS(ReplayBackend(SCRIPT), sandbox, config, progress=False)
    [result] = mcts.search([SearchProblem("q1", QUESTION, gold="4")])
    tree = result.tree
    write_shard(tmp_path, trees_to_table([tree]), round=1, stage="search", shard=0)
    with Catalog(tmp_path) as catalog:
        catalog.add_problems(
            pa.Table.from_pylist(
                [{"problem_id": "q1", "question": QUESTION, "answer": "4", "split": "train"}],
                schema=PROBLEM_SCHEMA,
            )
        )
        pairs = select_pairs(catalog, 1, CurationConfig(min_q_margin=0, min_edit_distance=0))
    rows = pairs.to_pylist()
    assert {r["kind"] for r in rows} == {"step", "final"}
    # A vs B and the A trajectory vs the B one; A2 crashed, which is not a wrong answer, so
    # it is no negative (curate.negatives: wrong_answer)
    assert len(rows) == 2
    for row in rows:
        for side in ("chosen", "rejected"):
            node = tree.node(row[f"{side}_node"])
            assert row["prompt"] + row[side] == build_prompt(QUESTION) + partial_text(node)
    # ... and are tokenised for training exactly as the scorer tokenises them
    backend = TransformersRewardBackend(trained[2].out_dir, progress=False)
    dataset = _tokenized(rows, backend.tokenizer, max_length=256)
    assert (
        dataset["chosen_ids"]
        == backend.tokenizer([r["prompt"] + r["chosen"] for r in rows])["input_ids"]
    )


def test_the_score_loss_is_bradley_terry_on_the_searchs_score(trained):
    """loss_on: score puts -log sigmoid(s(chosen) - s(rejected)) on s = tanh(raw * scale),
    the value the search reads; loss_on: raw is TRL's loss on the head's output."""
    rows, result = trained[0], trained[2]
    model = AutoModelForSequenceClassification.from_pretrained(result.out_dir, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(result.out_dir)
    data = _tokenized(rows[:2], tokenizer, 256)
    texts = [data[0]["chosen_ids"], data[1]["chosen_ids"], data[0]["rejected_ids"]]
    texts.append(data[1]["rejected_ids"])
    width = max(map(len, texts))
    pad = tokenizer.pad_token_id
    inputs = {
        "input_ids": torch.tensor([[pad] * (width - len(t)) + t for t in texts]),
        "attention_mask": torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in texts]),
    }
    model.eval()
    with torch.no_grad():
        raw = model(**inputs).logits.squeeze(-1).tolist()
        holder = SimpleNamespace(_metrics=defaultdict(lambda: defaultdict(list)))
        loss = ScoreLossTrainer.compute_loss(holder, model, dict(inputs)).item()
    score = [math.tanh(r * PPM_SCALE) for r in raw]
    by_hand = sum(math.log1p(math.exp(-(score[i] - score[i + 2]))) for i in (0, 1)) / 2
    assert loss == pytest.approx(by_hand, rel=1e-5)
    assert holder._metrics["eval"]["accuracy"] == [
        ((score[0] > score[2]) + (score[1] > score[3])) / 2
    ]
    assert PPMTrainConfig().loss_on == "score"


def test_a_pointwise_reward_model_learns_its_targets(tmp_path):
    """The baselines' trainer (Q-value PRM, outcome RM): texts scored +1 and -1 in training
    are told apart on new problems by the search's own scorer."""
    from rstar.train.pointwise import train_pointwise

    rows = separable_pairs(50)
    tiny_checkpoint(tmp_path / "policy", [r["prompt"] + GOOD + BAD for r in rows], layers=2)
    data = [{"text": r["prompt"] + GOOD, "target": 1.0} for r in rows[:40]]
    data += [{"text": r["prompt"] + BAD, "target": -1.0} for r in rows[:40]]
    config = small_config(epochs=4)
    result = train_pointwise("outcome", data, tmp_path / "policy", tmp_path / "orm", config)
    assert result.steps == 40 and result.rows == 80  # 4 epochs x 80 rows / 8
    assert result.last_loss < result.first_loss
    assert len((tmp_path / "orm.jsonl").read_text().splitlines()) == 80  # the data, kept
    scorer = PPMScorer(tmp_path / "orm", progress=False)
    new = rows[40:]
    prefixes = [r["prompt"].removeprefix(build_prompt(r["question"])) for r in new]
    questions = [r["question"] for r in new]
    good = scorer.score(questions, [p + GOOD for p in prefixes])
    bad = scorer.score(questions, [p + BAD for p in prefixes])
    assert all(g > 0 > b for g, b in zip(good, bad, strict=True))
