"""Generation backends behind one interface, and the PPM scorer.

- ``GenerationParams``, ``Completion``, ``GenerationBackend``: the interface.
- ``TransformersBackend`` (CPU/CUDA, in-process, the reference), ``CTranslate2Backend``
  (compiled decoding for small models on a CPU), ``VLLMBackend`` (``[vllm]`` extra, GPU),
  ``OpenAIBackend`` (any OpenAI-compatible server).
- ``PPMScorer`` over a ``RewardBackend`` (``TransformersRewardBackend``, the reference;
  ``CTranslate2RewardBackend``, compiled, for small models on a CPU).
- ``ModelConfig`` (a profile's model entry); ``generation_backend`` / ``ppm_scorer``: the
  above from one.
"""

from rstar.models.base import Completion, GenerationBackend, GenerationParams
from rstar.models.config import BACKENDS, ModelConfig
from rstar.models.ctranslate2_backend import CTranslate2Backend
from rstar.models.ctranslate2_reward import CTranslate2RewardBackend
from rstar.models.factory import generation_backend, ppm_scorer
from rstar.models.loading import ModelLoadError
from rstar.models.openai_backend import OpenAIBackend, OpenAIRequestError
from rstar.models.ppm import PPM_SCALE, PPMScorer
from rstar.models.reward import RewardBackend, TransformersRewardBackend
from rstar.models.transformers_backend import TransformersBackend
from rstar.models.vllm_backend import VLLMBackend

__all__ = [
    "BACKENDS",
    "PPM_SCALE",
    "CTranslate2Backend",
    "CTranslate2RewardBackend",
    "Completion",
    "GenerationBackend",
    "GenerationParams",
    "ModelConfig",
    "ModelLoadError",
    "OpenAIBackend",
    "OpenAIRequestError",
    "PPMScorer",
    "RewardBackend",
    "TransformersBackend",
    "TransformersRewardBackend",
    "VLLMBackend",
    "generation_backend",
    "ppm_scorer",
]
