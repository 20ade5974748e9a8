"""The fork server: one long-lived process per sandbox worker, inside the isolation layer.

Run as a script, ``python -I -B _server.py CONFIG_JSON``, by `rstar.sandbox.worker`. It imports
the math libraries once, then answers requests read from fd 0 on fd 1 (length-prefixed JSON
frames, `write_frame`/`read_frame`). For each request it forks a child that leaves the server's
session, drops to the unprivileged uid, applies rlimits, moves into a fresh scratch directory and
runs the code with its stdout on a pipe; the server itself never runs request code. After the
child ends (or its time is up) the server kills every process the child left behind, empties the
scratch root and reports ``{"ok", "stdout", "error"}``.

Stdlib only, and importing it has no side effects: the host imports the framing helpers from here
so that both sides share one definition of the protocol.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import os
import platform
import resource
import select
import signal
import stat
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 2**20
# A child's exception message is its own business; the server keeps at most this much of it.
_STATUS_LIMIT = 64 * 1024
_ERROR_LIMIT = 2000
# Exit status of a child that could not set itself up (no request code ran).
_SETUP_FAILED = 125

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

# The system calls every child is refused, by machine: (AUDIT_ARCH_*, {name: number}).
# socket: the network namespace has no route out, but a Unix socket on the host file system
# stays reachable through a read-only bind. io_uring: it can open sockets too. The others have
# no use in a math program and are the kernel's usual attack surface (as in Docker's profile).
_REFUSED_SYSCALLS = {
    "x86_64": (
        0xC000003E,
        {"socket": 41, "ptrace": 101, "add_key": 248, "request_key": 249, "keyctl": 250,
         "unshare": 272, "perf_event_open": 298, "setns": 308, "bpf": 321, "userfaultfd": 323,
         "io_uring_setup": 425},
    ),
    "aarch64": (
        0xC00000B7,
        {"socket": 198, "ptrace": 117, "add_key": 217, "request_key": 218, "keyctl": 219,
         "unshare": 97, "perf_event_open": 241, "setns": 268, "bpf": 280, "userfaultfd": 282,
         "io_uring_setup": 425},
    ),
}  # fmt: skip

# Bound before any request code runs, so that a program that monkey-patches os or json still
# gets its result reported and its process ended.
_exit, _write, _dumps = os._exit, os.write, json.dumps


class ProtocolError(Exception):
    """A frame that is not what the protocol allows (too large, not JSON, not an object)."""


def write_frame(fd: int, message: dict[str, Any]) -> None:
    """Send one JSON object, prefixed by its length (ASCII JSON: lone surrogates survive)."""
    data = json.dumps(message).encode("ascii")
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int, deadline: float | None = None) -> dict[str, Any]:
    """Receive one frame. Past `deadline` (time.monotonic): TimeoutError; pipe closed: EOFError."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    try:
        message = json.loads(_read_exact(fd, size, deadline))
    except ValueError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(size - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("peer closed the pipe")
        buf += chunk
    return bytes(buf)


def seccomp_filter() -> bytes | None:
    """The classic-BPF program of the syscall filter (None on a machine not in the table).

    Each call in `_REFUSED_SYSCALLS` fails with EACCES; a call through another system call ABI
    (x32, i386), where those numbers would not match, kills the process; the rest is allowed.
    """
    if platform.machine() not in _REFUSED_SYSCALLS:
        return None
    audit_arch, refused = _REFUSED_SYSCALLS[platform.machine()]
    n = len(refused)
    # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JGE|BPF_K, BPF_RET|BPF_K
    load, jump_eq, jump_ge, ret = 0x20, 0x15, 0x35, 0x06
    allow, refuse, kill = 0x7FFF0000, 0x00050000 | errno.EACCES, 0x80000000
    # (code, jump if true, jump if false, k); a jump skips that many instructions. The last
    # three instructions are: allow (index n + 4), refuse (n + 5), kill (n + 6).
    program = [
        (load, 0, 0, 4),  # A = seccomp_data.arch
        (jump_eq, 0, n + 4, audit_arch),  # another ABI: kill
        (load, 0, 0, 0),  # A = seccomp_data.nr
        (jump_ge, n + 2, 0, 0x40000000),  # the x32 ABI: kill
        *((jump_eq, n - i, 0, nr) for i, nr in enumerate(refused.values())),
        (ret, 0, 0, allow),
        (ret, 0, 0, refuse),
        (ret, 0, 0, kill),
    ]
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class _Capture:
    """Keeps the first and last `limit // 2` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data[-self.tail_limit :]
            del self.tail[: max(0, len(self.tail) - self.tail_limit)]

    def text(self) -> str:
        dropped = self.total - len(self.head) - len(self.tail)
        if dropped == 0:
            return (self.head + self.tail).decode("utf-8", "replace")
        marker = f"\n[... {dropped} bytes of output truncated ...]\n"
        return self.head.decode("utf-8", "replace") + marker + self.tail.decode("utf-8", "replace")


class Server:
    """Serves requests until fd 0 closes. See the module docstring."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.uid: int | None = config["uid"]
        self.memory_bytes = config["memory_mb"] * 2**20
        self.fsize_bytes = config["disk_mb"] * 2**20
        self.max_procs: int = config["max_procs"]
        self.max_output: int = config["max_output"]
        self.scratch_root: str = config["scratch_root"]
        self.libc = ctypes.CDLL(None, use_errno=True)
        program = seccomp_filter()
        self.seccomp_buffer = ctypes.create_string_buffer(program or b"")
        self.seccomp = (
            None
            if program is None
            else _SockFprog(len(program) // 8, ctypes.addressof(self.seccomp_buffer))
        )
        self.counter = 0
        self.template_bytes = 0
        # Only as pid 1 of a private pid namespace is kill(-1) confined to our own children.
        self.pid_namespace = os.getpid() == 1
        self.proto_in = os.dup(0)
        self.proto_out = os.dup(1)
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        os.dup2(self.devnull, 0)
        os.dup2(2, 1)  # a stray print must never reach the protocol pipe
        for fd in (self.proto_in, self.proto_out):
            os.set_inheritable(fd, False)

    def harden(self) -> None:
        """Make the server hard to disturb from a child, even one with the server's own uid."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Non-dumpable: no ptrace, no /proc/<pid>/fd or /mem for processes without CAP_SYS_PTRACE.
        self._prctl(PR_SET_DUMPABLE, 0)
        if not self.pid_namespace:
            # Orphans of a child are re-parented to us, so the sweep can still find them.
            self._prctl(PR_SET_CHILD_SUBREAPER, 1)

    def private_mounts(self, hidden: dict[str, list[str]], scratch_bytes: int) -> None:
        """The unshare level's file system, done here in our private mount namespace as bwrap
        does it from its options: / read-only; each directory of `hidden` an empty read-only
        tmpfs but for the listed subdirectories, bound back read-only; the scratch root a
        writable tmpfs of `scratch_bytes` (see isolation.hidden_dirs)."""
        ms_rdonly, ms_nosuid, ms_nodev, ms_noexec, ms_remount, ms_bind, ms_rec = (
            1, 2, 4, 8, 32, 4096, 16384
        )  # fmt: skip
        # A remount must keep the flags the parent namespace locked, or the kernel refuses it.
        flags = os.statvfs("/").f_flag
        locked = {os.ST_NOSUID: ms_nosuid, os.ST_NODEV: ms_nodev, os.ST_NOEXEC: ms_noexec}
        read_only = (
            ms_remount | ms_bind | ms_rdonly | sum(m for s, m in locked.items() if flags & s)
        )
        self._mount(None, "/", None, read_only, None)
        tmpfs = ms_nosuid | ms_nodev
        for directory, keep in hidden.items():
            sources = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in keep]
            self._mount("tmpfs", directory, "tmpfs", tmpfs, "size=1048576,mode=0755")
            for path, source in zip(keep, sources, strict=True):
                os.makedirs(path, mode=0o755)
                self._mount(f"/proc/self/fd/{source}", path, None, ms_bind | ms_rec, None)
                self._mount(None, path, None, read_only, None)
                os.close(source)
        os.makedirs(self.scratch_root, mode=0o755)
        for directory in hidden:
            self._mount(None, directory, None, ms_remount | ms_rdonly | tmpfs, None)
        self._mount("tmpfs", self.scratch_root, "tmpfs", tmpfs, f"size={scratch_bytes},mode=0755")

    def preload(self, modules: list[str]) -> None:
        """Import the libraries once here, so that no execution pays for them."""
        import gc
        import importlib

        for name in modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # a missing optional library must not stop the server
                print(f"sandbox server: cannot preload {name}: {exc}", file=sys.stderr)
        if "sympy" in sys.modules:  # first solve() pulls in lazily imported solver modules
            import sympy

            x = sympy.Symbol("x")
            sympy.solve(sympy.Eq(x**2 - 4, 0), x)
            sympy.simplify(sympy.sin(x) ** 2 + sympy.cos(x) ** 2)
        # Compiling, running and printing once here initialises what the first program of
        # every child would otherwise set up for itself (measured: 4.4 -> 1.3 ms a program).
        main = sys.modules["__main__"]
        with contextlib.redirect_stdout(io.StringIO()):
            _run_code(WARM_UP, 0)
        sys.modules["__main__"] = main
        gc.collect()
        gc.freeze()  # children then never touch these objects' pages (no copy-on-write storm)
        with open("/proc/self/statm", "rb") as f:  # address space a child starts with
            self.template_bytes = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")

    def serve(self) -> None:
        write_frame(self.proto_out, {"ready": True, "pid_namespace": self.pid_namespace})
        while True:
            try:
                request = read_frame(self.proto_in)
            except EOFError:
                return
            timeout = float(request["timeout"])
            if "batch" in request:
                reply: dict[str, Any] = {"results": self.execute_batch(request["batch"], timeout)}
            else:
                reply = self.execute(request["code"], timeout)
            write_frame(self.proto_out, reply)

    def execute(self, code: str, timeout: float) -> dict[str, Any]:
        """One program in a child of its own."""
        timed_out, wait_status, output, status = self._in_child(
            lambda child: child.run(code, timeout), timeout, _STATUS_LIMIT
        )
        error = f"timeout after {timeout:g}s" if timed_out else _error_of(wait_status, status)
        return {"ok": error is None, "stdout": output.text(), "error": error}

    def execute_batch(self, codes: list[str], timeout: float) -> list[dict[str, Any]]:
        """Several programs: the simple ones (:func:`is_simple`) one after another in one
        child, each in a fresh namespace with its own output; every other program, and any
        simple one the shared child did not report (it was killed, or ran out of time), in a
        child of its own as :meth:`execute` runs it."""
        results: list[dict[str, Any] | None] = [None] * len(codes)
        simple = [i for i, code in enumerate(codes) if is_simple(code)]
        if len(simple) > 1:
            limit = len(simple) * (self.max_output + 4 * _ERROR_LIMIT) + _STATUS_LIMIT
            _, _, _, status = self._in_child(
                lambda child: child.run_simple([codes[i] for i in simple], timeout),
                timeout,
                limit,
            )
            for k, result in _parse_results(status, len(simple)).items():
                results[simple[k]] = result
        return [
            result if result is not None else self.execute(code, timeout)
            for code, result in zip(codes, results, strict=True)
        ]

    def _in_child(
        self, run: Callable[[_Child], None], timeout: float, status_limit: int
    ) -> tuple[bool, int, _Capture, bytearray]:
        """Fork a child that runs ``run``; collect its output and status until it ends or
        ``timeout`` is up, then clean up after it: (timed out, wait status, output, status)."""
        self.counter += 1
        scratch = os.path.join(self.scratch_root, f"run-{self.counter}")
        os.mkdir(scratch, 0o700)
        if self.uid is not None:
            os.chown(scratch, self.uid, self.uid)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            try:
                run(_Child(self, scratch, out_w, status_w))
            finally:  # the child never returns into the server's code
                _exit(_SETUP_FAILED)
        os.close(out_w)
        os.close(status_w)
        output = _Capture(self.max_output)
        status = bytearray()
        timed_out = self._supervise(pid, timeout, out_r, status_r, output, status, status_limit)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, wait_status = os.waitpid(pid, 0)  # the child first, so that its status is ours
        self._sweep()
        self._drain(out_r, status_r, output, status, status_limit)
        os.close(out_r)
        os.close(status_r)
        self._wipe_scratch_root()
        return timed_out, wait_status, output, status

    def _supervise(
        self,
        pid: int,
        timeout: float,
        out_r: int,
        status_r: int,
        output: _Capture,
        status: bytearray,
        status_limit: int,
    ) -> bool:
        """Collect output until the child exits (False) or its time is up (True)."""
        deadline = time.monotonic() + timeout
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        for fd in (pidfd, out_r, status_r):
            poller.register(fd, select.POLLIN)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                for fd, _ in poller.poll(remaining * 1000):
                    if fd == pidfd:
                        return False
                    if not self._read_into(fd, out_r, output, status, status_limit):
                        poller.unregister(fd)
        finally:
            os.close(pidfd)

    def _read_into(
        self, fd: int, out_r: int, output: _Capture, status: bytearray, status_limit: int
    ) -> bool:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return False
        if fd == out_r:
            output.feed(data)
        elif len(status) < status_limit:
            status += data[: status_limit - len(status)]
        return bool(data)

    def _drain(
        self, out_r: int, status_r: int, output: _Capture, status: bytearray, status_limit: int
    ) -> None:
        """Read what is left in the pipes: until EOF, nothing more ready, or a pipe's worth
        more than its buffer (a writer the sweep could not reach must not keep us here)."""
        for fd in (out_r, status_r):
            os.set_blocking(fd, False)
            for _ in range(16 + status_limit // (1 << 16)):
                if not self._read_into(fd, out_r, output, status, status_limit):
                    break

    def _sweep(self) -> None:
        """Kill and reap every process the (already reaped) child left behind."""
        if not self.pid_namespace:
            self._sweep_descendants()
            return
        # kill(-1) reaches every process of the namespace but pid 1 (us), atomically with respect
        # to fork: a process with SIGKILL pending cannot fork. Orphans are re-parented to pid 1,
        # a dying parent's children before it, so waiting until none is left reaps them all.
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return

    def _sweep_descendants(self) -> None:
        """No pid namespace: kill our children (orphans come to us, the subreaper) until none."""
        for _ in range(10_000):
            children = _children_of_self()
            if not children:
                return
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            while True:
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break
            time.sleep(0.001)

    def _wipe_scratch_root(self) -> None:
        for name in os.listdir(self.scratch_root):
            _remove_tree(os.path.join(self.scratch_root, name))

    def _prctl(self, option: int, value: int) -> None:
        if self.libc.prctl(option, value, 0, 0, 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"prctl({option}, {value}): {os.strerror(code)}")

    def _mount(
        self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None
    ) -> None:
        args = [None if s is None else s.encode() for s in (source, target, fstype)]
        if self.libc.mount(*args, flags, None if data is None else data.encode()) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"mount {target}: {os.strerror(code)}")


class _Child:
    """Everything that happens in the forked child, in order. Ends with os._exit."""

    def __init__(self, server: Server, scratch: str, out_w: int, status_w: int) -> None:
        self.started = time.monotonic()
        self.server = server
        self.scratch = scratch
        self.out_w = out_w
        self.status_w = status_w

    def run(self, code: str, timeout: float) -> None:
        self._set_up_or_exit(timeout)
        me = os.getpid()
        error = _run_code(code, self.server.memory_bytes)
        if os.getpid() == me:  # not a copy the program forked, falling out of its code
            _report(self.status_w, error)
        _exit(0)

    def run_simple(self, codes: list[str], timeout: float) -> None:
        """Simple programs (:func:`is_simple`) one after another, each in a fresh namespace
        with its output captured apart; one JSON line per program on the status pipe."""
        self._set_up_or_exit(timeout)
        me = os.getpid()
        signal.signal(signal.SIGALRM, _time_up)
        for k, code in enumerate(codes):
            output = io.StringIO()
            sys.stdout = output
            left = timeout - (time.monotonic() - self.started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.01))
            try:
                error = _run_code(code, self.server.memory_bytes)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if os.getpid() != me:
                _exit(0)
            capture = _Capture(self.server.max_output)
            capture.feed(output.getvalue().encode("utf-8", "backslashreplace"))
            if error == _TIMEOUT_MARK:
                error = f"timeout after {timeout:g}s"
            line = {"i": k, "ok": error is None, "stdout": capture.text(), "error": error}
            _write(self.status_w, _dumps(line).encode("ascii") + b"\n")
        _exit(0)

    def _set_up_or_exit(self, timeout: float) -> None:
        try:
            self._set_up(timeout)
        except BaseException as exc:
            _report(self.status_w, f"sandbox setup failed: {exc!r}")
            _exit(_SETUP_FAILED)

    def _set_up(self, timeout: float) -> None:
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # fds: 0 = /dev/null, 1 = the output pipe, 2 = /dev/null, 3 = the status pipe; nothing else.
        server = self.server
        os.dup2(self.out_w, 1)
        os.dup2(server.devnull, 0)
        os.dup2(server.devnull, 2)
        if self.status_w != 3:
            os.dup2(self.status_w, 3, inheritable=False)
            self.status_w = 3
        os.closerange(4, 1 << 20)
        if server.uid is not None:
            os.setgroups([])
            os.setresgid(server.uid, server.uid, server.uid)
            os.setresuid(server.uid, server.uid, server.uid)
            if os.getuid() != server.uid or os.geteuid() != server.uid:
                raise PermissionError("uid drop did not take effect")
        server._prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the uid change: set it after
        cpu = int(timeout) + 2
        limits = {
            resource.RLIMIT_AS: server.template_bytes + server.memory_bytes,
            resource.RLIMIT_CPU: (cpu, cpu + 1),
            resource.RLIMIT_FSIZE: server.fsize_bytes,
            resource.RLIMIT_NPROC: server.max_procs,
            resource.RLIMIT_NOFILE: 256,
            resource.RLIMIT_CORE: 0,
        }
        for which, value in limits.items():
            soft, hard = value if isinstance(value, tuple) else (value, value)
            resource.setrlimit(which, (soft, hard))
        server._prctl(PR_SET_NO_NEW_PRIVS, 1)  # no setuid binary can give privileges back
        if server.seccomp is not None:
            seccomp = ctypes.byref(server.seccomp)
            if server.libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, seccomp, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")
        os.chdir(self.scratch)
        os.umask(0o077)
        os.environ["HOME"] = os.environ["TMPDIR"] = self.scratch
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None
        if "numpy.random" in sys.modules:  # (the random module reseeds itself after fork)
            sys.modules["numpy.random"].seed()
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        # Block-buffered, as when a script's output goes to a file: a print-heavy program is not
        # slowed by one write per line. What it had not flushed is lost if it is killed.
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.argv = [""]


_TIMEOUT_MARK = "_ProgramTimeout"


class _ProgramTimeout(BaseException):
    """A simple program's time is up (raised by the interval timer of a shared child)."""


def _time_up(signum: int, frame: object) -> None:
    raise _ProgramTimeout


# What a simple program may contain: straight-line arithmetic on named values, printed.
# Such a program cannot loop, define anything, reach an attribute (math's functions aside)
# or import beyond math and Fraction, so it cannot change what the next program in the
# same child sees: it binds names in its own namespace and prints, nothing else.
_SIMPLE_CALLS = frozenset(
    {"print", "Fraction", "round", "int", "float", "abs", "min", "max", "pow", "divmod", "str"}
)
_SIMPLE_MATH = frozenset(
    {"sqrt", "floor", "ceil", "gcd", "lcm", "isqrt", "fabs", "exp", "log", "log2", "log10",
     "sin", "cos", "tan", "pi", "e", "trunc", "comb", "perm", "factorial", "hypot"}
)  # fmt: skip
_SIMPLE_OPERATORS = ("Add", "Sub", "Mult", "Div", "FloorDiv", "Mod", "Pow", "USub", "UAdd")
_SIMPLE_MAX_CHARS = 20_000
_SIMPLE_MAX_STATEMENTS = 200
_SIMPLE_MAX_EXPONENT = 64


def is_simple(code: str) -> bool:
    """Whether ``code`` is a simple program (see the comment above), judged on its syntax
    tree; anything else, or anything that does not parse, is not."""
    import ast

    if len(code) > _SIMPLE_MAX_CHARS:
        return False
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    if len(tree.body) > _SIMPLE_MAX_STATEMENTS:
        return False
    return all(_simple_statement(statement) for statement in tree.body)


def _simple_statement(node: object) -> bool:
    import ast

    if isinstance(node, ast.Assign):
        return (
            len(node.targets) == 1
            and _simple_name(node.targets[0])
            and _simple_expression(node.value)
        )
    if isinstance(node, ast.AugAssign):
        return (
            _simple_name(node.target)
            and type(node.op).__name__ in _SIMPLE_OPERATORS
            and _simple_expression(node.value)
        )
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Call) and _simple_expression(node.value)
    if isinstance(node, ast.ImportFrom):
        return (
            node.module == "fractions"
            and node.level == 0
            and [(a.name, a.asname) for a in node.names] == [("Fraction", None)]
        )
    if isinstance(node, ast.Import):
        return [(a.name, a.asname) for a in node.names] == [("math", None)]
    return isinstance(node, ast.Pass)


def _simple_name(node: object) -> bool:
    import ast

    return isinstance(node, ast.Name) and not node.id.startswith("_") and node.id != "math"


def _simple_expression(node: object) -> bool:
    import ast

    if isinstance(node, ast.Constant):
        value = node.value
        return isinstance(value, int | float | str) and not (
            isinstance(value, str) and len(value) > 1000
        )
    if isinstance(node, ast.Name):
        return _simple_name(node)
    if isinstance(node, ast.UnaryOp):
        return type(node.op).__name__ in _SIMPLE_OPERATORS and _simple_expression(node.operand)
    if isinstance(node, ast.BinOp):
        if type(node.op).__name__ not in _SIMPLE_OPERATORS:
            return False
        if isinstance(node.op, ast.Pow) and not (
            isinstance(node.right, ast.Constant)
            and isinstance(node.right.value, int)
            and abs(node.right.value) <= _SIMPLE_MAX_EXPONENT
        ):
            return False
        return _simple_expression(node.left) and _simple_expression(node.right)
    if isinstance(node, ast.Attribute):
        return (
            isinstance(node.value, ast.Name)
            and node.value.id == "math"
            and node.attr in _SIMPLE_MATH
        )
    if isinstance(node, ast.Call):
        function = node.func
        named = isinstance(function, ast.Name) and function.id in _SIMPLE_CALLS
        if not (named or (isinstance(function, ast.Attribute) and _simple_expression(function))):
            return False
        if named and function.id == "pow" and len(node.args) > 2:
            return False
        keywords_ok = all(
            k.arg in ("sep", "end") and isinstance(k.value, ast.Constant) for k in node.keywords
        )
        return keywords_ok and all(_simple_expression(a) for a in node.args)
    if isinstance(node, ast.JoinedStr):
        return all(_simple_expression(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return _simple_expression(node.value) and (
            node.format_spec is None or _simple_expression(node.format_spec)
        )
    return False


def _parse_results(status: bytearray, count: int) -> dict[int, dict[str, Any]]:
    """The results a shared child reported, by position; whatever else it wrote is ignored."""
    found: dict[int, dict[str, Any]] = {}
    for line in status.decode("utf-8", "replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict) or not isinstance(item.get("i"), int):
            continue
        k, error, stdout = item["i"], item.get("error"), item.get("stdout")
        if 0 <= k < count and isinstance(stdout, str) and isinstance(error, str | None):
            found[k] = {
                "ok": error is None,
                "stdout": stdout,
                "error": None if error is None else error[:_ERROR_LIMIT],
            }
    return found


WARM_UP = """\
import math
from fractions import Fraction
x = Fraction(3, 4) * 8 + 2
y = math.sqrt(16) + 7 // 2 + 2 ** 10 + round(3.14159, 2)
print(x, y, f"{float(x):.2f}", [i * i for i in range(3)], {"k": y})
"""


def _run_code(code: str, memory_bytes: int) -> str | None:
    """Run `code` as a fresh __main__ module; None, or what stopped it.

    Compiled as "<unknown>", the file name the released rStar-Math data shows in its errors
    (``IndentationError: unexpected indent (<unknown>, line 20)``).
    """
    import types

    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    try:
        exec(compile(code, "<unknown>", "exec"), main.__dict__)
        error = None
    except SystemExit as exc:
        error = _exit_error(exc.code)
    except MemoryError:
        error = f"memory limit exceeded ({memory_bytes // 2**20} MB)"
    except BaseException as exc:
        error = _describe(exc)
    try:
        sys.stdout.flush()
    except BaseException as exc:
        error = error or _describe(exc)
    return error


def _exit_error(code: object) -> str | None:
    if code is None or code == 0:
        return None
    return f"exited with code {code if isinstance(code, int) else 1}"


def _describe(exc: BaseException) -> str:
    """`Type: message`, as the last line of a traceback shows it (a SyntaxError keeps its place)."""
    try:
        message = str(exc)
    except BaseException:
        message = "<exception str() failed>"
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def _report(fd: int, error: str | None) -> None:
    """One JSON line; the server reads the last line, whatever the code itself wrote to fd 3."""
    with contextlib.suppress(BaseException):
        _write(fd, b"\n" + _dumps({"error": error}).encode("ascii") + b"\n")


def _error_of(wait_status: int, status: bytearray) -> str | None:
    """What ended the child: its own report, else the signal or exit code that ended it."""
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"killed by signal {name}"
    code = os.waitstatus_to_exitcode(wait_status)
    report = _parse_report(status)
    if code in (0, _SETUP_FAILED) and report is not None:
        return report["error"]
    return None if code == 0 else f"exited with code {code}"


def _parse_report(status: bytearray) -> dict[str, str | None] | None:
    lines = [line for line in status.decode("utf-8", "replace").splitlines() if line.strip()]
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    if not isinstance(report, dict) or not isinstance(report.get("error", ""), str | None):
        return None
    error = report.get("error")
    return {"error": None if error is None else error[:_ERROR_LIMIT]}


def _children_of_self() -> list[int]:
    children: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/children") as f:
            children += [int(p) for p in f.read().split()]
    return children


def _remove_tree(path: str) -> None:
    """Remove a file or tree a child left, whatever modes it set on its own directories."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        os.unlink(path)
        return
    # With the child's uid we own it and need the permission; as root, DAC_OVERRIDE has it.
    with contextlib.suppress(PermissionError):
        os.chmod(path, 0o700)
    for name in os.listdir(path):
        _remove_tree(os.path.join(path, name))
    os.rmdir(path)


def main() -> None:
    config = json.loads(sys.argv[1])
    server = Server(config)
    server.harden()
    if config["private_mounts"] is not None:
        server.private_mounts(config["private_mounts"], config["disk_mb"] * 2**20)
    server.preload(config["preload"])
    server.serve()


if __name__ == "__main__":
    main()
