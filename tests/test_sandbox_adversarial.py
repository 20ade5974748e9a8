"""rstar.sandbox against hostile programs.

Every test runs a program that tries to break out, checks on the host that it did not (files,
sockets, processes, environment), and then checks that the call came back within timeout + 1 s
and that the sandbox still runs a normal program.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import rstar
from rstar.sandbox import ExecResult, Sandbox

TIMEOUT = 1.0
PACKAGE_DIR = Path(rstar.__file__).resolve().parent  # the rstar the tests import
SECRET_NAME = "RSTAR_SANDBOX_TEST_SECRET"
SECRET_VALUE = f"s3cr3t-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    # The secret is in our environment before the servers start: they must not inherit it.
    os.environ[SECRET_NAME] = SECRET_VALUE
    try:
        with Sandbox(timeout=TIMEOUT, memory_mb=512, workers=2) as sandbox:
            yield sandbox
    finally:
        del os.environ[SECRET_NAME]


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A world-writable host directory outside /tmp holding a world-writable file: only the
    sandbox stands between a program and them."""
    path = Path(tempfile.mkdtemp(prefix="rstar-sandbox-target-", dir="/var/tmp"))
    path.chmod(0o777)
    victim = path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o666)
    yield path
    shutil.rmtree(path)


def hostile(sb: Sandbox, code: str, timeout: float = TIMEOUT) -> ExecResult:
    """Run `code`; assert it came back in time and left the sandbox working and clean."""
    restarts = sb.restarts
    result = sb.run(code, timeout=timeout)
    assert result.duration < timeout + 1.0, result
    assert leftover_processes(sb) == []
    follow_ups = sb.run_many(["print(sum(range(5)))"] * sb.workers)  # one on each worker
    assert [(r.ok, r.stdout) for r in follow_ups] == [(True, "10\n")] * sb.workers
    assert sb.restarts == restarts  # nothing it did took a fork server down
    return result


def leftover_processes(sb: Sandbox) -> list[str]:
    """Host processes under the sandbox's workers other than the fork servers themselves."""
    left = []
    for pid in sb.worker_pids:
        for proc in psutil.Process(pid).children(recursive=True):
            with_cmdline = " ".join(proc.cmdline())
            if "_server.py" not in with_cmdline:
                left.append(f"{proc.pid} {proc.name()} {with_cmdline}")
    return left


def assert_victim_intact(host_dir: Path) -> None:
    assert sorted(p.name for p in host_dir.iterdir()) == ["victim.txt"]
    victim = host_dir / "victim.txt"
    assert victim.read_text() == "precious"
    assert victim.stat().st_mode & 0o777 == 0o666


# --- files -------------------------------------------------------------------------------------


def test_cannot_create_a_file_in_a_world_writable_host_dir(sb: Sandbox, host_dir: Path) -> None:
    result = hostile(sb, f"open('{host_dir}/new.txt', 'w').write('pwned')")
    assert not result.ok
    assert result.error is not None and result.error.startswith(("OSError", "PermissionError"))
    assert_victim_intact(host_dir)


def test_cannot_delete_a_host_file(sb: Sandbox, host_dir: Path) -> None:
    result = hostile(sb, f"import os\nos.remove('{host_dir}/victim.txt')")
    assert not result.ok
    assert_victim_intact(host_dir)


def test_cannot_truncate_or_append_to_a_host_file(sb: Sandbox, host_dir: Path) -> None:
    code = (
        "results = []\n"
        "for mode in ('w', 'a', 'r+'):\n"
        "    try:\n"
        f"        open('{host_dir}/victim.txt', mode).write('pwned')\n"
        "        results.append('wrote')\n"
        "    except OSError:\n"
        "        results.append('refused')\n"
        "print(results)"
    )
    assert hostile(sb, code).stdout == "['refused', 'refused', 'refused']\n"
    assert_victim_intact(host_dir)


def test_cannot_chmod_rename_or_link_host_files(sb: Sandbox, host_dir: Path) -> None:
    code = (
        "import os\n"
        f"d = '{host_dir}'\n"
        "attempts = [\n"
        "    lambda: os.chmod(d + '/victim.txt', 0o777),\n"
        "    lambda: os.rename(d + '/victim.txt', d + '/moved.txt'),\n"
        "    lambda: os.symlink('/etc/passwd', d + '/link'),\n"
        "    lambda: os.mkdir(d + '/sub'),\n"
        "]\n"
        "refused = 0\n"
        "for attempt in attempts:\n"
        "    try:\n"
        "        attempt()\n"
        "    except OSError:\n"
        "        refused += 1\n"
        "print(refused)"
    )
    assert hostile(sb, code).stdout == "4\n"
    assert_victim_intact(host_dir)


