"""``rstar stack start|stop|status|env``: the command line of :mod:`rstar.stack`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import (
    ValidationError,
)
from rich.table import Table

from rstar.cli.console import console, fail
from rstar.stack.config import StackConfig, StackError, env_exports, saved_config
from rstar.stack.start import start
from rstar.stack.stop import status, stop

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
TEACHER_OPTION = _option("teacher")


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
    teacher: Path | None = TEACHER_OPTION,
    teacher_port: int | None = _option("teacher_port"),
    teacher_name: str | None = _option("teacher_name"),
    teacher_api_key_env: str | None = _option("teacher_api_key_env"),
    chain: bool | None = typer.Option(
        None,
        "--chain-rounds/--no-chain-rounds",
        help=StackConfig.model_fields["chain_rounds"].description,
        show_default="on",
    ),
    timeout: float | None = _option("startup_timeout"),
) -> None:
    """Start the Prefect server, create the work pool, deploy, start the worker and MLflow UI,
    and with --teacher an OpenAI-compatible server for problem synthesis."""
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
        teacher=teacher,
        teacher_port=teacher_port,
        teacher_name=teacher_name,
        teacher_api_key_env=teacher_api_key_env,
        chain_rounds=chain,
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
