"""`Sandbox`: a pool of fork servers that run model-written programs, one at a time each."""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import IO

from rstar.sandbox.isolation import (
    SCRATCH_ROOT,
    UNPRIVILEGED_UIDS,
    IsolationLevel,
    choose,
    drops_privileges,
    hidden_dirs,
    server_command,
)
from rstar.sandbox.result import ExecResult
from rstar.sandbox.worker import Worker, spawn

# Imported once per worker, before any fork: what model-written math code reaches for. scipy's
# subpackages (optimize, stats, ...) are left to load on first use: preloading them would cost
# every execution a third more (a bigger template to fork) to save the few that use them.
DEFAULT_PRELOAD = (
    "math",
    "cmath",
    "fractions",
    "decimal",
    "itertools",
    "functools",
    "collections",
    "statistics",
    "random",
    "re",
    "string",
    "datetime",
    "sympy",
    "numpy",
    "scipy",
)


class Sandbox:
    """Runs untrusted Python in isolated, short-lived processes; see the package docstring.

    >>> with Sandbox(timeout=10.0, memory_mb=1024) as sb:
    ...     sb.run("print(6 * 7)").stdout
    '42\\n'

    `timeout` (seconds of wall clock) and `memory_mb` (address space on top of the preloaded
    template) hold for each program. `workers` fork servers run programs in parallel (default:
    the CPU count). `max_output` bytes of stdout are kept (head and tail halves); `disk_mb` bounds
    each file and the whole scratch space; `max_procs` bounds processes and threads per program.
    `batch_size` programs at most go to a worker at once (`run_many`).
    `isolation` forces a level (RuntimeError if it does not work here); by default the strongest
    that works is taken, and `isolation` tells which.
    """

    def __init__(
        self,
        timeout: float = 10.0,
        memory_mb: int = 1024,
        workers: int | None = None,
        *,
        max_output: int = 16_384,
        disk_mb: int = 64,
        max_procs: int = 16,
        isolation: IsolationLevel | str | None = None,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        batch_size: int = 32,
    ) -> None:
        workers = (os.cpu_count() or 1) if workers is None else workers
        for name, value, least in (
            ("timeout", timeout, 0),
            ("memory_mb", memory_mb, 0),
            ("workers", workers, 0),
            ("max_output", max_output, 1),
            ("disk_mb", disk_mb, 0),
            ("max_procs", max_procs, 0),
        ):
            if not value > least:
                raise ValueError(f"Sandbox({name}={value!r}): must be greater than {least}")
        self.timeout = float(timeout)
        self.memory_mb = memory_mb
        self.workers = workers
        self.max_output = max_output
        self.disk_mb = disk_mb
        self.max_procs = max_procs
        self.preload = tuple(preload)
        self.batch_size = batch_size
        self.isolation = choose(None if isolation is None else IsolationLevel(isolation))
        self.drops_privileges = drops_privileges()
        self._workers: list[Worker] = []
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        self._scratch_roots: list[str] = []
        self._pool: ThreadPoolExecutor | None = None
        self._spawner: ThreadPoolExecutor | None = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> Sandbox:
        """Start every fork server and wait until they have imported their libraries."""
        if self._pool is not None:
            return self
        # bwrap dies with the thread that started it (PR_SET_PDEATHSIG), so one long-lived thread
        # starts every server, however short-lived the thread that needed a restart.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="rstar-sandbox-spawn")
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="rstar-sandbox")
        try:
            self._workers = [Worker(self._command(), self._spawn) for _ in range(self.workers)]
            for worker in self._workers:
                worker.start()
            for worker in self._workers:
                worker.wait_ready()
                self._idle.put(worker)
        except BaseException:
            self.close()
            raise
        return self

    def run(self, code: str, timeout: float | None = None) -> ExecResult:
        """Run one program in a fresh process; blocks while every worker is busy."""
        if not isinstance(code, str):
            raise TypeError(f"Sandbox.run: code must be str, got {type(code).__name__}")
        if self._pool is None:
            raise RuntimeError("Sandbox is not started: use `with Sandbox() as sb:` or start()")
        limit = self.timeout if timeout is None else float(timeout)
        if not limit > 0:
            raise ValueError(f"Sandbox.run(timeout={timeout!r}): must be positive")
        worker = self._idle.get()
        try:
            start = time.perf_counter()
            reply = worker.execute(code, limit)
            duration = time.perf_counter() - start
        finally:
            self._idle.put(worker)
        return ExecResult(reply["ok"], reply["stdout"], reply["error"], duration)

    def run_many(self, codes: Sequence[str], timeout: float | None = None) -> list[ExecResult]:
        """Run programs in parallel over the workers; results in the order of `codes`.

        The programs go to the workers in batches of up to `batch_size`. A worker runs the
        simple programs of a batch (straight-line arithmetic that is printed, see
        `rstar.sandbox._server.is_simple`) one after another in one child process, each in a
        fresh namespace, and every other program in a child of its own; a simple program's
        `duration` is then its batch's time shared out. Each program keeps `timeout`.
        """
        if self._pool is None:
            raise RuntimeError("Sandbox is not started: use `with Sandbox() as sb:` or start()")
        for code in codes:
            if not isinstance(code, str):
                raise TypeError(f"Sandbox.run_many: codes must be str, got {type(code).__name__}")
        limit = self.timeout if timeout is None else float(timeout)
        if not limit > 0:
            raise ValueError(f"Sandbox.run_many(timeout={timeout!r}): must be positive")
        size = max(1, min(self.batch_size, -(-len(codes) // self.workers)))
        batches = [list(codes[i : i + size]) for i in range(0, len(codes), size)]
        return [
            r
            for batch in self._pool.map(lambda b: self._run_batch(b, limit), batches)
            for r in batch
        ]

    def _run_batch(self, codes: list[str], timeout: float) -> list[ExecResult]:
        if len(codes) == 1:
            return [self.run(codes[0], timeout)]
        worker = self._idle.get()
        try:
            start = time.perf_counter()
            replies = worker.execute_batch(codes, timeout)
            share = (time.perf_counter() - start) / len(codes)
        finally:
            self._idle.put(worker)
        return [ExecResult(r["ok"], r["stdout"], r["error"], share) for r in replies]

    @property
    def worker_pids(self) -> list[int]:
        """Host pids of the workers' outermost processes; everything a program runs descends
        from one of them (monitoring, and the tests' proof that nothing outlives a call)."""
        return [pid for worker in self._workers if (pid := worker.pid) is not None]

    @property
    def restarts(self) -> int:
        """How many times a fork server was replaced (it hung, died or broke the protocol)."""
        return sum(worker.restarts for worker in self._workers)

    def close(self) -> None:
        """Kill every fork server (and so everything that ran in it). Idempotent."""
        for worker in self._workers:
            worker.close()
        self._workers = []
        for executor in (self._pool, self._spawner):
            if executor is not None:
                executor.shutdown(wait=True)
        self._pool = self._spawner = None
        self._idle = queue.SimpleQueue()
        for root in self._scratch_roots:
            shutil.rmtree(root, ignore_errors=True)
        self._scratch_roots = []

    def _spawn(self, command: list[str], stderr: IO[bytes]) -> subprocess.Popen[bytes]:
        assert self._spawner is not None
        return self._spawner.submit(spawn, command, stderr).result()

    def _command(self) -> list[str]:
        if self.isolation is IsolationLevel.FORK:
            # No private /tmp: each worker gets its own host directory, traversable by the child.
            root = tempfile.mkdtemp(prefix="rstar-sandbox-")
            os.chmod(root, 0o711)
            self._scratch_roots.append(root)
        else:
            root = SCRATCH_ROOT
        config = {
            "uid": secrets.choice(UNPRIVILEGED_UIDS) if self.drops_privileges else None,
            "memory_mb": self.memory_mb,
            "disk_mb": self.disk_mb,
            "max_procs": self.max_procs,
            "max_output": self.max_output,
            "scratch_root": root,
            # bwrap sets up the file system itself; under unshare the server does.
            "private_mounts": (
                hidden_dirs(self.isolation) if self.isolation is IsolationLevel.UNSHARE else None
            ),
            "preload": list(self.preload),
        }
        return server_command(self.isolation, config, self.disk_mb * 2**20)
