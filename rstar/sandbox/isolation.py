"""Which OS isolation this machine allows, and the command that starts a fork server inside it.

Levels, strongest first (`FALLBACK_ORDER`); `choose` takes the first one that works here and logs
a warning for each one it had to skip. There is no level below `FORK`: model-written code never
runs in the caller's process.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from enum import StrEnum
from pathlib import Path

from rstar.sandbox._server import seccomp_filter

log = logging.getLogger(__name__)

SERVER_SCRIPT = Path(__file__).resolve().with_name("_server.py")
SERVER_DIR = SERVER_SCRIPT.parent
# In the namespaced levels: the private, size-limited tmpfs that holds the scratch directories.
SCRATCH_ROOT = "/tmp/sandbox"
# Host directories each namespaced level hides (see hidden_dirs).
_PRIVATE_DIRS = {"bwrap": ("/tmp", "/run"), "unshare": ("/tmp", "/var/tmp", "/dev/shm", "/run")}
# The children's uids when we are root. Like "nobody" they own nothing, so they can write
# nothing outside their scratch dir; unlike "nobody" each worker draws its own, because
# RLIMIT_NPROC counts all processes of a uid: with a shared one, a fork bomb in one worker (or
# in another Sandbox on the host) would leave no process or thread for the others.
UNPRIVILEGED_UIDS = range(1_500_000_000, 2_000_000_000)

# The whole environment of the fork server and its children: nothing of the caller's leaks in.
SERVER_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": "/tmp",
    # One thread per math library: a thread in the template would not survive fork anyway.
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    # Each thread would reserve a 64 MB malloc arena of address space, against RLIMIT_AS.
    "MALLOC_ARENA_MAX": "2",
}

# What the fork server keeps when it runs as root inside bwrap: enough to hand each child to the
# unprivileged uid (SETUID, SETGID, CHOWN of its scratch dir), to kill what the child leaves
# (KILL) and to delete whatever the child wrote (DAC_OVERRIDE). The children keep nothing.
_SERVER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE")


class IsolationLevel(StrEnum):
    """How the fork server is walled off from the host (see the package docstring)."""

    BWRAP = "bwrap"  # bubblewrap: pid/net/ipc/uts/mount namespaces, read-only root, private /tmp
    UNSHARE = "unshare"  # util-linux unshare: the same namespaces; the server remounts the files
    FORK = "fork"  # no namespaces: host files are guarded only by the uid drop (as root)


FALLBACK_ORDER = (IsolationLevel.BWRAP, IsolationLevel.UNSHARE, IsolationLevel.FORK)


def drops_privileges() -> bool:
    """Children change uid only when we are root (else there is no uid to drop to)."""
    return os.geteuid() == 0


def server_command(level: IsolationLevel, config: dict[str, object], tmp_bytes: int) -> list[str]:
    """The command line of one fork server at `level`; `config` is its JSON configuration."""
    return [*_wrapper(level, tmp_bytes), *_python(), str(SERVER_SCRIPT), json.dumps(config)]


def choose(requested: IsolationLevel | None) -> IsolationLevel:
    """`requested` if it works here (else RuntimeError); by default the strongest that works."""
    if requested is not None:
        reason = unavailable_reason(requested)
        if reason is not None:
            raise RuntimeError(f"sandbox isolation {requested.value!r} is unavailable: {reason}")
        chosen = requested
    else:
        chosen = next(level for level in FALLBACK_ORDER if unavailable_reason(level) is None)
    if seccomp_filter() is None:
        log.warning(
            "sandbox: no syscall filter for %s: programs can open sockets (a host Unix socket "
            "that is open to them is then reachable)",
            platform.machine(),
        )
    if chosen is IsolationLevel.FORK:
        log.warning(
            "sandbox: fork isolation has no namespaces: host files are protected only by the "
            "uid drop (as root), the network only by the syscall filter, and without root a "
            "program can kill its fork server (it is then restarted)"
        )
    return chosen


@functools.cache
def unavailable_reason(level: IsolationLevel) -> str | None:
    """None if a Python process starts at `level` on this machine, else why it does not.

    Probed once per process by starting one; a level that fails is logged as a warning.
    """
    if level is IsolationLevel.FORK:
        return None
    binary = _wrapper(level, 1 << 20)[0]
    if shutil.which(binary) is None:
        reason = f"{binary} is not installed"
    else:
        reason = _probe([*_wrapper(level, 1 << 20), *_python(), "-S", "-c", "pass"])
    if reason is not None:
        log.warning("sandbox: %s isolation is unavailable here (%s)", level.value, reason)
    return reason


def _probe(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, env=SERVER_ENV, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {done.returncode}"
    return None


def _python() -> list[str]:
    # -I: no environment variables, no user site, no script directory on sys.path; -B: no .pyc.
    return [sys.executable, "-I", "-B"]


def _wrapper(level: IsolationLevel, tmp_bytes: int) -> list[str]:
    if level is IsolationLevel.BWRAP:
        return _bwrap(tmp_bytes)
    if level is IsolationLevel.UNSHARE:
        user = [] if drops_privileges() else ["--map-root-user"]
        namespaces = ["--net", "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child"]
        return ["unshare", *namespaces, *user, "--"]
    return []


def _bwrap(tmp_bytes: int) -> list[str]:
    if drops_privileges():
        # No user namespace: it would map only uid 0, and the children must become another uid.
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        namespaces.append("--unshare-cgroup-try")
        caps = ["--cap-drop", "ALL"]
        for cap in _SERVER_CAPS:
            caps += ["--cap-add", cap]
    else:
        namespaces, caps = ["--unshare-all"], []
    files = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    hidden = hidden_dirs(IsolationLevel.BWRAP)
    for directory, keep in hidden.items():
        files += ["--tmpfs", directory]
        for path in keep:
            between = [a for a in reversed(Path(path).parents) if a.is_relative_to(directory)]
            for parent in between[1:]:  # bwrap would create them 0700
                files += ["--perms", "0755", "--dir", str(parent)]
            files += ["--ro-bind", path, path]
    files += ["--perms", "0755", "--dir", SCRATCH_ROOT]
    for directory in [*hidden, "/dev"]:  # device nodes stay usable; nothing can be planted
        files += ["--remount-ro", directory]
    files += ["--size", str(tmp_bytes), "--tmpfs", SCRATCH_ROOT]
    process = ["--die-with-parent", "--as-pid-1", "--new-session", "--chdir", SCRATCH_ROOT]
    return ["bwrap", *namespaces, *files, *caps, *process, "--"]


def hidden_dirs(level: IsolationLevel) -> dict[str, list[str]]:
    """Directories `level` replaces by an empty read-only tmpfs, each with the interpreter
    directories under it that are bound back, read-only.

    Hidden are the host's writable scratch places (/tmp, /run: host sockets live there) and,
    when the children drop to another uid, any ancestor of the interpreter closed to others
    (a pyenv under a 0700 /root: ``{"/root": ["/root/.pyenv/versions/3.11.7"]}``), so that the
    children can import the standard library and nothing else of that directory is visible.
    """
    private = [d for d in _PRIVATE_DIRS.get(level, ()) if os.path.isdir(d)]
    if not private:
        return {}
    needed = sorted({Path(p).resolve() for p in (sys.base_prefix, sys.prefix)} | {SERVER_DIR})
    needed = [p for p in needed if not any(p != q and p.is_relative_to(q) for q in needed)]
    hidden: dict[str, list[str]] = {directory: [] for directory in private}
    for path in needed:
        owner = next((d for d in private if path.is_relative_to(d)), None)
        if owner is None and drops_privileges():
            closed = (a for a in reversed(path.parents) if not a.stat().st_mode & 0o001)
            owner = next((str(a) for a in closed), None)
        if owner is not None:
            hidden.setdefault(owner, []).append(str(path))
    return hidden
