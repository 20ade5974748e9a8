"""The host side of one fork server: start it, send it a program, enforce the deadline, restart it.

The server enforces each program's timeout itself; the worker's own deadline (timeout + `GRACE`)
only catches a server that stopped answering. Then, as when the server died or broke the
protocol, the worker kills the whole isolation layer (bwrap's pid namespace dies with it) and
starts a fresh server at once, so that it warms up while the caller goes on.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any

from rstar.sandbox._server import ProtocolError, read_frame, write_frame
from rstar.sandbox.isolation import SERVER_ENV

GRACE = 0.5  # seconds the server may take beyond a program's timeout to report it
STARTUP_TIMEOUT = 120.0  # importing sympy/numpy/scipy on a busy 2-core machine

Spawner = Callable[[list[str], IO[bytes]], subprocess.Popen[bytes]]


def spawn(command: list[str], stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start a fork server with a clean environment, its stderr to `stderr`."""
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=SERVER_ENV,
        start_new_session=True,
    )


class WorkerError(RuntimeError):
    """The fork server could not be started (what it printed is in the message)."""


class Worker:
    """One fork server process. Not thread-safe: one caller at a time (the Sandbox's pool)."""

    def __init__(self, command: list[str], spawner: Spawner) -> None:
        self.command = command
        self.spawner = spawner
        self.restarts = 0
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False

    @property
    def pid(self) -> int | None:
        """Host pid of the isolation layer's outermost process (bwrap, unshare or the server)."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the server without waiting for it to be ready."""
        self._stderr.seek(0)
        self._stderr.truncate()
        self._proc = self.spawner(self.command, self._stderr)
        self._ready = False

    def wait_ready(self) -> None:
        """Block until the server has imported its libraries; WorkerError if it cannot start."""
        if self._ready:
            return
        _, replies = self._pipes()
        try:
            hello = read_frame(replies, time.monotonic() + STARTUP_TIMEOUT)
        except (EOFError, TimeoutError, ProtocolError) as exc:
            self._kill()
            message = f"sandbox server did not start ({exc!r}): {self._server_errors()}"
            raise WorkerError(message) from exc
        if not hello.get("ready"):
            self._kill()
            raise WorkerError(f"sandbox server sent {hello!r} instead of ready")
        self._ready = True

    def execute(self, code: str, timeout: float) -> dict[str, Any]:
        """Run one program; returns the server's ``{"ok", "stdout", "error"}``.

        A server that dies (or garbles the protocol) is replaced and the program sent once more:
        the program cannot kill its server, so that was something else (an OOM kill, an admin).
        """
        for attempt in (1, 2):
            if self._proc is None or self._proc.poll() is not None:
                self._restart()
            self.wait_ready()
            requests, replies = self._pipes()
            try:
                write_frame(requests, {"code": code, "timeout": timeout})
                return read_frame(replies, time.monotonic() + timeout + GRACE)
            except TimeoutError:
                self._restart()
                return {"ok": False, "stdout": "", "error": f"timeout after {timeout:g}s"}
            except (OSError, EOFError, ProtocolError) as exc:
                self._restart()
                if attempt == 2:
                    return {"ok": False, "stdout": "", "error": f"sandbox server failed ({exc!r})"}
        raise AssertionError("unreachable")

    def execute_batch(self, codes: list[str], timeout: float) -> list[dict[str, Any]]:
        """Several programs in one request (the server runs the simple ones together, the
        rest one by one); ``{"ok", "stdout", "error"}`` per program, in order.

        A server that times out, dies or garbles the reply is replaced, and the programs are
        then run one at a time: a batch never fails as a whole.
        """
        if self._proc is None or self._proc.poll() is not None:
            self._restart()
        self.wait_ready()
        requests, replies = self._pipes()
        deadline = time.monotonic() + (len(codes) + 1) * (timeout + GRACE)
        try:
            write_frame(requests, {"batch": codes, "timeout": timeout})
            reply = read_frame(replies, deadline)
            results = reply["results"]
            if not isinstance(results, list) or len(results) != len(codes):
                raise ProtocolError(f"{len(codes)} programs but a reply of {results!r:.80}")
            return results
        except (TimeoutError, OSError, EOFError, ProtocolError, KeyError):
            self._restart()
        return [self.execute(code, timeout) for code in codes]

    def close(self) -> None:
        self._kill()
        self._stderr.close()

    def _pipes(self) -> tuple[int, int]:
        """The fds of the server's stdin (requests) and stdout (replies)."""
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise RuntimeError("worker is not started")
        return self._proc.stdin.fileno(), self._proc.stdout.fileno()

    def _restart(self) -> None:
        self._kill()
        self.restarts += 1
        self.start()

    def _kill(self) -> None:
        """Kill the isolation layer; with bwrap or unshare the server's namespace dies with it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def _server_errors(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read(20_000).decode("utf-8", "replace").strip()
        return text or "(no output)"
