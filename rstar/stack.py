"""The local orchestration stack: Prefect server, a Prefect worker and the MLflow UI.

``rstar stack start`` runs three long-lived processes on 127.0.0.1, each in its own session
(so they outlive the command), each with a log file and a PID file under the state
directory (default ``<run_dir>/stack``):

- ``prefect-server``: ``prefect server start``; its database lives in an isolated
  ``PREFECT_HOME`` under the state directory, never the user's ``~/.prefect``.
- ``prefect-worker``: ``prefect worker start`` on the stack's process work pool, which
  ``start`` creates, after deploying the project's ``prefect.yaml`` when there is one.
- ``mlflow-ui``: ``mlflow server`` over the same sqlite store and artifact root that
  :meth:`rstar.tracking.Tracking.for_run` resolves, so the UI shows what the pipeline logs;
  one worker and no job runner keep it at two processes (~0.5 GB instead of ~3 GB).

Everything goes through the venv's ``prefect`` and ``mlflow`` executables (this module
never imports either). :func:`stack_env` is the environment all of them share; a client
that runs with it talks to the same server and writes results to the same storage.

``stop`` first interrupts the flow runs in progress (the worker starts them in sessions of
their own; interrupted while their worker lives, they report themselves crashed, so they
can be retried), then the worker, then the two servers. Each gets SIGINT, then SIGTERM,
then SIGKILL, ``stop_timeout`` seconds apart, sent to its whole process group and to any
descendant that left the group. The worker gets a second SIGINT before SIGTERM (its
handler turns a second interrupt into an immediate exit); the MLflow server starts at
SIGTERM, the signal uvicorn shuts down on without re-raising it as a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import typer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from rich.console import Console
from rich.table import Table

from rstar.console import console, fail
from rstar.store.layout import atomic_write
from rstar.tracking import Tracking

SERVER, WORKER, MLFLOW = "prefect-server", "prefect-worker", "mlflow-ui"
COMPONENTS = (SERVER, WORKER, MLFLOW)
TITLES = {SERVER: "Prefect server", WORKER: "Prefect worker", MLFLOW: "MLflow UI"}
CONFIG_FILE = "stack.json"


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says why and what to do."""


def _absolute(path: Path) -> Path:
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
    startup_timeout: float = Field(120.0, gt=0, description="seconds to wait for each service")
    stop_timeout: float = Field(10.0, gt=0, description="seconds to wait after each signal")

    @field_validator("run_dir", "state_dir", "project_dir")
    @classmethod
    def _resolve(cls, path: Path) -> Path:
        return _absolute(path)

    @model_validator(mode="after")
    def _distinct_ports(self) -> StackConfig:
        if self.prefect_port == self.mlflow_port:
            raise ValueError(f"prefect_port and mlflow_port are both {self.prefect_port}")
        return self

    @field_validator("mlflow_artifact_root")
    @classmethod
    def _artifact_uri(cls, root: str) -> str:
        """A plain directory becomes an absolute ``file://`` URI (as in ``Tracking``)."""
        return root if "://" in root else _absolute(Path(root)).as_uri()

    @property
    def prefect_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

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
class _Record:
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
class _Component:
    name: str
    argv: list[str]
    cwd: Path
    url: str | None
    port: int | None
    port_option: str | None
    extra_env: dict[str, str]
    stop_signals: tuple[signal.Signals, ...]  # sent in turn, stop_timeout apart


