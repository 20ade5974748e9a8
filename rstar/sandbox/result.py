"""What one sandboxed execution returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one program.

    `ok` is True iff the program ran to completion without an uncaught exception (``sys.exit(0)``
    and ``os._exit(0)`` count as completion). `stdout` is what it printed, valid text, with the
    middle cut out when long. `error` says what stopped it: ``"NameError: name 'y' is not
    defined"`` (``Type: message``, a SyntaxError with its location), ``"timeout after 10s"``,
    ``"memory limit exceeded (1024 MB)"``, ``"killed by signal SIGSEGV"``, ``"exited with code
    3"``. `duration` is the wall-clock seconds the call took.
    """

    ok: bool
    stdout: str
    error: str | None
    duration: float
