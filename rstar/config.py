"""Typed run profiles: the shipped ``rstar/profiles/<name>.yaml`` or a file of one's own.

A profile says which models drive a run (and through which backend), how the search is
sized, and how model-written code is sandboxed. ``tiny`` is the embedded CPU default that
runs the whole method on the toy world; ``qwen2.5-math-7b`` carries the authors' settings
for a GPU machine with vLLM. Paths in a profile may use ``{run_dir}``, which expands to the
profile's run directory (``RSTAR_RUN_DIR`` overrides it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rstar.curate.config import CurationConfig
from rstar.evaluate.config import EvalConfig
from rstar.evolve.config import EvolveConfig
from rstar.tracking import TrackingConfig
from rstar.train.config import TrainConfig

if TYPE_CHECKING:
    from rstar.sandbox import Sandbox

BACKENDS = ("transformers", "vllm", "openai")
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"  # package data


class ProfileError(ValueError):
    """A profile that cannot be used as written; the message says what to change."""


Settings = TypeVar("Settings", bound=BaseModel)


def with_overrides(settings: Settings, **updates: Any) -> Settings:
    """``settings`` with the fields given a value (not None) replaced, validated again (a
    command line's options laid over a profile section)."""
    changed = {name: value for name, value in updates.items() if value is not None}
    return type(settings).model_validate({**settings.model_dump(), **changed})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """One model: where its weights are and which backend serves it."""

    backend: str = Field("transformers", description=f"one of {', '.join(BACKENDS)}")
    path: str = Field(description="local checkpoint directory or hub id (offline: local only)")
    create_with: str | None = Field(
        None, description="command that creates the checkpoint, named in the missing-path error"
    )
    device: str = "cpu"
    batch_size: int = Field(64, gt=0, description="sequences per forward batch (transformers)")
    base_url: str | None = Field(None, description="OpenAI-compatible server (openai backend)")
    api_key_env: str = "OPENAI_API_KEY"
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
        """Without ``progress``, an in-process transformers model shows no progress bars."""
        if progress or self.backend != "transformers":
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


class SearchConfig(_Strict):
    """MCTS sizing; defaults are the authors' data-generation settings (DESIGN §1.2)."""

    rollouts: int = Field(16, gt=0, description="MCTS rollouts per problem")
    candidates: int = Field(12, gt=0, description="candidate next steps sampled per expansion")
    temperature: float = Field(0.8, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_depth: int = Field(16, gt=0, description="steps before a node is forced terminal")
    max_new_tokens: int = Field(1024, gt=0, description="tokens per generated step")
    c_puct: float = Field(2.0, ge=0.0, description="UCT exploration constant c")
    error_threshold: int = Field(
        1, ge=1, description="consecutive code errors that make a node terminal (round 1: 2)"
    )
    seed: int = 0


class SandboxConfig(_Strict):
    """Limits for each execution of model-written code."""

    timeout: float = Field(10.0, gt=0.0, description="seconds of wall clock per program")
    memory_mb: int = Field(1024, gt=0)
    workers: int | None = Field(None, description="parallel executors; default = CPU count")
    preload: tuple[str, ...] | None = Field(
        None,
        description="modules each worker imports once (default: math libraries incl. sympy, "
        "numpy); a lighter list makes every execution cheaper",
    )

    def open(self) -> Sandbox:
        """A :class:`~rstar.sandbox.Sandbox` with these limits (use it as a context manager)."""
        from rstar.sandbox import DEFAULT_PRELOAD, Sandbox

        return Sandbox(
            timeout=self.timeout,
            memory_mb=self.memory_mb,
            workers=self.workers,
            preload=self.preload if self.preload is not None else DEFAULT_PRELOAD,
        )


class Profile(_Strict):
    """Everything a run needs to know about models, search and sandbox."""

    name: str
    description: str = ""
    run_dir: Path = Path("runs")
    policy: ModelConfig
    ppm: ModelConfig | None = None
    teacher: ModelConfig | None = Field(
        None, description="round-1 bootstrap policy; the policy itself when unset"
    )
    search: SearchConfig = SearchConfig()
    sandbox: SandboxConfig = SandboxConfig()
    toy: dict[str, Any] | None = Field(None, description="toy-world settings (tiny profile)")
    curate: CurationConfig = CurationConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()
    evolve: EvolveConfig = EvolveConfig()

    def ppm_at(self, path: str | Path) -> ModelConfig:
        """A PPM checkpoint at ``path``, served as the profile's ``ppm`` is (without one: by
        transformers on the policy's device and batch size)."""
        like = self.policy
        template = self.ppm or ModelConfig(
            path=str(path), device=like.device, batch_size=like.batch_size
        )
        return template.at(path)


def profile_names() -> list[str]:
    """Names of the profiles shipped with rstar (``rstar/profiles/``)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _expand(value: Any, run_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace("{run_dir}", run_dir)
    if isinstance(value, dict):
        return {k: _expand(v, run_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, run_dir) for v in value]
    return value


def _profile_file(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if not candidate.is_file():
            raise ProfileError(f"profile file {candidate} does not exist")
        return candidate
    shipped = PROFILES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise ProfileError(
        f"unknown profile {name_or_path!r}; known profiles: {', '.join(profile_names())} "
        "(or pass the path of a .yaml file)"
    )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_profile(
    name_or_path: str | Path = "tiny", run_dir: str | Path | None = None, *, quick: bool = False
) -> Profile:
    """Load and validate a profile by name (``rstar/profiles/<name>.yaml``) or by file path.

    ``run_dir`` (or the ``RSTAR_RUN_DIR`` environment variable) overrides the profile's own.
    ``quick`` lays the profile's ``quick:`` mapping over it (a smaller run of the same
    method, e.g. for CI); a profile without one cannot be loaded quick.
    """
    path = _profile_file(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: expected a mapping at the top level")
    quick_overrides = raw.pop("quick", None)
    if quick:
        if not isinstance(quick_overrides, dict):
            raise ProfileError(f"{path}: has no `quick:` mapping, so it has no quick size")
        raw = _merge(raw, quick_overrides)
    chosen = run_dir or os.environ.get("RSTAR_RUN_DIR") or raw.get("run_dir") or "runs"
    raw["run_dir"] = str(chosen)
    raw.setdefault("name", path.stem)
    try:
        return Profile.model_validate(_expand(raw, str(chosen)))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ProfileError(f"{path}: {problems}") from exc
