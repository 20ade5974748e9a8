"""What every search needs open, in one place: the policy, the PPM, the sandbox, threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rstar.models import GenerationBackend, ModelConfig, PPMScorer, generation_backend, ppm_scorer
from rstar.runtime import torch_threads
from rstar.sandbox import Sandbox, SandboxConfig


@dataclass(frozen=True)
class SearchSession:
    """A served policy, the PPM scorer (None: terminal-guided), an open sandbox."""

    policy: GenerationBackend
    ppm: PPMScorer | None
    sandbox: Sandbox


@contextmanager
def search_session(
    policy: ModelConfig,
    ppm: ModelConfig | None,
    sandbox: SandboxConfig,
    *,
    threads: int | None = None,
    progress: bool = True,
) -> Iterator[SearchSession]:
    """Serve ``policy`` (and ``ppm``) with ``threads`` torch threads and open ``sandbox``
    for the block; everything is closed after it."""
    with torch_threads(threads):
        backend = generation_backend(policy.with_progress(progress))
        scorer = ppm_scorer(ppm.with_progress(progress)) if ppm is not None else None
        with sandbox.open() as box:
            yield SearchSession(backend, scorer, box)