def _executable(name: str) -> str:
    """The venv's console script ``name`` (next to the running Python)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise StackError(f"{path} not found: install the project into this venv (pip install -e .)")
    return str(path)


_GRACEFUL = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def _components(config: StackConfig) -> dict[str, _Component]:
    prefect, mlflow = _executable("prefect"), _executable("mlflow")
    host = config.host
    return {
        SERVER: _Component(
            name=SERVER,
            argv=[prefect, "server", "start", "--host", host, "--port", str(config.prefect_port)],
            cwd=config.state_dir,
            url=config.prefect_url,
            port=config.prefect_port,
            port_option="--prefect-port",
            extra_env={},
            stop_signals=_GRACEFUL,
        ),
        WORKER: _Component(
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
            stop_signals=(signal.SIGINT, *_GRACEFUL),
        ),
        MLFLOW: _Component(
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
            stop_signals=_GRACEFUL[1:],
        ),
    }


# --- files --------------------------------------------------------------------------------


def pid_file(config: StackConfig, component: str) -> Path:
    """The PID file of ``component`` (JSON: pid, create_time, argv, log)."""
    return config.state_dir / f"{component}.pid"


def log_file(config: StackConfig, component: str) -> Path:
    return config.logs_dir / f"{component}.log"


def _read_record(config: StackConfig, component: str) -> _Record | None:
    path = pid_file(config, component)
    try:
        return _Record(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise StackError(f"{path} is not a stack PID file ({exc}); delete it") from exc


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# --- health -------------------------------------------------------------------------------


def _request(url: str, method: str = "GET", **kwargs: Any) -> httpx.Response | None:
    """A request to one of the stack's servers; None when nothing answers."""
    try:
        return httpx.request(method, url, timeout=3.0, trust_env=False, **kwargs)
    except httpx.HTTPError:
        return None


def prefect_healthy(config: StackConfig) -> bool:
    """The Prefect API answers its health check."""
    response = _request(f"{config.prefect_url}/api/health")
    return response is not None and response.status_code == 200 and response.text == "true"


def mlflow_healthy(config: StackConfig) -> bool:
    """The MLflow server answers its health check."""
    response = _request(f"{config.mlflow_url}/health")
    return response is not None and response.status_code == 200


def worker_online(config: StackConfig) -> bool:
    """The stack's worker has a recent heartbeat in its work pool (Prefect status ONLINE)."""
    url = f"{config.prefect_url}/api/work_pools/{config.work_pool}/workers/filter"
    response = _request(url, "POST", json={})
    if response is None or response.status_code != 200:
        return False
    return any(w["name"] == config.worker_name and w["status"] == "ONLINE" for w in response.json())


def work_pool(config: StackConfig) -> dict[str, Any] | None:
    """The stack's work pool as the Prefect API returns it, or None when it does not exist."""
    response = _request(f"{config.prefect_url}/api/work_pools/{config.work_pool}")
    if response is None:
        raise StackError(f"the Prefect server at {config.prefect_url} does not answer")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


_HEALTH: dict[str, Callable[[StackConfig], bool]] = {
    SERVER: prefect_healthy,
    WORKER: worker_online,
    MLFLOW: mlflow_healthy,
}