def test_cannot_write_into_the_package(sb: Sandbox) -> None:
    server = PACKAGE_DIR / "sandbox" / "_server.py"
    digest = hashlib.sha256(server.read_bytes()).hexdigest()
    planted = PACKAGE_DIR / f"planted_{uuid.uuid4().hex}.py"
    code = (
        "refused = 0\n"
        f"for path, mode in (('{server}', 'a'), ('{planted}', 'w')):\n"
        "    try:\n"
        "        open(path, mode).write('import os; os.system(\"rm -rf /\")')\n"
        "    except OSError:\n"
        "        refused += 1\n"
        "print(refused)"
    )
    assert hostile(sb, code).stdout == "2\n"
    assert hashlib.sha256(server.read_bytes()).hexdigest() == digest
    assert not planted.exists()


def test_a_shell_it_spawns_cannot_write_either(sb: Sandbox, host_dir: Path) -> None:
    code = (
        "import subprocess\n"
        f"done = subprocess.run(['sh', '-c', 'echo pwned > {host_dir}/sh.txt'])\n"
        "print(done.returncode != 0)"
    )
    assert hostile(sb, code).stdout == "True\n"
    assert_victim_intact(host_dir)


def test_plants_outside_the_scratch_dir_do_not_reach_the_next_run(sb: Sandbox) -> None:
    name = f"planted-{uuid.uuid4().hex}"
    places = ["/tmp", "/dev/shm", "/var/tmp", "/dev", "..", "."]
    plant = (
        "import os\n"
        f"for place in {places!r}:\n"
        "    try:\n"
        f"        open(os.path.join(place, '{name}'), 'w').write('x')\n"
        "    except OSError:\n"
        "        pass\n"
    )
    hostile(sb, plant)
    look = (
        "import os\n"
        f"print([p for p in {places!r} if os.path.exists(os.path.join(p, '{name}'))])\n"
        "print(os.listdir('..') == [os.path.basename(os.getcwd())])"
    )
    for _ in range(2):  # both workers
        assert hostile(sb, look).stdout == "[]\nTrue\n"
    assert not any(Path(place, name).exists() for place in ("/tmp", "/dev/shm", "/var/tmp"))


def test_a_scratch_dir_it_locks_is_still_cleaned_up(sb: Sandbox) -> None:
    code = (
        "import os\n"
        "os.makedirs('a/b/c')\n"
        "open('a/b/c/f', 'w').write('x')\n"
        "for d in ('a/b/c', 'a/b', 'a', '.'):\n"
        "    os.chmod(d, 0)\n"
    )
    assert hostile(sb, code).ok
    assert hostile(sb, "import os\nprint(os.listdir('.'), len(os.listdir('..')))").stdout == (
        "[] 1\n"
    )


def test_secret_files_stay_closed(sb: Sandbox) -> None:
    code = (
        "refused = []\n"
        "for path in ('/etc/shadow', '/proc/1/environ', '/proc/1/mem', '/root/.bash_history'):\n"
        "    try:\n"
        "        open(path, 'rb').read(1)\n"
        "    except OSError:\n"
        "        refused.append(path)\n"
        "print(len(refused))"
    )
    assert hostile(sb, code).stdout == "4\n"


# --- network -----------------------------------------------------------------------------------


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    yield listener
    listener.close()


def test_cannot_reach_a_tcp_listener_on_loopback(sb: Sandbox, tcp_listener: socket.socket) -> None:
    port = tcp_listener.getsockname()[1]
    code = f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\ns.send(b'hi')"
    result = hostile(sb, code)
    assert (result.ok, result.error) == (False, "PermissionError: [Errno 13] Permission denied")
    with pytest.raises(TimeoutError):
        tcp_listener.accept()


def test_cannot_reach_a_udp_listener_on_loopback(sb: Sandbox) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.sendto(b'hi', ('127.0.0.1', {port}))"
    )
    try:
        assert not hostile(sb, code).ok
        with pytest.raises(TimeoutError):
            listener.recvfrom(100)
    finally:
        listener.close()


def test_cannot_reach_a_world_writable_unix_socket(sb: Sandbox, host_dir: Path) -> None:
    path = host_dir / "service.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    path.chmod(0o777)
    listener.listen()
    listener.settimeout(0.2)
    code = f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('{path}')\ns.send(b'hi')"
    try:
        assert not hostile(sb, code).ok
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
        path.unlink()


def test_network_namespace_has_only_a_loopback(sb: Sandbox) -> None:
    """Even without the syscall filter there would be nowhere to go: no interface but lo."""
    code = "print([line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:]])"
    assert hostile(sb, code).stdout == "['lo']\n"


