"""Backends from a profile's model entry (``rstar.models.ModelConfig``)."""

from __future__ import annotations

from rstar.models.base import GenerationBackend
from rstar.models.config import BACKENDS, ModelConfig
from rstar.models.ctranslate2_backend import CTranslate2Backend
from rstar.models.ctranslate2_reward import CTranslate2RewardBackend
from rstar.models.openai_backend import OpenAIBackend
from rstar.models.ppm import PPMScorer
from rstar.models.transformers_backend import TransformersBackend
from rstar.models.vllm_backend import VLLMBackend


def generation_backend(entry: ModelConfig) -> GenerationBackend:
    """The policy backend an entry describes; ``extra`` holds backend-specific options."""
    if entry.backend == "transformers":
        return TransformersBackend(entry.path, entry.device, entry.batch_size, **entry.extra)
    if entry.backend == "ctranslate2":
        return CTranslate2Backend(entry.path, entry.device, entry.batch_size, **entry.extra)
    if entry.backend == "vllm":
        return VLLMBackend(entry.path, **entry.extra)
    if entry.backend == "openai":
        if not entry.base_url:
            raise ValueError(f"model {entry.path!r}: the openai backend needs base_url")
        return OpenAIBackend(
            entry.base_url, entry.path, api_key_env=entry.api_key_env, **entry.extra
        )
    raise ValueError(f"unknown backend {entry.backend!r}: use one of {', '.join(BACKENDS)}")


def ppm_scorer(entry: ModelConfig) -> PPMScorer:
    """The PPM an entry describes: transformers, or ctranslate2 for small models on a CPU
    (``extra`` may set ``scale``; the rest of it goes to the backend)."""
    if entry.backend == "transformers":
        return PPMScorer(
            entry.path, device=entry.device, batch_size=entry.batch_size, **entry.extra
        )
    if entry.backend == "ctranslate2":
        options = dict(entry.extra)
        scale = {"scale": options.pop("scale")} if "scale" in options else {}
        backend = CTranslate2RewardBackend(entry.path, entry.device, entry.batch_size, **options)
        return PPMScorer(backend, **scale)
    raise ValueError(
        f"PPM {entry.path!r}: backend {entry.backend!r} cannot serve a PPM; "
        "use backend: transformers or ctranslate2"
    )
