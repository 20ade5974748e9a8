"""CTranslate2RewardBackend against the transformers reference on tiny PPMs built here."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForSequenceClassification

from rstar.format import build_prompt
from rstar.models import (
    CTranslate2RewardBackend,
    ModelConfig,
    ModelLoadError,
    PPMScorer,
    TransformersRewardBackend,
    ppm_scorer,
)
from rstar.models.conversion import cache_dir
from rstar.toy.model import build_tiny_llama
from tests.tiny_models import PPM_PAIRS as PAIRS
from tests.tiny_models import tiny_tokenizer

# texts of many lengths: the pairs, each cut at several places
TEXTS = [
    build_prompt(q) + p[:cut] for q, p in PAIRS for cut in (1, len(p) // 3, len(p) // 2, len(p))
]


def test_scores_are_the_references_on_texts_of_every_length(ppm_dir):
    reference = TransformersRewardBackend(ppm_dir, batch_size=3, progress=False)
    fast = CTranslate2RewardBackend(ppm_dir, batch_size=3, progress=False)
    want = reference.raw_scores(TEXTS)
    assert fast.raw_scores(TEXTS) == pytest.approx(want, abs=1e-4)
    assert max(want) - min(want) > 1  # the texts score differently: order is checked too
    assert fast.raw_scores([]) == []


def test_a_small_logits_budget_scores_one_text_at_a_time_and_the_same(ppm_dir):
    fast = CTranslate2RewardBackend(ppm_dir, batch_size=8, progress=False)
    lengths = [10, 20, 30, 40]
    # 2 texts of 20 tokens over a vocabulary of V: 2 * 20 * V * 4 bytes of logits
    fast.logits_budget = 2 * 20 * fast.vocab_size * 4
    assert fast._chunks([0, 1, 2, 3], lengths) == [[0, 1], [2], [3]]
    fast.logits_budget = 1
    assert fast._chunks([0, 1, 2, 3], lengths) == [[0], [1], [2], [3]]
    fast.batch_size, fast.logits_budget = 3, 10**9
    assert fast._chunks([3, 1, 0, 2], lengths) == [[3, 1, 0], [2]]
    alone = CTranslate2RewardBackend(ppm_dir, logits_budget=1, progress=False)
    assert alone.raw_scores(TEXTS) == pytest.approx(fast.raw_scores(TEXTS), abs=1e-5)


def test_long_text_keeps_its_end_as_the_reference_does(ppm_dir, caplog):
    reference = TransformersRewardBackend(ppm_dir, max_length=20, progress=False)
    fast = CTranslate2RewardBackend(ppm_dir, max_length=20, progress=False)
    with caplog.at_level(logging.WARNING, logger="rstar.models.loading"):
        got = fast.raw_scores(TEXTS[-2:])
    assert got == pytest.approx(reference.raw_scores(TEXTS[-2:]), abs=1e-4)
    assert "tokens" in caplog.text  # the cut is logged, as for the reference


def test_the_conversion_is_cached_beside_the_checkpoint(ppm_dir):
    first = CTranslate2RewardBackend(ppm_dir, progress=False)
    second = CTranslate2RewardBackend(ppm_dir, progress=False)
    assert first.model_dir == second.model_dir
    assert first.model_dir.parent == cache_dir(Path(ppm_dir).resolve())
    assert first.model_dir.name.startswith("ctranslate2-ppm-float32-")
    assert not list(first.model_dir.parent.glob("*.lm"))  # the staged causal LM is gone


def test_a_qwen2_classifier_scores_as_the_reference_does(tmp_path):
    tok = tiny_tokenizer([build_prompt(q) + p for q, p in PAIRS])
    config = Qwen2Config(
        vocab_size=len(tok) + 16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen2ForSequenceClassification(config)
    with torch.no_grad():
        model.score.weight.mul_(40.0)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    want = TransformersRewardBackend(tmp_path, progress=False).raw_scores(TEXTS)
    got = CTranslate2RewardBackend(tmp_path, progress=False).raw_scores(TEXTS)
    assert got == pytest.approx(want, abs=1e-4)


def test_the_profile_entry_serves_the_ppm_with_ctranslate2(ppm_dir):
    entry = ModelConfig(backend="ctranslate2", path=str(ppm_dir), batch_size=4)
    scorer = ppm_scorer(entry.model_copy(update={"extra": {"scale": 0.5}}))
    assert isinstance(scorer, PPMScorer) and scorer.scale == 0.5
    assert isinstance(scorer.backend, CTranslate2RewardBackend)
    assert scorer.backend.batch_size == 4
    reference = ppm_scorer(entry.model_copy(update={"backend": "transformers"}))
    questions, partials = [q for q, _ in PAIRS], [p for _, p in PAIRS]
    assert scorer.score(questions, partials) != pytest.approx(
        reference.score(questions, partials), abs=1e-3
    )  # scale 0.5 against the default 0.2
    assert ppm_scorer(entry).score(questions, partials) == pytest.approx(
        reference.score(questions, partials), abs=1e-4
    )


def test_a_checkpoint_that_does_not_load_names_its_directory(tmp_path):
    tok = tiny_tokenizer(["x = 1"])
    model = build_tiny_llama(tok, hidden=16, layers=1, max_positions=64, classifier=True)
    tok.save_pretrained(tmp_path)
    model.config.save_pretrained(tmp_path)  # a config, but no weights
    with pytest.raises(ModelLoadError, match=f"{tmp_path}.*1-label sequence classifier"):
        CTranslate2RewardBackend(tmp_path, progress=False)
    assert not [p for p in cache_dir(tmp_path).iterdir() if not p.name.startswith(".")]
