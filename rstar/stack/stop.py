"""``stop`` (flow runs, then the worker, then the servers; signals escalating) and ``status``."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field

import psutil
from rich.console import Console

from rstar.stack.config import MLFLOW, SERVER, TEACHER, TITLES, WORKER, StackConfig, StackError
from rstar.stack.health import HEALTH
from rstar.stack.processes import (
    GRACEFUL,
    ComponentStatus,
    component_table,
    log_file,
    pid_file,
    read_record,
)

# --- stop / status ------------------------------------------------------------------------


# The worker before the servers: it reports to the Prefect server while it stops.
STOP_ORDER = ((WORKER,), (SERVER, MLFLOW, TEACHER))


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


def stop_components(config: StackConfig, names: list[str], console: Console) -> list[str]:
    """Stop the live components among ``names``; the names of those that were live.

    First the processes they started in process groups of their own (the worker's flow
    runs: a flow run whose worker is gone cannot report that it crashed), then the
    components in :data:`STOP_ORDER`.
    """
    components = component_table(config)
    live: dict[str, _Stopping] = {}
    for name in names:
        record = read_record(config, name)
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
                GRACEFUL,
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
    stopped = stop_components(config, list(config.components), console)
    if not stopped:
        console.print(f"nothing running (state in {config.state_dir})")
    return stopped


def status(config: StackConfig) -> list[ComponentStatus]:
    """Each component: its PID when running, its URL, and whether it answers."""
    components = component_table(config)
    result = []
    for name in config.components:
        record = read_record(config, name)
        live = record is not None and record.process() is not None
        result.append(
            ComponentStatus(
                name=name,
                pid=record.pid if live and record else None,
                url=components[name].url,
                running=live,
                healthy=live and HEALTH[name](config),
                log=log_file(config, name),
            )
        )
    return result
