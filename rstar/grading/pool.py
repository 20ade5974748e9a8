"""Bounded-time math-verify checks in long-lived worker processes.

math-verify can run for ever: ``9^{9^{9^{9}}}`` has sympy build an integer with hundreds
of millions of digits inside C code that no Python signal handler interrupts, and
math-verify's own timeout uses ``signal.alarm``, which works only in the main thread.
So every check runs in a worker process that answers over a pipe; a worker that
overruns its deadline is killed, the check counts as not equivalent, and a fresh worker
is started on the next demand.

Workers are plain subprocesses running ``_verify_worker.py`` (not multiprocessing
children), so a pool can be used from any thread, from forked children and from
daemonic multiprocessing workers alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

_WORKER_SCRIPT = Path(__file__).with_name("_verify_worker.py")


class WorkerStartError(RuntimeError):
    """A math-verify worker process could not start (math-verify missing, or no memory)."""


class _Worker:
    """One worker process and its pipes; used by one thread at a time."""

    def __init__(self, memory_mb: int) -> None:
        # -P: keep the script's own folder off sys.path, so that our module names
        # (pool, extract, ...) cannot shadow a library the worker imports.
        self._process = subprocess.Popen(
            [sys.executable, "-P", str(_WORKER_SCRIPT), str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin = self._process.stdin
        self._stdout_fd = self._process.stdout.fileno()
        self._poller = select.poll()
        self._poller.register(self._stdout_fd, select.POLLIN)
        self._buffer = b""
        self._ready = False

    def _read_line(self, deadline: float) -> bytes | None:
        """The next line from the worker; None at the deadline or when the worker is gone."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poller.poll(remaining * 1000):
                return None
            chunk = os.read(self._stdout_fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _await_ready(self, startup_timeout: float) -> None:
        line = self._read_line(time.monotonic() + startup_timeout)
        if line == b"ready":
            self._ready = True
            return
        if line is not None:
            problem = line.decode(errors="replace")
        elif self._process.poll() is None:
            problem = f"no answer within {startup_timeout:g} s"
        else:
            problem = f"exited with status {self._process.returncode} (its stderr is above)"
        raise WorkerStartError(
            f"math-verify worker {_WORKER_SCRIPT} under {sys.executable} failed to start: "
            f"{problem}. Install math-verify into this interpreter "
            "(pip install 'math-verify[antlr4_13_2]')."
        )

    def check(
        self, prediction: str, reference: str, timeout: float, startup_timeout: float
    ) -> bool | None:
        """math-verify's verdict, or None when the worker overran ``timeout`` or died."""
        if not self._ready:
            self._await_ready(startup_timeout)
        deadline = time.monotonic() + timeout
        try:
            self._stdin.write(json.dumps([prediction, reference, timeout]).encode() + b"\n")
            self._stdin.flush()
        except BrokenPipeError:
            return None
        line = self._read_line(deadline)
        return None if line is None else line == b"1"

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        with contextlib.suppress(OSError):
            self._stdin.close()
        assert self._process.stdout is not None
        self._process.stdout.close()


class VerifierPool:
    """Up to ``max_workers`` math-verify worker processes, started on demand.

    ``verify`` may be called from many threads at once; each call uses one worker, so
    callers beyond ``max_workers`` wait for a free one. Close the pool (or use it as a
    context manager) to end its workers; they also exit when this process does.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        memory_mb: int = 4096,
        startup_timeout: float = 60.0,
    ) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.memory_mb = memory_mb
        self.startup_timeout = startup_timeout
        self._idle: list[_Worker] = []
        self._started = 0  # workers alive: idle + in use
        self._closed = False
        self._condition = threading.Condition()

    def _acquire(self) -> _Worker:
        with self._condition:
            while not self._idle and self._started >= self.max_workers and not self._closed:
                self._condition.wait()
            if self._closed:
                raise RuntimeError("VerifierPool is closed")
            if self._idle:
                return self._idle.pop()
            self._started += 1
        try:
            return _Worker(self.memory_mb)
        except BaseException:
            self._forget_one()
            raise

    def _forget_one(self) -> None:
        with self._condition:
            self._started -= 1
            self._condition.notify()

    def _release(self, worker: _Worker, healthy: bool) -> None:
        keep: _Worker | None = worker
        if not healthy:
            worker.kill()
            # Start the replacement now: it imports math-verify while callers are busy
            # elsewhere, instead of on the next caller's time.
            keep = None if self._closed else self._start_replacement()
        with self._condition:
            if keep is not None and not self._closed:
                self._idle.append(keep)
                self._condition.notify()
                return
        if keep is not None:
            keep.kill()
        self._forget_one()

    def _start_replacement(self) -> _Worker | None:
        try:
            return _Worker(self.memory_mb)
        except OSError:  # e.g. out of processes: the next caller starts one, or reports why
            return None

    def verify(self, prediction: str, reference: str, timeout: float) -> bool:
        """math-verify's verdict on the two answers; False if it takes over ``timeout`` s.

        The answers are LaTeX without delimiters; ``reference`` is the gold answer
        (math-verify is not symmetric). The time a worker needs to start does not count
        against ``timeout``.
        """
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        worker = self._acquire()
        verdict = None
        try:
            verdict = worker.check(prediction, reference, timeout, self.startup_timeout)
        finally:
            self._release(worker, healthy=verdict is not None)
        return bool(verdict)

    def close(self) -> None:
        """End the idle workers now, and the busy ones when their checks return."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for worker in idle:
            worker.kill()
            self._forget_one()

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
