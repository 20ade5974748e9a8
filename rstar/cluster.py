"""Where a round's shards run: threads of the orchestrating process, or a Ray cluster.

The ``runner:`` section of a profile (docs/scale.md). A round's heavy tasks (the shards of
problem synthesis and of MCTS: search, extra rollouts, escalation; training the policy and
the PPM; evaluating them) write files only (Parquet shards, checkpoints, evaluation
records) and log to MLflow, so they can run anywhere that sees the run directory; what
writes the catalog or registers models runs in the orchestrating process. With ``kind:
ray`` each is a Ray task holding its stage's ``resources`` (``prefect-ray``'s
``RayTaskRunner`` in ``flows/runners.py``); Prefect still records each as a task run.

Before any shard starts, ``preflight`` checks what a worker on another node needs: the Ray
address answers, the run directory (the store and Prefect's results) is writable; the
models a round searches with are named by registry version (``models:/policy/3``) and
resolved where the shard runs (``rstar.tracking.resolve_checkpoint``).
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import Field

from rstar.settings import Settings

STAGES = ("synthesis", "search", "train", "evaluation")
Stage = Literal["synthesis", "search", "train", "evaluation"]
# Variables a shard on a Ray worker needs from the orchestrating process: where Prefect,
# MLflow and the run directory are, and the offline switches.
WORKER_ENV_PREFIXES = ("PREFECT_", "MLFLOW_", "RSTAR_", "HF_", "TOKENIZERS_PARALLELISM")
DEFAULT_RAY_PORT = 6379  # the head's GCS (`ray start --head`)
DEFAULT_CLIENT_PORT = 10001  # the Ray client server (ray://)


class ClusterError(RuntimeError):
    """The cluster or a path it needs cannot be used; the message names it and the fix."""


class StageResources(Settings):
    """What one task of a stage holds on a Ray node (Ray schedules tasks by it)."""

    cpus: float = Field(1.0, gt=0, description="CPU cores a task holds")
    gpus: float = Field(0.0, ge=0, description="GPUs a task holds (1: a vLLM server fits it)")
    memory_mb: int | None = Field(None, gt=0, description="memory a task reserves")

    def ray_options(self) -> dict[str, float | int]:
        """The keyword arguments of ``ray.remote`` for a task of this stage."""
        options: dict[str, float | int] = {"num_cpus": self.cpus, "num_gpus": self.gpus}
        if self.memory_mb is not None:
            options["memory"] = self.memory_mb * 2**20
        return options


class RunnerConfig(Settings):
    """The ``runner:`` section: ``thread`` (default) runs a round's heavy tasks in the flow
    process's threads; ``ray`` runs them as Ray tasks on the cluster at ``address``."""

    kind: Literal["thread", "ray"] = Field("thread", description="thread or ray")
    address: str | None = Field(
        None,
        description="ray: the cluster (HOST:6379 of `ray start --head`, ray://HOST:10001, or "
        "auto: RAY_ADDRESS); default: a temporary Ray on this machine",
    )
    resources: dict[Stage, StageResources] = Field(
        default_factory=dict,
        description="ray: per stage (synthesis, search, train, evaluation), what each of its "
        "tasks holds; default 1 CPU",
    )
    connect_timeout: float = Field(10.0, gt=0, description="seconds to wait for the address")

    def stage(self, stage: str) -> StageResources:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        return self.resources.get(stage, StageResources())


def worker_env(api_url: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a shard on a Ray worker: this process's Prefect, MLflow, rstar and
    Hugging Face variables, with the Prefect API this flow run reports to (a temporary
    server's URL too, which a worker would not find by itself)."""
    environ = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in environ.items() if k.startswith(WORKER_ENV_PREFIXES)}
    return env | {"PREFECT_API_URL": api_url}


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``HOST:PORT`` or ``ray://HOST:PORT`` address; None for ``auto``."""
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            return None
    client = address.startswith("ray://")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host:
        return port, DEFAULT_CLIENT_PORT if client else DEFAULT_RAY_PORT
    if not port.isdigit():
        raise ClusterError(
            f"runner.address {address!r} is not HOST:PORT: give the head node's address, "
            "e.g. 10.0.0.5:6379 (what `ray start --head` printed) or ray://10.0.0.5:10001"
        )
    return host, int(port)


def check_address(address: str | None, timeout: float) -> None:
    """Fail unless the Ray head at ``address`` accepts a connection (None: Ray starts a
    temporary cluster here, nothing to check)."""
    if address is None:
        return
    target = _host_port(address)
    if target is None:
        raise ClusterError(
            "runner.address is auto but RAY_ADDRESS is not set: set it, or give the head "
            "node's HOST:PORT"
        )
    where = f"auto (RAY_ADDRESS={os.environ['RAY_ADDRESS']})" if address == "auto" else address
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(
            f"no Ray head answers at {where} ({exc}): start one (`ray start --head "
            f"--port {target[1]}`) or fix runner.address in the profile"
        ) from exc


def check_writable(path: Path, what: str) -> None:
    """Fail unless a file can be created (and removed) in ``path``, created if missing."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".writable-"):
            pass
    except OSError as exc:
        raise ClusterError(
            f"{what} {path} is not writable ({exc}): every node that runs shards writes "
            "there, so it must be a path all of them can write (a shared file system)"
        ) from exc


def preflight(config: RunnerConfig, shared: dict[str, Path]) -> None:
    """What must hold before the first shard of a round starts on the runner: the
    ``shared`` paths (what each is: its path) writable, and the Ray head answering."""
    for what, path in shared.items():
        check_writable(path, what)
    if config.kind == "ray":
        check_address(config.address, config.connect_timeout)