def _port_free(host: str, port: int) -> bool:
    """Nothing listens on ``host:port`` (TIME_WAIT leftovers of a stopped server are fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise StackError(f"cannot listen on {host}:{port} ({exc}): check --host") from exc
    return True


# --- start --------------------------------------------------------------------------------


def _spawn(config: StackConfig, component: _Component, env: dict[str, str]) -> _Record:
    log = log_file(config, component.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    component.cwd.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(f"=== {stamp} rstar stack: {shlex.join(component.argv)}\n".encode())
        handle.flush()
        proc = subprocess.Popen(
            component.argv,
            cwd=component.cwd,
            env={**env, **component.extra_env},
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = _Record(
        component.name, proc.pid, psutil.Process(proc.pid).create_time(), component.argv, str(log)
    )
    with warnings.catch_warnings():  # it outlives this handle by design; stop() ends it
        warnings.simplefilter("ignore", ResourceWarning)
        del proc
    text = json.dumps(asdict(record))
    atomic_write(pid_file(config, component.name), lambda tmp: tmp.write_text(text))
    return record


def _wait_until(
    what: str,
    ready: Callable[[], bool],
    record: _Record,
    timeout: float,
    console: Console,
) -> float:
    """Poll ``ready`` under a spinner until it holds; the seconds it took.

    Fails early (with the log tail) when the process exits, and after ``timeout`` seconds.
    """
    start = time.monotonic()
    with console.status(f"waiting for {what}…"):
        while not ready():
            if record.process() is None:
                with contextlib.suppress(psutil.Error):  # reap it, when it is our child
                    psutil.Process(record.pid).wait(timeout=0)
                raise StackError(
                    f"{what} exited while starting; last lines of {record.log}:\n"
                    f"{_log_tail(Path(record.log))}"
                )
            if time.monotonic() - start > timeout:
                raise StackError(
                    f"{what} did not come up within {timeout:g} s; last lines of {record.log}:\n"
                    f"{_log_tail(Path(record.log))}"
                )
            time.sleep(0.25)
    return time.monotonic() - start


def _run_cli(
    config: StackConfig, argv: list[str], cwd: Path, what: str, env: dict[str, str]
) -> None:
    """Run a short ``prefect`` command, its output appended to ``logs/cli.log``."""
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=config.startup_timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"{what} took over {config.startup_timeout:g} s: {shlex.join(argv)}"
        ) from exc
    output = done.stdout + done.stderr
    log = config.logs_dir / "cli.log"
    with log.open("a") as handle:
        handle.write(f"=== {shlex.join(argv)} (exit {done.returncode})\n{output}\n")
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        raise StackError(f"{what} failed (exit {done.returncode}): {shlex.join(argv)}\n{tail}")


def ensure_work_pool(config: StackConfig, env: dict[str, str]) -> bool:
    """Create the stack's process work pool unless it exists; True when it was created."""
    pool = work_pool(config)
    if pool is not None:
        if pool["type"] != "process":
            raise StackError(
                f"work pool {config.work_pool!r} exists with type {pool['type']!r}, not "
                "'process': delete it in the Prefect UI or choose another with --work-pool"
            )
        return False
    argv = [_executable("prefect"), "work-pool", "create", config.work_pool, "--type", "process"]
    _run_cli(config, argv, config.state_dir, f"creating work pool {config.work_pool!r}", env)
    return True


def deploy(config: StackConfig, env: dict[str, str], console: Console) -> bool:
    """``prefect --no-prompt deploy --all`` in the project directory; False without prefect.yaml."""
    if not (config.project_dir / "prefect.yaml").is_file():
        console.print(
            f"[yellow]no prefect.yaml in {config.project_dir}: nothing deployed[/yellow] "
            "(choose the project with --project-dir)"
        )
        return False
    argv = [_executable("prefect"), "--no-prompt", "deploy", "--all"]
    with console.status(f"deploying {config.project_dir / 'prefect.yaml'}…"):
        _run_cli(config, argv, config.project_dir, "prefect deploy", env)
    console.print(f"[green]✓[/green] deployed {config.project_dir / 'prefect.yaml'}")
    return True


def _running(config: StackConfig) -> dict[str, _Record]:
    """The components whose PID file names a live process; stale PID files are removed."""
    live = {}
    for name in COMPONENTS:
        record = _read_record(config, name)
        if record is None:
            continue
        if record.process() is None:
            pid_file(config, name).unlink(missing_ok=True)
        else:
            live[name] = record
    return live


def _differences(running: StackConfig, requested: StackConfig) -> str:
    """The settings (timeouts aside) in which ``requested`` differs from ``running``."""
    ignore = {"startup_timeout", "stop_timeout"}
    old, new = running.model_dump(exclude=ignore), requested.model_dump(exclude=ignore)
    return ", ".join(f"{k} {old[k]} -> {new[k]}" for k in old if old[k] != new[k])


