"""The stack's components: how each is started, its PID record and its log file."""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from rstar.stack.config import MLFLOW, SERVER, TEACHER, WORKER, StackConfig, StackError


@dataclass(frozen=True)
class ComponentStatus:
    """One component as ``status`` sees it."""

    name: str
    pid: int | None
    url: str | None
    running: bool
    healthy: bool
    log: Path


@dataclass(frozen=True)
class Record:
    """The content of a PID file: the process's create time guards against PID reuse."""

    component: str
    pid: int
    create_time: float
    argv: list[str]
    log: str

    def process(self) -> psutil.Process | None:
        """The live process this record names, or None (gone, zombie, or PID reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 1.0:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        return proc


@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    cwd: Path
    url: str | None
    port: int | None
    port_option: str | None
    extra_env: dict[str, str]
    stop_signals: tuple[signal.Signals, ...]  # sent in turn, stop_timeout apart


def executable(name: str) -> str:
    """The venv's console script ``name`` (next to the running Python)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise StackError(f"{path} not found: install the project into this venv (pip install -e .)")
    return str(path)


GRACEFUL = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def _teacher(config: StackConfig) -> Component:
    """``rstar serve --execute`` over the teacher checkpoint (toy-sized models, on a CPU)."""
    argv = [
        *(executable("rstar"), "serve", str(config.teacher), "--execute"),
        *("--name", config.teacher_name, "--host", config.host, "--port", str(config.teacher_port)),
    ]
    if config.teacher_api_key_env:
        argv += ["--api-key-env", config.teacher_api_key_env]
    return Component(
        name=TEACHER,
        argv=argv,
        cwd=config.state_dir,
        url=config.teacher_url,
        port=config.teacher_port,
        port_option="--teacher-port",
        extra_env={},
        stop_signals=GRACEFUL[1:],  # uvicorn, as the MLflow UI
    )


def component_table(config: StackConfig) -> dict[str, Component]:
    """How each of the stack's components (``config.components``) is started."""
    prefect, mlflow = executable("prefect"), executable("mlflow")
    host = config.host
    table = {
        SERVER: Component(
            name=SERVER,
            argv=[prefect, "server", "start", "--host", host, "--port", str(config.prefect_port)],
            cwd=config.state_dir,
            url=config.prefect_url,
            port=config.prefect_port,
            port_option="--prefect-port",
            extra_env={},
            stop_signals=GRACEFUL,
        ),
        WORKER: Component(
            name=WORKER,
            argv=[
                *(prefect, "worker", "start"),
                *("--pool", config.work_pool, "--name", config.worker_name),
            ],
            cwd=config.project_dir,
            url=None,
            port=None,
            port_option=None,
            extra_env={},
            stop_signals=(signal.SIGINT, *GRACEFUL),
        ),
        MLFLOW: Component(
            name=MLFLOW,
            argv=[
                *(mlflow, "server", "--host", host, "--port", str(config.mlflow_port)),
                *("--workers", "1", "--backend-store-uri", config.mlflow_tracking_uri),
                *("--default-artifact-root", config.mlflow_artifact_root),
                *("--artifacts-destination", config.mlflow_artifact_root),
            ],
            cwd=config.state_dir,
            url=config.mlflow_url,
            port=config.mlflow_port,
            port_option="--mlflow-port",
            extra_env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            # uvicorn re-raises SIGINT after its shutdown, as a KeyboardInterrupt traceback
            stop_signals=GRACEFUL[1:],
        ),
    }
    if TEACHER in config.components:
        table[TEACHER] = _teacher(config)
    return table


# --- files --------------------------------------------------------------------------------


def pid_file(config: StackConfig, component: str) -> Path:
    """The PID file of ``component`` (JSON: pid, create_time, argv, log)."""
    return config.state_dir / f"{component}.pid"


def log_file(config: StackConfig, component: str) -> Path:
    return config.logs_dir / f"{component}.log"


def read_record(config: StackConfig, component: str) -> Record | None:
    path = pid_file(config, component)
    try:
        return Record(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise StackError(f"{path} is not a stack PID file ({exc}); delete it") from exc


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
