"""Isolated execution of model-written Python: `Sandbox`, `ExecResult`.

Sandbox
=======
Every program the policy writes is hostile until proven otherwise. It never runs in our own
process; it runs in a child of a *fork server*, several layers away from the host::

    caller ──pipes──▶ bwrap (namespaces) ──▶ fork server (pid 1, sympy/numpy imported once)
                                               └─ fork ─▶ child: unused uid, rlimits, scratch

Layers, outermost first:

1. **Namespaces** (`IsolationLevel.BWRAP`): bubblewrap gives each fork server its own pid,
   network, IPC, UTS and mount namespace. The network namespace has nothing but a loopback of
   its own: no host address, 127.0.0.1 included, is reachable. The file system is the host's,
   bound read-only, with a private tmpfs on /tmp (``disk_mb``) and /run (host sockets), a
   read-only fresh /dev and a /proc that shows only the namespace. The server starts with a
   fixed PATH/locale as its whole environment: the caller's variables (tokens, keys) never
   enter. If bubblewrap cannot run here, `UNSHARE` (util-linux ``unshare``: the same
   namespaces; the server remounts / read-only and /tmp private) and then `FORK` (no
   namespaces) are used, each with a logged warning. There is no in-process fallback.
2. **Identity**: when we are root, the server keeps only the capabilities it needs and each
   child drops to an unused uid/gid (one per worker, like "nobody" but private to it) with no
   groups before running anything: it can write only its scratch directory, cannot signal or
   trace the server (uid 0), and RLIMIT_NPROC applies to it. Without root there is no uid to
   drop to; the server is then protected by being pid 1 of its namespace (signals from inside
   are ignored) and non-dumpable (no ptrace, no /proc/1/fd).
3. **Syscall filter** (seccomp, set with no_new_privs): no socket() at all, since a Unix
   socket on the host file system stays reachable through a read-only bind; no io_uring; no
   foreign system call ABI. Setuid binaries cannot give privileges back.
4. **Limits** (rlimits in each child): address space (``memory_mb`` on top of the template),
   CPU seconds (a little above the timeout), file size (``disk_mb``), processes and threads
   (``max_procs``: fork bombs), open files, no core dumps.
5. **Lifetime**: the server enforces each timeout; afterwards it kills every process in its
   namespace but itself (``kill(-1, SIGKILL)`` as pid 1), so nothing the program spawned
   outlives the call, then deletes everything in /tmp. The host adds its own deadline
   (timeout + 0.5 s): a server that does not answer is killed with its whole namespace and
   replaced at once; a server that died is replaced and the program sent again.
6. **Fresh state**: each program runs in a new child forked from a clean template (the server
   never runs request code), as a fresh ``__main__`` module, in a new empty scratch directory
   (its cwd, HOME and TMPDIR). Globals, patched builtins or modules, planted files: all die
   with the child. stdout is a pipe of its own, not the protocol pipe (stdin and stderr are
   /dev/null); beyond ``max_output`` bytes its head and tail are kept around a marker, and it
   is decoded with ``errors="replace"``.
7. **Simple programs share a child** (``run_many`` only): straight-line arithmetic that is
   printed (``_server.is_simple``, checked on the syntax tree inside the sandbox: assignments
   of names not starting with ``_``, arithmetic with bounded exponents, ``print``,
   ``Fraction``, ``round`` and a few more calls, ``math``'s functions, ``from fractions import
   Fraction``; no attributes, subscripts, loops, definitions or other imports) runs one
   program after another in one child set up as above, each in a fresh ``__main__`` with its
   own output and a timer. Such a program can bind names in its own namespace and print,
   nothing more, so it cannot reach the next one; everything else keeps a child of its own.
   A shared child that is killed or runs out of time costs nothing but time: the programs it
   did not report run again, each in a child of its own. This is what makes toy-world code
   cheap (about 0.4 ms instead of 4 ms of CPU a program: docs/benchmarks.md).

Threat model: the code may do anything Python can: loop, allocate, fork, write files, open
sockets, ignore signals, crash the interpreter, exit, try to kill its parent. None of that may
touch the host's files, network, environment or other processes, use more than the limits
above, outlive the call, affect a later call, or stop the caller: every call returns within
timeout + 1 s and the sandbox stays usable. Out of scope: kernel exploits, and the program's
own result (it may print, or report about itself, whatever it likes). Reading is not
prevented: the root file system is visible read-only (files closed to others, such as
/etc/shadow, stay closed). Memory is bounded per process, so the worst case is
``max_procs × memory_mb``; a cgroup would bound it as a whole.

Usage::

    with Sandbox(timeout=10.0, memory_mb=1024, workers=None) as sb:
        result = sb.run("import sympy\\nprint(sympy.sqrt(8))")   # ExecResult(ok, stdout, ...)
        results = sb.run_many(programs)                         # parallel, order kept
"""

from rstar.sandbox.config import SandboxConfig
from rstar.sandbox.isolation import IsolationLevel
from rstar.sandbox.result import ExecResult
from rstar.sandbox.sandbox import DEFAULT_PRELOAD, Sandbox
from rstar.sandbox.worker import WorkerError

__all__ = [
    "DEFAULT_PRELOAD",
    "ExecResult",
    "IsolationLevel",
    "Sandbox",
    "SandboxConfig",
    "WorkerError",
]