def start(config: StackConfig, console: Console | None = None) -> list[ComponentStatus]:
    """Start what is not running yet, create the work pool, deploy, and wait until all answer.

    On failure the processes this call started are stopped again and :class:`StackError`
    says what went wrong (with the tail of the failing component's log).
    """
    console = console or Console()
    components = _components(config)
    running = _running(config)
    previous = saved_config(config.state_dir)
    if running and previous is not None:
        changed = _differences(previous, config)
        if changed:
            raise StackError(
                f"the stack in {config.state_dir} runs with other settings ({changed}): "
                "run `rstar stack stop` first, or start it with the same options"
            )
    for name, component in components.items():
        if name in running or component.port is None:
            continue
        if not _port_free(config.host, component.port):
            raise StackError(
                f"port {component.port} on {config.host} ({TITLES[name]}) is in use by another "
                f"program: stop it or choose another port with {component.port_option}"
            )
    for directory in (config.state_dir, config.logs_dir, config.run_dir / "prefect" / "results"):
        directory.mkdir(parents=True, exist_ok=True)
    if config.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(config.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    save_config(config)
    env = {**os.environ, **stack_env(config)}
    started: list[str] = []

    def launch(name: str) -> _Record:
        if name in running:
            return running[name]
        record = _spawn(config, components[name], env)
        started.append(name)
        return record

    def wait(name: str, record: _Record) -> None:
        seconds = _wait_until(
            TITLES[name],
            lambda: _HEALTH[name](config),
            record,
            config.startup_timeout,
            console,
        )
        where = components[name].url or f"pool {config.work_pool!r}"
        took = "already running" if name in running else f"up in {seconds:.1f} s"
        console.print(f"[green]✓[/green] {TITLES[name]} pid {record.pid} {where} ({took})")

    try:
        server = launch(SERVER)
        mlflow = launch(MLFLOW)  # boots while the Prefect side is set up
        wait(SERVER, server)
        if ensure_work_pool(config, env):
            console.print(f"[green]✓[/green] created process work pool {config.work_pool!r}")
        deploy(config, env, console)
        wait(WORKER, launch(WORKER))
        wait(MLFLOW, mlflow)
    except BaseException:
        _stop_components(config, [n for n in COMPONENTS if n in started], console)
        raise
    _print_usage(config, console)
    return status(config)


def _print_usage(config: StackConfig, console: Console) -> None:
    where = "" if config.run_dir == _absolute(Path("runs")) else f" --run-dir {config.run_dir}"
    if config.state_dir != config.run_dir / "stack":
        where += f" --state-dir {config.state_dir}"
    console.print(
        f"\nPrefect UI: [bold]{config.prefect_url}[/bold]\n"
        f"MLflow UI:  [bold]{config.mlflow_url}[/bold]\n"
        f"Logs:       {config.logs_dir}\n"
        f'Client env: eval "$(rstar stack env{where})"\n'
        f"Stop with:  rstar stack stop{where}"
    )


# --- stop / status ------------------------------------------------------------------------


# The worker before the servers: it reports to the Prefect server while it stops.
STOP_ORDER = ((WORKER,), (SERVER, MLFLOW))


@dataclass(eq=False)
class _Stopping:
    """Processes being stopped together and where they are in their signal sequence.

    Signals go to each of ``groups`` as a whole and to each tracked process outside them;
    the descendants of the processes given at the start are tracked as they appear.
    """

    title: str
    procs: list[psutil.Process]
    signals: tuple[signal.Signals, ...]
    groups: frozenset[int]
    sent: int = 0
    deadline: float = 0.0
    roots: list[psutil.Process] = field(init=False)

    def __post_init__(self) -> None:
        self.roots = list(self.procs)

    def alive(self) -> list[psutil.Process]:
        """The live processes (new descendants added, exited ones reaped)."""
        for root in self.roots:
            with contextlib.suppress(psutil.Error):
                if root.is_running():
                    self.procs.extend(
                        p for p in root.children(recursive=True) if p not in self.procs
                    )
        self.procs = psutil.wait_procs(self.procs, timeout=0)[1]
        return self.procs

    def send(self, sig: signal.Signals) -> None:
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig)
        for proc in self.procs:
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) not in self.groups:
                    proc.send_signal(sig)


