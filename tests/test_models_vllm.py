"""VLLMBackend's translation to and from vLLM, tested without vLLM.

vLLM needs a CUDA GPU and is not installed here; its output objects are stood in for by the
plain dataclasses below (fakes of ``vllm.CompletionOutput`` / ``vllm.RequestOutput`` with the
documented field names), which is all the translation functions read.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import pytest

from rstar.format import ANSWER_END, STEP_END, STOP_STRINGS
from rstar.models import Completion, GenerationParams, VLLMBackend
from rstar.models.vllm_backend import (
    completion_from_vllm,
    completions_from_vllm,
    vllm_sampling_kwargs,
)


@dataclass
class FakeVLLMCompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    stop_reason: int | str | None = None


@dataclass
class FakeVLLMRequestOutput:
    outputs: list[FakeVLLMCompletionOutput] = field(default_factory=list)


def test_sampling_kwargs():
    params = GenerationParams(n=12, temperature=0.7, top_p=0.95, max_new_tokens=1024, seed=3)
    assert vllm_sampling_kwargs(params) == {
        "n": 12,
        "temperature": 0.7,
        "top_p": 0.95,
        "max_tokens": 1024,
        "stop": list(STOP_STRINGS),
        "include_stop_str_in_output": True,
        "seed": 3,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }
    greedy = vllm_sampling_kwargs(GenerationParams(temperature=0.0, stop=()))
    assert greedy["temperature"] == 0.0 and greedy["stop"] == [] and greedy["seed"] is None


def test_stop_string_is_kept_once():
    with_stop = FakeVLLMCompletionOutput(0, "x = 1\n" + STEP_END, [1, 2, 3, 4], "stop", STEP_END)
    assert completion_from_vllm(with_stop) == Completion("x = 1\n" + STEP_END, STEP_END, False, 4)
    # Had the engine dropped it (include_stop_str_in_output off), it is put back.
    without = FakeVLLMCompletionOutput(0, "x = 1\n", [1, 2, 3, 4], "stop", STEP_END)
    assert completion_from_vllm(without) == Completion("x = 1\n" + STEP_END, STEP_END, False, 4)


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason", "expected"),
    [
        ("length", None, Completion("abc", None, True, 3)),  # ran out of max_tokens
        ("stop", None, Completion("abc", None, False, 3)),  # EOS
        ("stop", 151643, Completion("abc", None, False, 3)),  # a stop token id
        ("abort", None, Completion("abc", None, True, 3)),
    ],
)
def test_other_finish_reasons(finish_reason, stop_reason, expected):
    output = FakeVLLMCompletionOutput(0, "abc", [7, 8, 9], finish_reason, stop_reason)
    assert completion_from_vllm(output) == expected


def test_request_outputs_become_per_prompt_lists_in_sample_order():
    outputs = [
        FakeVLLMRequestOutput(
            [
                FakeVLLMCompletionOutput(1, "b" + ANSWER_END, [1, 2], "stop", ANSWER_END),
                FakeVLLMCompletionOutput(0, "a", [1], "length"),
            ]
        ),
        FakeVLLMRequestOutput(
            [
                FakeVLLMCompletionOutput(0, "c" + STEP_END, [5, 6], "stop", STEP_END),
                FakeVLLMCompletionOutput(1, "d", [5, 6, 7], "stop"),
            ]
        ),
    ]
    assert completions_from_vllm(outputs, n=2) == [
        [Completion("a", None, True, 1), Completion("b" + ANSWER_END, ANSWER_END, False, 2)],
        [Completion("c" + STEP_END, STEP_END, False, 2), Completion("d", None, False, 3)],
    ]
    with pytest.raises(RuntimeError, match="2 samples for prompt #0, not 3"):
        completions_from_vllm(outputs, n=3)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_backend_without_vllm_says_how_to_install(tmp_path):
    with pytest.raises(ImportError, match=r"pip install 'rstar\[vllm\]'"):
        VLLMBackend(tmp_path)
