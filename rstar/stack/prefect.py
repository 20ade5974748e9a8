"""Prefect through its command line: the stack's work pool and ``prefect deploy``."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import httpx
from rich.console import Console

from rstar.stack.config import StackConfig, StackError
from rstar.stack.health import request, work_pool
from rstar.stack.processes import executable

ROUND_NAME = re.compile(r"round-\d+")  # the deployments of single rounds


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
    argv = [executable("prefect"), "work-pool", "create", config.work_pool, "--type", "process"]
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
    argv = [executable("prefect"), "--no-prompt", "deploy", "--all"]
    with console.status(f"deploying {config.project_dir / 'prefect.yaml'}…"):
        _run_cli(config, argv, config.project_dir, "prefect deploy", env)
    console.print(f"[green]✓[/green] deployed {config.project_dir / 'prefect.yaml'}")
    return True


def chain_rounds(config: StackConfig, enabled: bool) -> int:
    """Switch the automations that start round N+1 when round N completes (made from the
    triggers of prefect.yaml's round deployments) on or off; returns how many there are."""
    api = f"{config.prefect_url}/api"

    def call(path: str, method: str = "POST", **body: object) -> httpx.Response:
        response = request(f"{api}/{path}", method, json=body)
        if response is None:
            raise StackError(f"the Prefect server at {config.prefect_url} does not answer")
        response.raise_for_status()
        return response

    deployments = call("deployments/filter", flows={"name": {"any_": ["evolve"]}}).json()
    rounds = {d["id"] for d in deployments if ROUND_NAME.fullmatch(d["name"])}
    chained = [
        automation
        for automation in call("automations/filter").json()
        if any(action.get("deployment_id") in rounds for action in automation["actions"])
    ]
    for automation in chained:
        call(f"automations/{automation['id']}", "PATCH", enabled=enabled)
    return len(chained)
