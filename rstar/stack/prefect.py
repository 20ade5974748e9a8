"""Prefect through its command line: the stack's work pool and ``prefect deploy``."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from rich.console import Console

from rstar.stack.config import StackConfig, StackError
from rstar.stack.health import work_pool
from rstar.stack.processes import executable


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
