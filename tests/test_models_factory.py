"""Backends built from profile model entries (rstar.config.ModelConfig)."""

from __future__ import annotations

import pytest

from rstar.config import ModelConfig
from rstar.models import (
    OpenAIBackend,
    PPMScorer,
    TransformersBackend,
    generation_backend,
    ppm_scorer,
)
from tests.tiny_models import tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt")
    return tiny_checkpoint(path, ["x = 1 + 2"], vocab_size=280, max_positions=96)


def test_transformers_entry(checkpoint):
    entry = ModelConfig(
        backend="transformers", path=str(checkpoint), batch_size=7, extra={"max_context": 48}
    )
    backend = generation_backend(entry)
    assert isinstance(backend, TransformersBackend)
    assert (backend.batch_size, backend.context, backend.device.type) == (7, 48, "cpu")


def test_openai_entry():
    entry = ModelConfig(
        backend="openai",
        path="teacher",
        base_url="http://127.0.0.1:9/v1/",
        api_key_env="RSTAR_NO_SUCH_KEY",
        extra={"api": "chat", "max_concurrency": 2},
    )
    backend = generation_backend(entry)
    assert isinstance(backend, OpenAIBackend)
    assert (backend.url, backend.model, backend.max_concurrency) == (
        "http://127.0.0.1:9/v1/chat/completions",
        "teacher",
        2,
    )
    backend.close()
    with pytest.raises(ValueError, match="needs base_url"):
        generation_backend(ModelConfig(backend="openai", path="teacher"))


def test_ppm_entry(checkpoint):
    scorer = ppm_scorer(
        ModelConfig(backend="transformers", path=str(checkpoint), extra={"scale": 0.5})
    )
    assert isinstance(scorer, PPMScorer) and scorer.scale == 0.5
    with pytest.raises(ValueError, match="use backend: transformers or ctranslate2"):
        ppm_scorer(ModelConfig(backend="vllm", path=str(checkpoint)))