def _pgid(proc: psutil.Process) -> int:
    """The process group of ``proc``; 0 when it is gone."""
    try:
        return os.getpgid(proc.pid)
    except ProcessLookupError:
        return 0


def _detached(root: psutil.Process) -> list[psutil.Process]:
    """Descendants of a process-group leader that run in other groups (flow runs)."""
    try:
        return [p for p in root.children(recursive=True) if _pgid(p) not in {0, root.pid}]
    except psutil.Error:
        return []


def _stop_together(items: list[_Stopping], timeout: float, console: Console) -> list[_Stopping]:
    """Signal ``items`` concurrently, ``timeout`` seconds apart, until they exit.

    Returns those that survived their last signal.
    """
    pending, failed = list(items), []
    with console.status(f"stopping {', '.join(item.title for item in items)}…"):
        while pending:
            now = time.monotonic()
            for item in list(pending):
                if not item.alive():
                    pending.remove(item)
                    console.print(f"[green]✓[/green] stopped {item.title}")
                elif now < item.deadline:
                    continue
                elif item.sent == len(item.signals):
                    pending.remove(item)
                    failed.append(item)
                else:
                    item.send(item.signals[item.sent])
                    item.sent += 1
                    item.deadline = now + timeout
            time.sleep(0.1)
    return failed


def _stop_components(config: StackConfig, names: list[str], console: Console) -> list[str]:
    """Stop the live components among ``names``; the names of those that were live.

    First the processes they started in process groups of their own (the worker's flow
    runs: a flow run whose worker is gone cannot report that it crashed), then the
    components in :data:`STOP_ORDER`.
    """
    components = _components(config)
    live: dict[str, _Stopping] = {}
    for name in names:
        record = _read_record(config, name)
        root = record.process() if record else None
        if record is not None and root is not None:
            title = f"{TITLES[name]} (pid {record.pid})"
            signals = components[name].stop_signals
            live[name] = _Stopping(title, [root], signals, frozenset({record.pid}))
        else:
            pid_file(config, name).unlink(missing_ok=True)
    waves = [
        [
            _Stopping(
                f"{len(procs)} process(es) started by {TITLES[name]}",
                procs,
                _GRACEFUL,
                frozenset(_pgid(p) for p in procs) - {0},
            )
            for name, item in live.items()
            if (procs := _detached(item.roots[0]))
        ],
        *([live[n] for n in wave if n in live] for wave in STOP_ORDER),
    ]
    failed = []
    for wave in waves:
        if wave:
            failed += _stop_together(wave, config.stop_timeout, console)
    for name, item in live.items():
        if item not in failed:
            pid_file(config, name).unlink(missing_ok=True)
    if failed:
        survivors = "; ".join(f"{i.title}: pids {[p.pid for p in i.procs]}" for i in failed)
        raise StackError(f"still running after SIGKILL: {survivors}")
    return list(live)


def stop(config: StackConfig, console: Console | None = None) -> list[str]:
    """Stop every running component; the names of those that were running (none: no-op)."""
    console = console or Console()
    stopped = _stop_components(config, list(COMPONENTS), console)
    if not stopped:
        console.print(f"nothing running (state in {config.state_dir})")
    return stopped


def status(config: StackConfig) -> list[ComponentStatus]:
    """Each component: its PID when running, its URL, and whether it answers."""
    components = _components(config)
    result = []
    for name in COMPONENTS:
        record = _read_record(config, name)
        live = record is not None and record.process() is not None
        result.append(
            ComponentStatus(
                name=name,
                pid=record.pid if live and record else None,
                url=components[name].url,
                running=live,
                healthy=live and _HEALTH[name](config),
                log=log_file(config, name),
            )
        )
    return result


# --- command line -------------------------------------------------------------------------

