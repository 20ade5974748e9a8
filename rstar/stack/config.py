"""The stack's settings (:class:`StackConfig`), saved beside its state, and the environment
its processes share."""

from __future__ import annotations

import shlex
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rstar.atomic import atomic_write
from rstar.tracking import Tracking

SERVER, WORKER, MLFLOW, TEACHER = "prefect-server", "prefect-worker", "mlflow-ui", "teacher"
COMPONENTS = (SERVER, WORKER, MLFLOW, TEACHER)  # the teacher only when one is configured
TITLES = {
    SERVER: "Prefect server",
    WORKER: "Prefect worker",
    MLFLOW: "MLflow UI",
    TEACHER: "teacher (OpenAI-compatible)",
}
CONFIG_FILE = "stack.json"


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says why and what to do."""


def absolute_path(path: Path) -> Path:
    return path.expanduser().resolve()


class StackConfig(BaseModel):
    """Where the stack listens and keeps its state; every path is absolute once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="interface both servers bind to")
    prefect_port: int = Field(4200, ge=1, le=65535, description="Prefect server (API and UI)")
    mlflow_port: int = Field(5000, ge=1, le=65535, description="MLflow UI")
    work_pool: str = Field("rstar", min_length=1, description="process work pool of the worker")
    run_dir: Path = Field(
        Path("runs"), validate_default=True, description="the pipeline's run directory"
    )
    state_dir: Path = Field(
        default_factory=lambda data: data["run_dir"] / "stack",
        validate_default=True,
        description="PID files, logs and PREFECT_HOME; default <run_dir>/stack",
    )
    project_dir: Path = Field(
        Path("."),
        validate_default=True,
        description="where `prefect deploy` looks for prefect.yaml and the worker runs flows "
        "from: the checkout the stack is started in (default: the current directory)",
    )
    worker_query_seconds: float = Field(
        5.0, gt=0, description="how often the worker polls for scheduled flow runs"
    )
    mlflow_tracking_uri: str = Field(
        default_factory=lambda data: Tracking.for_run(data["run_dir"]).tracking_uri,
        description="MLflow backend store; default sqlite:///<run_dir>/mlflow/mlflow.db",
    )
    mlflow_artifact_root: str = Field(
        default_factory=lambda data: Tracking.for_run(data["run_dir"]).artifact_location,
        description="MLflow artifact root; default <run_dir>/mlflow/artifacts",
    )
    teacher: Path | None = Field(
        None,
        description="a checkpoint to serve as the synthesis teacher (`rstar serve --execute`, "
        "e.g. runs/toy/teacher from `rstar toy teacher`); default: no teacher",
    )
    teacher_port: int = Field(8100, ge=1, le=65535, description="the teacher's port")
    teacher_name: str = Field(
        "toy-teacher", min_length=1, description="the model name the teacher serves"
    )
    teacher_api_key_env: str | None = Field(
        None, description="environment variable holding the key the teacher asks clients for"
    )
    chain_rounds: bool = Field(
        True,
        description="start round N+1 when a run of round N's deployment completes (the "
        "deployments' triggers; also switchable on the Prefect UI's Automations page)",
    )
    startup_timeout: float = Field(120.0, gt=0, description="seconds to wait for each service")
    stop_timeout: float = Field(10.0, gt=0, description="seconds to wait after each signal")

    @field_validator("run_dir", "state_dir", "project_dir", "teacher")
    @classmethod
    def _resolve(cls, path: Path | None) -> Path | None:
        return None if path is None else absolute_path(path)

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackConfig:
        ports = {"prefect_port": self.prefect_port, "mlflow_port": self.mlflow_port}
        if self.teacher is not None:
            ports["teacher_port"] = self.teacher_port
        seen: dict[int, str] = {}
        for name, port in ports.items():
            if port in seen:
                raise ValueError(f"{seen[port]} and {name} are both {port}")
            seen[port] = name
        return self

    @property
    def components(self) -> tuple[str, ...]:
        """The components this stack runs: the teacher only when one is configured."""
        return tuple(n for n in COMPONENTS if n != TEACHER or self.teacher is not None)

    @field_validator("mlflow_artifact_root")
    @classmethod
    def _artifact_uri(cls, root: str) -> str:
        """A plain directory becomes an absolute ``file://`` URI (as in ``Tracking``)."""
        return root if "://" in root else absolute_path(Path(root)).as_uri()

    @property
    def prefect_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def teacher_url(self) -> str:
        """The teacher's OpenAI-compatible base URL (a profile's synthesis.teacher.base_url)."""
        return f"http://{self.host}:{self.teacher_port}/v1"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def worker_name(self) -> str:
        return f"{self.work_pool}-worker"


def stack_env(config: StackConfig) -> dict[str, str]:
    """The variables every stack process (and any client of the stack) runs with.

    Only the stack's own variables: merge them over ``os.environ`` to run something.
    """
    return {
        "PREFECT_API_URL": f"{config.prefect_url}/api",
        "PREFECT_HOME": str(config.state_dir / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(config.run_dir / "prefect" / "results"),
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_WORKER_QUERY_SECONDS": f"{config.worker_query_seconds:g}",
        "MLFLOW_TRACKING_URI": config.mlflow_tracking_uri,
        "RSTAR_MLFLOW_UI": config.mlflow_url,  # where a round links its MLflow run
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "RSTAR_RUN_DIR": str(config.run_dir),
    }


def env_exports(config: StackConfig) -> str:
    """:func:`stack_env` as ``export K=V`` lines for ``eval "$(rstar stack env)"``."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in stack_env(config).items())


def save_config(config: StackConfig) -> None:
    """Record the configuration of a started stack (``status``, ``stop`` and ``env`` read it)."""
    text = config.model_dump_json(indent=2)
    atomic_write(config.state_dir / CONFIG_FILE, lambda tmp: tmp.write_text(text))


def saved_config(state_dir: Path) -> StackConfig | None:
    """The configuration the stack in ``state_dir`` was last started with, if any."""
    path = state_dir / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return StackConfig.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise StackError(f"{path} is not a stack configuration ({exc}); delete it") from exc
