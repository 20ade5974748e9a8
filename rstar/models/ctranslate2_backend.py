"""Generation with CTranslate2: a compiled decoding loop for small models on a CPU.

For a model of a few million parameters, ``transformers``' ``generate`` spends most of
each decoding step in Python, not in arithmetic; CTranslate2 runs the whole loop in C++
(docs/benchmarks.md, "Generation backends", measures the difference). The transformers
checkpoint is converted once and cached beside it (``rstar.models.conversion``), keyed by
its content, so a new SFT checkpoint is converted on first use.

Behaviour matches :class:`~rstar.models.TransformersBackend`: the same tokenizer and
prompt cutting, the same stop tokens and the same decoding of each generated row
(``rstar.models.decoding``). A prompt's ``n`` samples share one encoding of the prompt
(``num_hypotheses``); prompts of similar length are batched together, on several
single-threaded workers at once. Stop strings that are not single tokens are matched after
generation, which costs the tokens generated past them (a warning says so once).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from types import SimpleNamespace

import torch

from rstar.models.base import Completion, GenerationParams
from rstar.models.conversion import converted
from rstar.models.decoding import completion_from_ids, stop_token_ids
from rstar.models.loading import (
    ModelLoadError,
    checkpoint_dir,
    context_length,
    cut_left,
    load_tokenizer,
)

log = logging.getLogger(__name__)

COMPUTE_TYPES = ("float32", "int8", "int8_float32")
# CTranslate2's seed is global to the process: calls that may seed workers take turns.
_SEEDED_CALLS = threading.Lock()


def ct2_convert(compute_type: str):
    """A conversion function for ``rstar.models.conversion.converted``."""

    def convert(checkpoint: Path, out_dir: Path) -> None:
        import ctranslate2

        quantization = None if compute_type == "float32" else compute_type
        try:
            converter = ctranslate2.converters.TransformersConverter(str(checkpoint))
            converter.convert(str(out_dir), quantization=quantization)
        except (ValueError, KeyError, OSError, NotImplementedError) as exc:
            architecture = _architecture(checkpoint)
            raise ModelLoadError(
                f"checkpoint {checkpoint}: CTranslate2 cannot convert it ({architecture}: "
                f"{exc}); serve it with `backend: transformers` instead"
            ) from exc
        # A tokenizer without a beginning-of-text token (the toy one) leaves bos_token null,
        # which CTranslate2 refuses to load; nothing is ever started from it here.
        config_path = out_dir / "config.json"
        config = json.loads(config_path.read_text())
        if config.get("bos_token") is None:
            config["bos_token"] = config.get("eos_token") or ""
            config_path.write_text(json.dumps(config, indent=2))

    return convert


def _architecture(checkpoint: Path) -> str:
    try:
        config = json.loads((checkpoint / "config.json").read_text())
    except (OSError, ValueError):
        return "no readable config.json"
    return ", ".join(config.get("architectures") or [config.get("model_type", "unknown")])


class CTranslate2Backend:
    """A causal LM checkpoint directory (model + tokenizer) served by CTranslate2.

    A call's prompts are sorted by length and cut into groups of at most ``batch_size``
    prompts whose lengths differ by at most ``length_window`` tokens (CTranslate2 forwards
    a batch's prompts at once only up to the shortest; the rest is fed token by token).
    ``threads`` CPU threads (default: torch's current setting) decode them, as ``workers``
    ``ctranslate2.Generator`` s (default: one single-threaded generator per thread; the
    groups are spread over them in turn and decode at once: docs/benchmarks.md measures
    the choices). Sampling is reproducible: each worker's random stream is seeded by the
    backend's first seeded call (worker k with ``seed + k``), so the same calls on a fresh
    backend give the same samples. (CTranslate2's random generators are per thread and
    seeded once, so later seeds cannot reach them, unlike
    :class:`~rstar.models.TransformersBackend`, which re-seeds every call.)
    ``compute_type``: float32 (the reference's numbers), int8 or int8_float32 (weights
    quantized to 8 bits).
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        *,
        compute_type: str = "float32",
        max_context: int | None = None,
        threads: int | None = None,
        workers: int | None = None,
        length_window: int = 2,
        require_special_tokens: bool = True,
        progress: bool = True,
    ) -> None:
        import ctranslate2

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if compute_type not in COMPUTE_TYPES:
            raise ValueError(f"compute_type must be one of {COMPUTE_TYPES}, got {compute_type!r}")
        path = checkpoint_dir(model_path)
        self.batch_size = batch_size
        self.length_window = length_window
        self.progress = progress
        self.tokenizer = load_tokenizer(path, require_special_tokens=require_special_tokens)
        self.model_dir = converted(path, f"ctranslate2-{compute_type}", ct2_convert(compute_type))
        config = json.loads((path / "config.json").read_text())
        self.context = context_length(SimpleNamespace(**config), max_context)
        threads = threads or torch.get_num_threads()
        workers = workers or threads
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = [
            ctranslate2.Generator(
                str(self.model_dir),
                device=device,
                compute_type=compute_type,
                inter_threads=1,
                intra_threads=max(1, threads // workers),
            )
            for _ in range(workers)
        ]
        self._seeded = False
        self._warned_string_stops = False

    def generate(self, prompts: list[str], params: GenerationParams) -> list[list[Completion]]:
        """Per prompt, ``params.n`` completions (see ``GenerationBackend``)."""
        if not prompts:
            return []
        room = self.context - params.max_new_tokens
        if room < 1:
            raise ValueError(
                f"max_new_tokens={params.max_new_tokens} leaves no room for a prompt in the "
                f"model's context of {self.context} tokens"
            )
        encoded = cut_left(self.tokenizer(prompts)["input_ids"], room, "prompt")
        stop_ids = stop_token_ids(self.tokenizer, params.stop)
        if stop_ids is None and not self._warned_string_stops:
            log.warning(
                "stop strings %s are not single tokens of the tokenizer: generation runs to "
                "max_new_tokens and is cut at the first stop string afterwards",
                params.stop,
            )
            self._warned_string_stops = True
        greedy = params.temperature == 0
        copies = 1 if greedy else params.n
        options = self._options(params, stop_ids, copies)
        groups = length_groups([len(ids) for ids in encoded], self.length_window, self.batch_size)
        with _SEEDED_CALLS:
            if params.seed is not None and not self._seeded:
                self._seed_workers(params.seed)
            pending = [
                self.workers[k % len(self.workers)].generate_batch(
                    [self.tokenizer.convert_ids_to_tokens(encoded[i]) for i in group],
                    asynchronous=True,
                    **options,
                )
                for k, group in enumerate(groups)
            ]
            rows: dict[int, list[list[int]]] = {}
            for group, results in zip(groups, pending, strict=True):
                for i, result in zip(group, results, strict=True):
                    rows[i] = result.result().sequences_ids
        return [
            [
                completion_from_ids(self.tokenizer, row, params.stop, stop_ids or set())
                for row in rows[i]
            ]
            * (params.n // copies)
            for i in range(len(prompts))
        ]

    def _options(
        self, params: GenerationParams, stop_ids: set[int] | None, copies: int
    ) -> dict[str, object]:
        greedy = params.temperature == 0
        eos = [] if self.tokenizer.eos_token_id is None else [self.tokenizer.eos_token_id]
        return {
            "max_length": params.max_new_tokens,
            "include_prompt_in_result": False,
            "return_end_token": True,
            "end_token": sorted(stop_ids or ()) + eos,
            "num_hypotheses": copies,
            "sampling_topk": 1 if greedy else 0,
            "sampling_topp": 1.0 if greedy else params.top_p,
            "sampling_temperature": 1.0 if greedy else params.temperature,
        }

    def _seed_workers(self, seed: int) -> None:
        """Seed worker k's random stream with ``seed + k``: a worker's generator is made
        from the process seed when it first samples, so each samples once right after."""
        import ctranslate2

        start = [self.tokenizer.convert_ids_to_tokens([self.tokenizer.pad_token_id or 0])]
        for k, worker in enumerate(self.workers):
            ctranslate2.set_random_seed(seed + k)
            worker.generate_batch(start, max_length=1, sampling_topk=0)
        self._seeded = True


def length_groups(lengths: list[int], window: int, size: int) -> list[list[int]]:
    """Indices of ``lengths`` sorted by length, cut into groups of at most ``size`` whose
    lengths differ by at most ``window``."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if not groups or len(groups[-1]) >= size or lengths[i] - lengths[groups[-1][0]] > window:
            groups.append([])
        groups[-1].append(i)
    return groups