# --- time --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("while True:\n    pass", id="busy-loop"),
        pytest.param("import time\ntime.sleep(3600)", id="sleep"),
        pytest.param(
            "import signal\n"
            "for name in ('SIGTERM', 'SIGALRM', 'SIGXCPU', 'SIGINT', 'SIGHUP', 'SIGUSR1'):\n"
            "    signal.signal(getattr(signal, name), signal.SIG_IGN)\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})\n"
            "while True:\n"
            "    pass",
            id="ignores-signals",
        ),
        pytest.param(
            "import threading\n"
            "def spin():\n"
            "    while True:\n"
            "        pass\n"
            "for _ in range(8):\n"
            "    threading.Thread(target=spin, daemon=True).start()\n"
            "spin()",
            id="thread-spin",
        ),
    ],
)
def test_runaway_programs_are_stopped_at_the_timeout(sb: Sandbox, code: str) -> None:
    result = hostile(sb, code)
    assert (result.ok, result.error) == (False, f"timeout after {TIMEOUT:g}s")
    assert result.duration >= TIMEOUT


# --- memory, disk, processes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("b = bytearray(8 * 2**30)", id="one-block"),
        pytest.param(
            "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))", id="growing"
        ),
        pytest.param("import numpy as np\na = np.ones((40000, 40000))", id="numpy"),
    ],
)
def test_memory_bombs_hit_the_limit(sb: Sandbox, code: str) -> None:
    # Zeroing 512 MB in 16 MB steps can take over a second on a loaded machine; the limit under
    # test is memory, so give the clock room (a bomb that is not stopped would still time out).
    result = hostile(sb, code, timeout=10.0)
    assert (result.ok, result.error) == (False, "memory limit exceeded (512 MB)")


def test_one_huge_file_hits_the_file_size_limit(sb: Sandbox) -> None:
    result = hostile(sb, "f = open('big', 'wb')\nwhile True:\n    f.write(b'0' * 2**20)")
    assert (result.ok, result.error) == (False, "OSError: [Errno 27] File too large")


def test_many_files_fill_only_the_private_scratch_space(sb: Sandbox) -> None:
    code = "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'0' * 2**24)\n    i += 1"
    result = hostile(sb, code)
    assert (result.ok, result.error) == (False, "OSError: [Errno 28] No space left on device")
    # The space is given back: the next run can write as much again.
    assert hostile(sb, "open('f', 'wb').write(b'0' * 2**25)\nprint('ok')").stdout == "ok\n"


def test_fork_bomb_is_contained_and_cleaned_up(sb: Sandbox) -> None:
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = hostile(sb, code)  # asserts that no process is left
    assert (result.ok, result.error) == (False, f"timeout after {TIMEOUT:g}s")


def test_orphans_do_not_outlive_the_call(sb: Sandbox) -> None:
    code = (
        "import os, subprocess, time\n"
        "subprocess.Popen(['sleep', '60'])\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.1)\n"
        "print('parent done')"
    )
    result = hostile(sb, code)  # asserts that no process is left
    assert (result.ok, result.stdout) == (True, "parent done\n")


def test_cannot_kill_its_server_or_anything_else(sb: Sandbox) -> None:
    code = (
        "import os, signal\n"
        "for target in (os.getppid(), 1, -1):\n"
        "    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):\n"
        "        try:\n"
        "            os.kill(target, sig)\n"
        "        except OSError:\n"
        "            pass\n"
        "print('still alive')"
    )
    # kill(-1) reaches only what the program may signal in its namespace: itself excluded.
    assert hostile(sb, code).stdout == "still alive\n"
    assert psutil.Process().is_running()


def test_cannot_gain_privileges_or_new_namespaces(sb: Sandbox) -> None:
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "refused = 0\n"
        "for attempt in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot('/')):\n"
        "    try:\n"
        "        attempt()\n"
        "    except OSError:\n"
        "        refused += 1\n"
        "CLONE_NEWUSER, PTRACE_ATTACH = 0x10000000, 16\n"
        "print(refused, os.getuid() != 0, libc.unshare(CLONE_NEWUSER), ctypes.get_errno(),\n"
        "      libc.ptrace(PTRACE_ATTACH, 1, 0, 0), ctypes.get_errno())"
    )
    assert hostile(sb, code).stdout == "3 True -1 13 -1 13\n"


def test_cannot_reach_the_protocol_pipe(sb: Sandbox) -> None:
    code = (
        "import os, struct\n"
        "print(sorted(int(fd) for fd in os.listdir('/proc/self/fd'))[:4])\n"
        'fake = b\'{"ok": true, "stdout": "forged", "error": null}\'\n'
        "for fd in range(4, 1024):\n"
        "    try:\n"
        "        os.write(fd, struct.pack('>I', len(fake)) + fake)\n"
        "    except OSError:\n"
        "        pass"
    )
    result = hostile(sb, code)  # asserts that the next run is genuine
    assert result.stdout == "[0, 1, 2, 3]\n"


