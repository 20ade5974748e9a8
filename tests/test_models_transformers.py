"""TransformersBackend on real tiny Llama checkpoints built here.

Exact outputs come from a "bigram" model (``make_bigram``): greedy decoding follows a fixed
token chain, so stops, truncation and token counts are known in advance. Sampling behaviour
(seeds, batching) uses a randomly initialised model.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from rstar.format import ANSWER_END, CODE_END, STEP_END, STOP_STRINGS, build_prompt
from rstar.models import (
    Completion,
    GenerationBackend,
    GenerationParams,
    ModelLoadError,
    TransformersBackend,
)
from rstar.toy.model import build_tiny_llama
from tests.tiny_models import EOS_TOKEN, make_bigram, tiny_tokenizer

TRAIN_TEXTS = [
    build_prompt("What is 2 plus 3?") + "<code>\n# Step 1: add\nx = 2 + 3\n<end_of_step>",
    "# Now print the final answer\nprint(x)\n<end_of_code>\n<output>5<end_of_output>",
    "<answer>The answer is \\boxed{5}.<end_of_answer>",
]
# Prompts end with a capital letter that never occurs in TRAIN_TEXTS, so it is its own token.
PROMPT_X = build_prompt("Add the numbers.") + " X"  # X -> a -> b -> <end_of_step>
PROMPT_Y = build_prompt("Multiply them.") + " Y"  # Y -> c -> <end_of_answer>
PROMPT_Z = "count Z"  # Z -> d -> e -> d -> ... (never stops)
PROMPT_W = "end W"  # W -> <eos>
MAX_POSITIONS = 64


def _ids(tok, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def _save(tmp: Path, tok, model) -> Path:
    tok.save_pretrained(tmp)
    model.save_pretrained(tmp)
    return tmp


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer(TRAIN_TEXTS, vocab_size=320)


def _bigram(tok):
    x, y, z, w, a, b, c, d, e, step, answer, eos = _ids(
        tok, "X", "Y", "Z", "W", "a", "b", "c", "d", "e", STEP_END, ANSWER_END, EOS_TOKEN
    )
    model = build_tiny_llama(tok, hidden=32, layers=2, max_positions=MAX_POSITIONS)
    return make_bigram(model, {x: a, a: b, b: step, y: c, c: answer, z: d, d: e, e: d, w: eos})


@pytest.fixture(scope="module")
def bigram_dir(tok, tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("bigram"), tok, _bigram(tok))


@pytest.fixture(scope="module")
def bigram(bigram_dir) -> TransformersBackend:
    return TransformersBackend(bigram_dir, batch_size=3, progress=False)


@pytest.fixture(scope="module")
def random_backend(tok, tmp_path_factory) -> TransformersBackend:
    model = build_tiny_llama(tok, hidden=32, layers=2, max_positions=256, seed=1)
    path = _save(tmp_path_factory.mktemp("random"), tok, model)
    return TransformersBackend(path, batch_size=4, progress=False)


def test_prompts_end_with_the_chain_tokens(tok):
    for prompt, last in [(PROMPT_X, "X"), (PROMPT_Y, "Y"), (PROMPT_Z, "Z"), (PROMPT_W, "W")]:
        assert tok(prompt)["input_ids"][-1] == tok.convert_tokens_to_ids(last)


def test_single_token_stops_per_sequence_with_n_samples(bigram):
    assert isinstance(bigram, GenerationBackend)
    params = GenerationParams(n=2, temperature=1.0, max_new_tokens=6, seed=0)
    out = bigram.generate([PROMPT_X, PROMPT_Y, PROMPT_Z, PROMPT_W], params)
    assert [len(group) for group in out] == [2, 2, 2, 2]
    assert out[0] == [Completion("ab" + STEP_END, STEP_END, False, 3)] * 2
    assert out[1] == [Completion("c" + ANSWER_END, ANSWER_END, False, 2)] * 2
    assert out[2] == [Completion("dedede", None, True, 6)] * 2
    assert out[3] == [Completion("", None, False, 1)] * 2  # the model's own EOS ended it


def test_greedy_repeats_one_sample(bigram):
    out = bigram.generate(
        [PROMPT_Y, PROMPT_X], GenerationParams(n=3, temperature=0.0, max_new_tokens=8)
    )
    assert out == [
        [Completion("c" + ANSWER_END, ANSWER_END, False, 2)] * 3,
        [Completion("ab" + STEP_END, STEP_END, False, 3)] * 3,
    ]


def test_multi_token_stop_strings_use_string_matching(bigram):
    # "de" is two tokens: the backend falls back to generate(stop_strings=...).
    params = GenerationParams(n=1, temperature=0.0, max_new_tokens=8, stop=(STEP_END, "ed"))
    out = bigram.generate([PROMPT_Z, PROMPT_X, PROMPT_W], params)
    assert out == [
        [Completion("ded", "ed", False, 3)],
        [Completion("ab" + STEP_END, STEP_END, False, 3)],
        [Completion("", None, False, 1)],
    ]


def test_no_stop_strings_runs_to_max_new_tokens(bigram):
    params = GenerationParams(temperature=0.0, max_new_tokens=4, stop=())
    out = bigram.generate([PROMPT_Z, PROMPT_W], params)
    assert out == [[Completion("dede", None, True, 4)], [Completion("", None, False, 1)]]


def test_pad_equal_to_eos(tok, tmp_path):
    """A tokenizer without its own pad token pads with EOS: padding after a stop string must
    not be mistaken for a model EOS."""
    pad_is_eos = tiny_tokenizer(TRAIN_TEXTS, vocab_size=320)
    pad_is_eos.pad_token = EOS_TOKEN
    backend = TransformersBackend(_save(tmp_path, pad_is_eos, _bigram(pad_is_eos)), progress=False)
    assert backend.tokenizer.pad_token_id == backend.tokenizer.eos_token_id
    params = GenerationParams(temperature=0.0, max_new_tokens=8, stop=("de",))
    out = backend.generate([PROMPT_Z, PROMPT_W, PROMPT_X], params)
    assert out == [
        [Completion("de", "de", False, 2)],
        [Completion("", None, False, 1)],
        # <end_of_step> is not a stop here; after it the bigram emits token 0 (now "<pad>",
        # an ordinary token) until max_new_tokens.
        [Completion("ab" + STEP_END + "<pad>" * 5, None, True, 8)],
    ]


def test_long_prompt_is_cut_from_the_left_with_a_warning(bigram, tok, caplog):
    long_prompt = "lorem ipsum " * 40 + "X"
    n_tokens = len(tok(long_prompt)["input_ids"])
    room = MAX_POSITIONS - 8
    assert n_tokens > room
    with caplog.at_level(logging.WARNING, logger="rstar.models.loading"):
        out = bigram.generate([PROMPT_Y, long_prompt], GenerationParams(max_new_tokens=8))
    assert out[1] == [Completion("ab" + STEP_END, STEP_END, False, 3)]
    assert f"#1: {n_tokens - room} tokens" in caplog.text
    assert "cut from the left" in caplog.text


def test_prompt_room_error(bigram):
    with pytest.raises(ValueError, match="leaves no room for a prompt"):
        bigram.generate([PROMPT_X], GenerationParams(max_new_tokens=MAX_POSITIONS))


def test_seed_reproducible_and_rng_untouched(random_backend):
    prompts = [PROMPT_X, "a much longer prompt " * 3, PROMPT_Y]
    params = GenerationParams(n=3, temperature=1.0, max_new_tokens=12, seed=123)
    torch.manual_seed(5)
    expected_next = torch.rand(1)
    torch.manual_seed(5)
    first = random_backend.generate(prompts, params)
    assert torch.equal(torch.rand(1), expected_next)  # the caller's RNG stream is untouched
    assert random_backend.generate(prompts, params) == first
    params.seed = 124
    assert random_backend.generate(prompts, params) != first
    assert [len(group) for group in first] == [3, 3, 3]
    assert len({c.text for group in first for c in group}) > 1
    for completion in (c for group in first for c in group):
        assert 1 <= completion.num_tokens <= 12
        assert completion.truncated == (completion.stop is None and completion.num_tokens == 12)
        if completion.stop is not None:
            assert completion.stop in STOP_STRINGS and completion.text.endswith(completion.stop)


def test_batching_does_not_change_greedy_outputs(random_backend):
    prompts = [PROMPT_X, "short", "a rather longer prompt than the others " * 2, PROMPT_Y, "q"]
    params = GenerationParams(n=1, temperature=0.0, max_new_tokens=10)
    batched = random_backend.generate(prompts, params)
    random_backend.batch_size = 1
    try:
        one_by_one = random_backend.generate(prompts, params)
    finally:
        random_backend.batch_size = 4
    assert batched == one_by_one


def test_empty_prompt_list(bigram):
    assert bigram.generate([], GenerationParams()) == []


def test_missing_tokenizer_is_a_clear_error(tok, tmp_path):
    build_tiny_llama(tok, hidden=32, layers=1).save_pretrained(tmp_path)
    with pytest.raises(
        ModelLoadError, match=r"has no tokenizer.*save_pretrained.*rstar toy bootstrap"
    ):
        TransformersBackend(tmp_path)


def test_missing_special_tokens_is_a_clear_error(tmp_path):
    plain = tiny_tokenizer(TRAIN_TEXTS, (), vocab_size=300)
    _save(tmp_path, plain, build_tiny_llama(plain, hidden=32, layers=1))
    with pytest.raises(ModelLoadError, match=r"lacks the format's special tokens") as err:
        TransformersBackend(tmp_path)
    for marker in (STEP_END, CODE_END, "<|user|>"):
        assert marker in str(err.value)
    assert "add_tokens" in str(err.value) and "resize_token_embeddings" in str(err.value)
    # A checkpoint that spells the markers as text can still be used, with string stops.
    backend = TransformersBackend(tmp_path, require_special_tokens=False, progress=False)
    out = backend.generate([PROMPT_X], GenerationParams(n=2, max_new_tokens=3, seed=0))
    assert [len(group) for group in out] == [2]


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        TransformersBackend(tmp_path / "nope")


@pytest.mark.parametrize(
    ("field", "value"), [("n", 0), ("temperature", -1.0), ("top_p", 0.0), ("max_new_tokens", 0)]
)
def test_invalid_params(field, value):
    with pytest.raises(ValueError, match=f"GenerationParams.{field}"):
        GenerationParams(**{field: value})


def test_markers_stop_by_token_id_other_strings_by_matching(bigram, tok):
    assert bigram.stop_token_ids(STOP_STRINGS) == set(_ids(tok, *STOP_STRINGS))
    # "ed" is an ordinary vocabulary entry here, which the model may also spell "e", "d".
    assert "ed" in tok.get_vocab()
    assert bigram.stop_token_ids((STEP_END, "ed")) is None


def test_seeded_calls_from_parallel_threads_give_the_sequential_samples(random_backend):
    """Parallel search shards share torch's global RNG: seeded calls must not interleave."""
    prompts = [PROMPT_X, PROMPT_Y]

    def params(seed: int) -> GenerationParams:
        return GenerationParams(n=4, temperature=1.0, max_new_tokens=12, seed=seed)

    alone = {seed: random_backend.generate(prompts, params(seed)) for seed in range(6)}
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(lambda s: random_backend.generate(prompts, params(s)), range(6))
        together = dict(zip(range(6), results, strict=True))
    assert together == alone
