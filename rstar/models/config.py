"""Which model a role uses and which backend serves it (the ``policy:``, ``ppm:`` and
``teacher:`` sections of a profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from rstar.settings import ProfileError, Settings

BACKENDS = ("transformers", "ctranslate2", "vllm", "openai")


class ModelConfig(Settings):
    """One model: where its weights are and which backend serves it."""

    backend: str = Field("transformers", description=f"one of {', '.join(BACKENDS)}")
    path: str = Field(description="local checkpoint directory or hub id (offline: local only)")
    create_with: str | None = Field(
        None, description="command that creates the checkpoint, named in the missing-path error"
    )
    device: str = Field("cpu", description="torch device of an in-process model (cpu, cuda)")
    batch_size: int = Field(
        64, gt=0, description="sequences (transformers) or prompts (ctranslate2) per batch"
    )
    base_url: str | None = Field(None, description="OpenAI-compatible server (openai backend)")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="environment variable holding the server's API key"
    )
    extra: dict[str, Any] = Field(default_factory=dict, description="backend-specific options")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"unknown backend {value!r}; known backends: {', '.join(BACKENDS)}")
        return value

    def at(self, path: str | Path) -> ModelConfig:
        """These settings for the checkpoint at ``path`` (one that exists: nothing creates it)."""
        return self.model_copy(update={"path": str(path), "create_with": None})

    def with_progress(self, progress: bool) -> ModelConfig:
        """Without ``progress``, an in-process model (transformers, ctranslate2) shows no
        progress bars."""
        if progress or self.backend not in ("transformers", "ctranslate2"):
            return self
        return self.model_copy(update={"extra": {**self.extra, "progress": False}})

    def local_path(self) -> Path:
        """The checkpoint directory, checked to exist; hub ids are returned as given.

        A path counts as a hub id when it is of the form ``org/name`` and no such local
        directory exists; everything else must be a directory on disk.
        """
        path = Path(self.path)
        if path.is_dir():
            return path
        if self.path.count("/") == 1 and not self.path.startswith((".", "/", "~")):
            return path
        hint = f" Create it with `{self.create_with}`." if self.create_with else ""
        raise ProfileError(f"model directory {path} does not exist.{hint}")
