"""PPMScorer on a real tiny Llama sequence classifier built here; values checked by hand."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rstar.format import build_prompt
from rstar.models import PPM_SCALE, ModelLoadError, PPMScorer, RewardBackend
from tests.tiny_models import PPM_PAIRS as PAIRS
from tests.tiny_models import tiny_checkpoint


def _raw_alone(path: Path, text: str, keep_last: int | None = None) -> float:
    """The head output for one text, unpadded, straight from transformers."""
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    ids = tok(text)["input_ids"]
    if keep_last is not None:
        ids = ids[-keep_last:]
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, 0].item()


def test_scores_are_tanh_of_scaled_head_output(ppm_dir):
    scorer = PPMScorer(ppm_dir, batch_size=2, progress=False)
    scores = scorer.score([q for q, _ in PAIRS], [p for _, p in PAIRS])
    raw = [_raw_alone(ppm_dir, build_prompt(q) + p) for q, p in PAIRS]
    assert PPM_SCALE == 0.2
    assert scores == pytest.approx([math.tanh(r / 5) for r in raw], abs=1e-5)
    assert all(-1 <= s <= 1 for s in scores)
    assert max(abs(r) for r in raw) > 2  # the test exercises the non-linear part of tanh
    assert len(set(scores)) == 3


def test_scale_is_configurable(ppm_dir):
    question, partial = PAIRS[0]
    raw = _raw_alone(ppm_dir, build_prompt(question) + partial)
    scorer = PPMScorer(ppm_dir, scale=1.0, progress=False)
    assert scorer.score([question], [partial]) == pytest.approx([math.tanh(raw)], abs=1e-5)


def test_long_text_keeps_its_end(ppm_dir, caplog):
    question, partial = PAIRS[1]
    tok = AutoTokenizer.from_pretrained(ppm_dir)
    n_tokens = len(tok(build_prompt(question) + partial)["input_ids"])
    scorer = PPMScorer(ppm_dir, max_length=20, progress=False)
    with caplog.at_level(logging.WARNING, logger="rstar.models.loading"):
        scores = scorer.score([PAIRS[0][0], question], [PAIRS[0][1], partial])
    expected = math.tanh(_raw_alone(ppm_dir, build_prompt(question) + partial, keep_last=20) / 5)
    assert scores[1] == pytest.approx(expected, abs=1e-5)
    assert f"#1: {n_tokens - 20} tokens" in caplog.text


def test_causal_checkpoint_loads_with_a_new_head(tmp_path):
    tiny_checkpoint(tmp_path, ["x = 1"], vocab_size=280)
    scorer = PPMScorer(tmp_path, progress=False)
    assert scorer.backend.model.config.pad_token_id == 0  # the tokenizer's pad id
    scores = scorer.score(["q", "another question"], ["x = 1<end_of_step>", "y"])
    assert len(scores) == 2 and all(-1 <= s <= 1 for s in scores)


class ConstantReward:
    """A RewardBackend that is not a model: the scorer only needs raw_scores."""

    def __init__(self, values: list[float]) -> None:
        self.values = values
        self.texts: list[str] = []

    def raw_scores(self, texts: list[str]) -> list[float]:
        self.texts = texts
        return self.values[: len(texts)]


def test_any_reward_backend_can_serve_the_scorer():
    backend = ConstantReward([10.0, -2.5, 0.0])
    assert isinstance(backend, RewardBackend)
    scorer = PPMScorer(backend)
    assert scorer.score(["a", "b", "c"], ["s1", "s2", "s3"]) == pytest.approx(
        [math.tanh(2.0), math.tanh(-0.5), 0.0]
    )
    assert backend.texts == [
        build_prompt("a") + "s1",
        build_prompt("b") + "s2",
        build_prompt("c") + "s3",
    ]
    with pytest.raises(TypeError, match="backend options"):
        PPMScorer(backend, batch_size=4)


def test_mismatched_lengths(ppm_dir):
    with pytest.raises(ValueError, match="2 questions but 1 partials"):
        PPMScorer(ConstantReward([])).score(["a", "b"], ["s"])


def test_checkpoint_without_special_tokens(tmp_path):
    tiny_checkpoint(tmp_path, ["x = 1"], (), vocab_size=270, classifier=True)
    with pytest.raises(ModelLoadError, match="lacks the format's special tokens"):
        PPMScorer(tmp_path)


def test_siblings_score_the_same_with_their_shared_prefix_run_once(ppm_dir):
    scorer = PPMScorer(ppm_dir, batch_size=3, progress=False)
    first = "<code>\n# Step 1: add\nx = 2 + 3\n<end_of_step>"
    children = ["\n# Step 2: double\ny = x * 2\n<end_of_step>", "\nprint(x)\n<end_of_code>", "z"]
    questions = ["What is 2 plus 3?"] * 4 + ["Other?"]
    partials = [first + child for child in children] + [first, first]
    shared = [len(first)] * 3 + [0, None]
    calls = []
    extending = scorer.backend.raw_scores_extending

    def counting(prefixes, continuations):
        calls.append((len(prefixes), [len(c) for c in continuations]))
        return extending(prefixes, continuations)

    scorer.backend.raw_scores_extending = counting
    together = scorer.score(questions, partials, shared)
    alone = scorer.score(questions, partials)
    assert together == pytest.approx(alone, abs=1e-5)
    assert calls == [(3, [3, 1, 1])]  # 3 prefixes: the two questions' and first's
