"""CTranslate2Backend against the transformers backend on tiny checkpoints built here, and
the conversion cache beside a checkpoint."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from transformers import Qwen2Config, Qwen2ForCausalLM

from rstar.format import STEP_END, build_prompt
from rstar.models import (
    CTranslate2Backend,
    GenerationParams,
    ModelLoadError,
    TransformersBackend,
    generation_backend,
)
from rstar.models.config import ModelConfig
from rstar.models.conversion import cache_dir, converted
from rstar.models.ctranslate2_backend import length_groups
from rstar.toy.model import build_tiny_llama
from tests.test_models_transformers import (
    PROMPT_W,
    PROMPT_X,
    PROMPT_Y,
    PROMPT_Z,
    TRAIN_TEXTS,
    _bigram,
    _save,
)
from tests.tiny_models import tiny_tokenizer

PROMPTS = [
    build_prompt(f"What is {a} plus {b}?") + " " * (a % 5) for a in range(12) for b in (3, 7)
]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer(TRAIN_TEXTS, vocab_size=320)


@pytest.fixture(scope="module")
def bigram_dir(tok, tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("bigram") / "model", tok, _bigram(tok))


@pytest.fixture(scope="module")
def random_dir(tok, tmp_path_factory) -> Path:
    model = build_tiny_llama(tok, hidden=32, layers=2, max_positions=256, seed=1)
    return _save(tmp_path_factory.mktemp("random") / "model", tok, model)


def _completions(backend, prompts, **params):
    return backend.generate(prompts, GenerationParams(**params))


def test_stops_truncation_and_token_counts_match_the_reference(bigram_dir):
    reference = TransformersBackend(bigram_dir, batch_size=3, progress=False)
    fast = CTranslate2Backend(bigram_dir, batch_size=2, progress=False)
    prompts = [PROMPT_X, PROMPT_Y, PROMPT_Z, PROMPT_W]
    params = {"n": 2, "temperature": 0.0, "max_new_tokens": 6}
    got, expected = (
        _completions(fast, prompts, **params),
        _completions(reference, prompts, **params),
    )
    assert got == expected
    x, y, z, w = (comps[0] for comps in got)
    assert (x.stop, x.truncated, x.num_tokens) == (STEP_END, False, 3)
    assert (y.text.endswith("<end_of_answer>"), y.num_tokens) == (True, 2)
    assert (z.stop, z.truncated, z.num_tokens) == (None, True, 6)
    assert (w.stop, w.truncated, w.num_tokens) == (None, False, 1)  # the model's own end


def test_greedy_is_the_references_on_prompts_of_every_length(random_dir):
    reference = TransformersBackend(random_dir, batch_size=5, progress=False)
    fast = CTranslate2Backend(random_dir, batch_size=4, length_window=2, progress=False)
    params = {"temperature": 0.0, "max_new_tokens": 12}
    same = [
        a == b
        for a, b in zip(
            _completions(fast, PROMPTS, **params), _completions(reference, PROMPTS, **params),
            strict=True,
        )
    ]  # fmt: skip
    assert sum(same) >= len(PROMPTS) - 1  # a near-tie of the top two logits may flip one


def test_sampling_gives_n_per_prompt_and_is_reproducible_on_a_fresh_backend(random_dir):
    params = {"n": 3, "temperature": 1.0, "max_new_tokens": 8, "seed": 5}
    runs = [
        [_completions(backend, PROMPTS[:6], **params) for _ in range(2)]
        for backend in (
            CTranslate2Backend(random_dir, workers=2, progress=False),
            CTranslate2Backend(random_dir, workers=2, progress=False),
        )
    ]
    assert runs[0] == runs[1]  # the same calls on a fresh backend
    first = runs[0][0]
    assert [len(c) for c in first] == [3] * 6
    assert len({c.text for comps in first for c in comps}) > 6  # samples differ


def test_a_qwen2_checkpoint_serves_as_the_reference_does(tok, tmp_path):
    # (AutoTokenizer reads a Qwen2 checkpoint's tokenizer as Qwen2's, with one token more)
    config = Qwen2Config(
        vocab_size=len(tok) + 16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    path = _save(tmp_path / "qwen2", tok, Qwen2ForCausalLM(config))
    params = {"temperature": 0.0, "max_new_tokens": 10}
    reference = TransformersBackend(path, progress=False)
    fast = CTranslate2Backend(path, progress=False)
    same = [
        a == b
        for a, b in zip(
            _completions(fast, PROMPTS[:8], **params),
            _completions(reference, PROMPTS[:8], **params),
            strict=True,
        )
    ]
    assert sum(same) >= 7


def test_the_profile_entry_chooses_the_backend(random_dir):
    entry = ModelConfig(backend="ctranslate2", path=str(random_dir), batch_size=8)
    backend = generation_backend(entry)
    assert isinstance(backend, CTranslate2Backend) and backend.batch_size == 8


def test_prompts_are_grouped_by_length():
    lengths = [10, 30, 11, 12, 31, 50, 19]
    assert length_groups(lengths, window=2, size=2) == [[0, 2], [3], [6], [1, 4], [5]]
    assert length_groups(lengths, window=100, size=10) == [[0, 2, 3, 6, 1, 4, 5]]


def _count(out: Path, log: Path) -> None:
    with open(log, "a") as handle:
        handle.write("x")
    out.mkdir()
    time.sleep(0.3)  # a slow conversion, so that another process would catch it midway
    (out / "model.bin").write_text("converted")


def _convert_in_process(checkpoint: str, log: str) -> str:
    return str(converted(Path(checkpoint), "test", lambda _, out: _count(out, Path(log))))


def test_a_conversion_is_made_once_per_content_and_never_seen_half_written(tmp_path):
    checkpoint = tmp_path / "policy"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_text("weights v1")
    log = tmp_path / "conversions.log"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        done = pool.starmap(_convert_in_process, [(str(checkpoint), str(log))] * 2)
    assert done[0] == done[1] and log.read_text() == "x"  # two processes, one conversion
    first = Path(done[0])
    assert first.parent == cache_dir(checkpoint) and (first / "model.bin").is_file()
    assert _convert_in_process(str(checkpoint), str(log)) == done[0] and log.read_text() == "x"

    (checkpoint / "model.safetensors").write_text("weights v2")  # a new SFT checkpoint
    second = Path(_convert_in_process(str(checkpoint), str(log)))
    assert second != first and log.read_text() == "xx" and not first.exists()

    def broken(_, out: Path) -> None:
        out.mkdir()
        (out / "model.bin").write_text("half")
        raise RuntimeError("killed midway")

    (checkpoint / "model.safetensors").write_text("weights v3")
    with pytest.raises(RuntimeError, match="killed midway"):
        converted(checkpoint, "test", broken)
    names = sorted(p.name for p in cache_dir(checkpoint).iterdir())
    assert names == [".lock", second.name]  # nothing half-written under any name


def test_a_checkpoint_it_cannot_convert_names_the_directory_and_the_way_out(tmp_path):
    checkpoint = tmp_path / "odd"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(
        json.dumps({"architectures": ["OddForCausalLM"], "model_type": "odd"})
    )
    tiny_tokenizer(["x = 1"]).save_pretrained(checkpoint)
    files = sorted(os.listdir(checkpoint))
    with pytest.raises(ModelLoadError) as raised:
        CTranslate2Backend(checkpoint, progress=False)
    message = str(raised.value)
    assert str(checkpoint) in message and "OddForCausalLM" in message
    assert "backend: transformers" in message
    leftovers = [p.name for p in cache_dir(checkpoint).iterdir() if p.name != ".lock"]
    assert leftovers == [] and sorted(os.listdir(checkpoint)) == files
