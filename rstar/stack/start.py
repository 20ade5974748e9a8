"""``start``: the stack's components, each in a session of its own, waited for until healthy."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import psutil
from rich.console import Console

from rstar.atomic import atomic_write
from rstar.stack.config import (
    MLFLOW,
    SERVER,
    TEACHER,
    TITLES,
    WORKER,
    StackConfig,
    StackError,
    absolute_path,
    save_config,
    saved_config,
    stack_env,
)
from rstar.stack.health import HEALTH, port_free
from rstar.stack.prefect import chain_rounds, deploy, ensure_work_pool
from rstar.stack.processes import (
    Component,
    ComponentStatus,
    Record,
    component_table,
    log_file,
    log_tail,
    pid_file,
    read_record,
)
from rstar.stack.stop import status, stop_components
from rstar.tracking import MODEL_TRAINING_VIEW

# --- start --------------------------------------------------------------------------------


def _spawn(config: StackConfig, component: Component, env: dict[str, str]) -> Record:
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
    record = Record(
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
    record: Record,
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
                    f"{log_tail(Path(record.log))}"
                )
            if time.monotonic() - start > timeout:
                raise StackError(
                    f"{what} did not come up within {timeout:g} s; last lines of {record.log}:\n"
                    f"{log_tail(Path(record.log))}"
                )
            time.sleep(0.25)
    return time.monotonic() - start


def _running(config: StackConfig) -> dict[str, Record]:
    """The components whose PID file names a live process; stale PID files are removed."""
    live = {}
    for name in config.components:
        record = read_record(config, name)
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
    components = component_table(config)
    running = _running(config)
    previous = saved_config(config.state_dir)
    if running and previous is not None:
        changed = _differences(previous, config)
        if changed:
            raise StackError(
                f"the stack in {config.state_dir} runs with other settings ({changed}): "
                "run `rstar stack stop` first, or start it with the same options"
            )
    if TEACHER in components and not (config.teacher / "config.json").is_file():
        raise StackError(
            f"teacher {config.teacher} is not a model checkpoint (no config.json): build the "
            "toy teacher with `rstar toy teacher`, or name another checkpoint with --teacher"
        )
    for name, component in components.items():
        if name in running or component.port is None:
            continue
        if not port_free(config.host, component.port):
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

    def launch(name: str) -> Record:
        if name in running:
            return running[name]
        record = _spawn(config, components[name], env)
        started.append(name)
        return record

    def wait(name: str, record: Record) -> None:
        seconds = _wait_until(
            TITLES[name],
            lambda: HEALTH[name](config),
            record,
            config.startup_timeout,
            console,
        )
        where = components[name].url or f"pool {config.work_pool!r}"
        took = "already running" if name in running else f"up in {seconds:.1f} s"
        console.print(f"[green]✓[/green] {TITLES[name]} pid {record.pid} {where} ({took})")

    try:
        teacher = launch(TEACHER) if TEACHER in components else None  # loads meanwhile
        server = launch(SERVER)
        mlflow = launch(MLFLOW)  # boots while the Prefect side is set up
        wait(SERVER, server)
        if ensure_work_pool(config, env):
            console.print(f"[green]✓[/green] created process work pool {config.work_pool!r}")
        if deploy(config, env, console):
            chained = chain_rounds(config, config.chain_rounds)
            state = "on" if config.chain_rounds else "off"
            console.print(
                f"[green]✓[/green] {chained} automations starting the next round: {state}"
            )
        wait(WORKER, launch(WORKER))
        wait(MLFLOW, mlflow)
        if teacher is not None:
            wait(TEACHER, teacher)
    except BaseException:
        stop_components(config, [n for n in config.components if n in started], console)
        raise
    _print_usage(config, console)
    return status(config)


def _print_usage(config: StackConfig, console: Console) -> None:
    where = "" if config.run_dir == absolute_path(Path("runs")) else f" --run-dir {config.run_dir}"
    if config.state_dir != config.run_dir / "stack":
        where += f" --state-dir {config.state_dir}"
    teacher = (
        f"Teacher:    {config.teacher_url} (model {config.teacher_name!r})\n"
        if config.teacher is not None
        else ""
    )
    console.print(
        f"\nPrefect UI: [bold]{config.prefect_url}[/bold]\n"
        f"MLflow UI:  [bold]{config.mlflow_url}/#/experiments{MODEL_TRAINING_VIEW}[/bold]\n"
        f"{teacher}"
        f"Logs:       {config.logs_dir}\n"
        f'Client env: eval "$(rstar stack env{where})"\n'
        f"Stop with:  rstar stack stop{where}"
    )
