"""Generation backends behind one interface, and the PPM scorer.

- ``GenerationParams``, ``Completion``, ``GenerationBackend``: the interface.
- ``TransformersBackend`` (CPU/CUDA, in-process), ``VLLMBackend`` (``[vllm]`` extra, GPU),
  ``OpenAIBackend`` (any OpenAI-compatible server).
- ``PPMScorer`` over a ``RewardBackend`` (``TransformersRewardBackend``).
- ``generation_backend`` / ``ppm_scorer``: the above from a profile's model entry.
"""

from rstar.models.base import Completion, GenerationBackend, GenerationParams
from rstar.models.factory import generation_backend, ppm_scorer
from rstar.models.loading import ModelLoadError
from rstar.models.openai_backend import OpenAIBackend, OpenAIRequestError
from rstar.models.ppm import PPM_SCALE, PPMScorer
from rstar.models.reward import RewardBackend, TransformersRewardBackend
from rstar.models.transformers_backend import TransformersBackend
from rstar.models.vllm_backend import VLLMBackend

__all__ = [
    "PPM_SCALE",
    "Completion",
    "GenerationBackend",
    "GenerationParams",
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