stack_app = typer.Typer(
    help="The local Prefect server, worker and MLflow UI (127.0.0.1).", no_args_is_help=True
)


def _option(name: str, **kwargs: Any) -> Any:
    """An option for the :class:`StackConfig` field ``name``: its description (and default)."""
    info = StackConfig.model_fields[name]
    shown = False if info.default_factory else str(info.default)
    return typer.Option(None, help=info.description, show_default=shown, **kwargs)


RUN_DIR = _option("run_dir", envvar="RSTAR_RUN_DIR")
STATE_DIR = _option("state_dir")
PROJECT_DIR_OPTION = _option("project_dir")


def _config(**options: Any) -> StackConfig:
    """A config from the options given on the command line (the rest: StackConfig defaults)."""
    try:
        return StackConfig(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        raise fail(exc) from exc


def _located(run_dir: Path | None, state_dir: Path | None) -> StackConfig:
    """The configuration of the stack in that state directory (as started), else defaults."""
    config = _config(run_dir=run_dir, state_dir=state_dir)
    try:
        return saved_config(config.state_dir) or config
    except StackError as exc:
        raise fail(exc, code=1) from exc


@stack_app.command("start")
def start_command(
    host: str | None = _option("host"),
    prefect_port: int | None = _option("prefect_port"),
    mlflow_port: int | None = _option("mlflow_port"),
    work_pool: str | None = _option("work_pool"),
    run_dir: Path | None = RUN_DIR,
    state_dir: Path | None = STATE_DIR,
    project_dir: Path | None = PROJECT_DIR_OPTION,
    worker_query_seconds: float | None = _option("worker_query_seconds"),
    backend_store_uri: str | None = _option("mlflow_tracking_uri"),
    artifact_root: str | None = _option("mlflow_artifact_root"),
    timeout: float | None = _option("startup_timeout"),
) -> None:
    """Start the Prefect server, create the work pool, deploy, start the worker and MLflow UI."""
    config = _config(
        host=host,
        prefect_port=prefect_port,
        mlflow_port=mlflow_port,
        work_pool=work_pool,
        run_dir=run_dir,
        state_dir=state_dir,
        project_dir=project_dir,
        worker_query_seconds=worker_query_seconds,
        mlflow_tracking_uri=backend_store_uri,
        mlflow_artifact_root=artifact_root,
        startup_timeout=timeout,
    )
    try:
        start(config, console)
    except StackError as exc:
        raise fail(exc, code=1) from exc


@stack_app.command("stop")
def stop_command(
    run_dir: Path | None = RUN_DIR,
    state_dir: Path | None = STATE_DIR,
    timeout: float | None = _option("stop_timeout", min=0.1),
) -> None:
    """Stop the stack's processes by their PID files (SIGINT, then SIGTERM, then SIGKILL)."""
    config = _located(run_dir, state_dir)
    if timeout is not None:
        config = config.model_copy(update={"stop_timeout": timeout})  # validated by min=
    try:
        stop(config, console)
    except StackError as exc:
        raise fail(exc, code=1) from exc


@stack_app.command("status")
def status_command(run_dir: Path | None = RUN_DIR, state_dir: Path | None = STATE_DIR) -> None:
    """Show which components run, their PIDs and URLs, and whether they answer."""
    config = _located(run_dir, state_dir)
    table = Table("component", "pid", "url", "state", "log")
    for item in status(config):
        state = (
            "[green]healthy[/green]"
            if item.healthy
            else "[yellow]not answering[/yellow]"
            if item.running
            else "stopped"
        )
        table.add_row(item.name, str(item.pid or "-"), item.url or "-", state, str(item.log))
    console.print(table)


@stack_app.command("env")
def env_command(run_dir: Path | None = RUN_DIR, state_dir: Path | None = STATE_DIR) -> None:
    """Print the stack's environment as export lines: eval "$(rstar stack env)"."""
    typer.echo(env_exports(_located(run_dir, state_dir)), nl=False)
