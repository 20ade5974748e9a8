"""Generation with vLLM in-process (the ``[vllm]`` extra; needs a CUDA GPU).

Written against vLLM's documented offline API (``vllm.LLM``, ``SamplingParams``,
``RequestOutput``/``CompletionOutput``); vLLM is imported only when a ``VLLMBackend`` is
created. The translation both ways is in pure functions so it is tested without vLLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from transformers import AutoConfig

from rstar.models.base import Completion, GenerationParams, with_stop
from rstar.models.loading import context_length, cut_left


class VLLMCompletionLike(Protocol):
    """The fields of ``vllm.CompletionOutput`` that are read."""

    index: int
    text: str
    token_ids: Sequence[int]
    finish_reason: str | None
    stop_reason: int | str | None


class VLLMRequestOutputLike(Protocol):
    """The field of ``vllm.RequestOutput`` that is read."""

    @property
    def outputs(self) -> Sequence[VLLMCompletionLike]: ...


def vllm_sampling_kwargs(params: GenerationParams) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` equivalent to ``params``.

    Special tokens stay in the text (the format's markers may be special tokens, and vLLM
    matches stop strings on the detokenised text), without spaces inserted between them.
    """
    return {
        "n": params.n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
        "stop": list(params.stop),
        "include_stop_str_in_output": True,
        "seed": params.seed,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }


def completion_from_vllm(output: VLLMCompletionLike) -> Completion:
    """One ``CompletionOutput`` as a Completion.

    ``finish_reason == "stop"`` with a string ``stop_reason`` is a matched stop string; with
    None (EOS) or an int (a stop token id) the model ended by itself. Any other reason
    ("length", "abort") means the continuation did not end: truncated.
    """
    num_tokens = len(output.token_ids)
    if output.finish_reason == "stop":
        if isinstance(output.stop_reason, str):
            text = with_stop(output.text, output.stop_reason)
            return Completion(text, output.stop_reason, truncated=False, num_tokens=num_tokens)
        return Completion(output.text, None, truncated=False, num_tokens=num_tokens)
    return Completion(output.text, None, truncated=True, num_tokens=num_tokens)


def completions_from_vllm(
    outputs: Sequence[VLLMRequestOutputLike], n: int
) -> list[list[Completion]]:
    """``LLM.generate``'s outputs (one per prompt, in order) as per-prompt Completions."""
    result = []
    for i, request in enumerate(outputs):
        samples = sorted(request.outputs, key=lambda o: o.index)
        if len(samples) != n:
            raise RuntimeError(f"vLLM returned {len(samples)} samples for prompt #{i}, not {n}")
        result.append([completion_from_vllm(o) for o in samples])
    return result


class VLLMBackend:
    """``vllm.LLM`` with prefix caching (siblings in a search tree share their prompt).

    Prompts are tokenised here and cut from the left to ``max_model_len - max_new_tokens``
    (with a warning, as in the transformers backend) instead of failing the whole batch.
    ``engine_kwargs`` go to ``vllm.LLM`` unchanged (e.g. ``quantization``, ``enforce_eager``).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        seed: int = 0,
        progress: bool = True,
        **engine_kwargs: Any,
    ) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(
                "VLLMBackend needs vLLM, which needs a CUDA GPU: pip install 'rstar[vllm]'. "
                "On a CPU use the transformers backend."
            ) from exc
        self._sampling_params = vllm.SamplingParams
        self.progress = progress
        self.context = context_length(AutoConfig.from_pretrained(model_path), max_model_len)
        self.llm = vllm.LLM(
            model=str(model_path),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            seed=seed,
            enable_prefix_caching=True,
            **engine_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        """Per prompt, ``params.n`` completions (see ``GenerationBackend``)."""
        if not prompts:
            return []
        room = self.context - params.max_new_tokens
        ids = cut_left(self.tokenizer(prompts)["input_ids"], room, "prompt")
        outputs = self.llm.generate(
            [{"prompt_token_ids": seq} for seq in ids],
            self._sampling_params(**vllm_sampling_kwargs(params)),
            use_tqdm=self.progress,
        )
        return completions_from_vllm(outputs, params.n)
