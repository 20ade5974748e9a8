"""Limits of each execution of model-written code (the ``sandbox:`` section of a profile)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from rstar.settings import Settings

if TYPE_CHECKING:
    from rstar.sandbox.sandbox import Sandbox


class SandboxConfig(Settings):
    """Limits for each execution of model-written code."""

    timeout: float = Field(10.0, gt=0.0, description="seconds of wall clock per program")
    memory_mb: int = Field(1024, gt=0, description="address-space limit per program (MiB)")
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