# --- crashes and exits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("import ctypes\nctypes.string_at(0)", "killed by signal SIGSEGV"),
        (
            "def f(n):\n    return f(n + 1)\nf(0)",
            "RecursionError: maximum recursion depth exceeded",
        ),
        (
            "import sys\nsys.setrecursionlimit(10**8)\nx = ()\nfor _ in range(300000):\n"
            "    x = (x,)\nx == x[0]",
            "killed by signal SIGSEGV",
        ),
        ("import os\nos._exit(7)", "exited with code 7"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGABRT)", "killed by signal SIGABRT"),
    ],
    ids=["ctypes-segfault", "deep-recursion", "c-stack-overflow", "os-exit", "abort"],
)
def test_crashes_and_exits_are_reported(sb: Sandbox, code: str, error: str) -> None:
    result = hostile(sb, code)
    assert (result.ok, result.error) == (False, error)


def test_huge_output_is_bounded(sb: Sandbox) -> None:
    result = hostile(sb, "import sys\nfor i in range(200000):\n    print(f'line {i}')")
    assert result.ok
    assert len(result.stdout) < sb.max_output + 100
    assert result.stdout.startswith("line 0\nline 1\n")
    assert result.stdout.endswith("line 199998\nline 199999\n")
    assert "bytes of output truncated" in result.stdout


def test_binary_garbage_output_is_valid_text(sb: Sandbox) -> None:
    code = "import os\nos.write(1, b'\\xff\\xfe\\x00\\xc3')\nos.write(1, b'(ok\\xe2\\x82')"
    assert hostile(sb, code).stdout == "\ufffd\ufffd\x00\ufffd(ok\ufffd"


# --- environment and state ---------------------------------------------------------------------


def test_cannot_read_the_callers_environment(sb: Sandbox) -> None:
    code = (
        "import glob, os\n"
        "seen = ' '.join(f'{k}={v}' for k, v in os.environ.items())\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        seen += open(path, 'rb').read().decode(errors='replace')\n"
        "    except OSError:\n"
        "        pass\n"
        f"print({SECRET_NAME!r} in seen, {SECRET_VALUE!r} in seen, 'PATH=' in seen)"
    )
    assert os.environ[SECRET_NAME] == SECRET_VALUE  # it is there to be stolen
    assert hostile(sb, code).stdout == "False False True\n"


def test_planted_modules_and_patched_state_do_not_reach_the_next_run(sb: Sandbox) -> None:
    plant = (
        "import builtins, math, sys\n"
        "for name in ('math', 'sympy', 'numpy', 'os', 'random'):\n"
        "    open(name + '.py', 'w').write('raise SystemExit(\"planted\")')\n"
        "sys.path.insert(0, '.')\n"
        "math.sqrt = lambda x: 42\n"
        "builtins.print = lambda *a, **k: None\n"
        "builtins.abs = None\n"
        "sys.modules['sympy'] = None\n"
        "import random\n"
        "random.seed(0)"
    )
    hostile(sb, plant)
    check = (
        "import math, os, sympy, numpy, random, sys\n"
        "print(math.sqrt(16), abs(-2), '.' in sys.path, os.listdir('.'))\n"
        "print(sympy.__file__.endswith('sympy/__init__.py'), random.random() != 0.8444218515250481)"
    )
    for _ in range(2):  # both workers
        assert hostile(sb, check).stdout == "4.0 2 False []\nTrue True\n"


def test_programs_batched_together_cannot_reach_each_other(sb: Sandbox) -> None:
    """run_many runs simple programs one after another in one process: the attacks here
    are not simple, so each runs in a process of its own, and the simple programs after
    them see an untouched interpreter."""
    victim = "from fractions import Fraction\nx = Fraction(1, 2) + 1\nprint(x)\n"
    attacks = [
        "import builtins\nbuiltins.print = lambda *a, **k: None",
        "import fractions\nfractions.Fraction = lambda *a: 0",
        "import sys\nsys.modules['fractions'] = None",
        'import os\nos.write(3, b\'{"i": 0, "ok": true, "stdout": "forged", "error": null}\\n\')',
        "import sys\nsys.stdout.write = None",
    ]
    codes = [code for attack in attacks for code in (attack, victim)]
    results = sb.run_many(codes)
    assert [results[k].stdout for k in range(1, len(codes), 2)] == ["3/2\n"] * len(attacks)
    assert leftover_processes(sb) == []
