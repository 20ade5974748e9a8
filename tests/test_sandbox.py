"""rstar.sandbox, normal behaviour: output, errors, limits, parallel order, fresh state, restarts.

Hostile programs are in test_sandbox_adversarial.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from rstar.sandbox import DEFAULT_PRELOAD, ExecResult, IsolationLevel, Sandbox
from rstar.sandbox._server import is_simple

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(timeout=TIMEOUT, memory_mb=1024, workers=2) as sandbox:
        yield sandbox


def test_prints_and_completes(sb: Sandbox) -> None:
    result = sb.run("x = 6 * 7\nprint(x)\nprint('done', end='')")
    assert (result.ok, result.stdout, result.error) == (True, "42\ndone", None)
    assert 0 < result.duration < 1.0
    with pytest.raises(AttributeError):
        result.ok = False  # type: ignore[misc]  # frozen


def test_error_is_type_and_message_and_output_before_it_is_kept(sb: Sandbox) -> None:
    result = sb.run("print('before')\nprint(y)\nprint('after')")
    assert result == ExecResult(
        False, "before\n", "NameError: name 'y' is not defined", result.duration
    )


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("x = (", "SyntaxError: '(' was never closed (<unknown>, line 1)"),
        ("x = 1\n  y = 2", "IndentationError: unexpected indent (<unknown>, line 2)"),
        ("raise ValueError", "ValueError"),
        ("1 / 0", "ZeroDivisionError: division by zero"),
        ("import sys\nsys.exit(3)", "exited with code 3"),
        ("import sys\nsys.exit('bye')", "exited with code 1"),
        ("import os\nos._exit(5)", "exited with code 5"),
        ("input()", "EOFError: EOF when reading a line"),  # stdin is empty
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed by signal SIGKILL"),
    ],
)
def test_errors_say_what_happened(sb: Sandbox, code: str, error: str) -> None:
    result = sb.run(code)
    assert (result.ok, result.error) == (False, error)


@pytest.mark.parametrize(
    ("code", "stdout"),
    [
        ("import sys\nsys.exit(0)", "a\n"),
        ("import sys\nsys.exit()", "a\n"),
        # os._exit skips the flush, as in any Python whose stdout is not a terminal
        ("import os\nos._exit(0)", ""),
        ("import os, sys\nsys.stdout.flush()\nos._exit(0)", "a\n"),
    ],
)
def test_a_clean_exit_is_ok(sb: Sandbox, code: str, stdout: str) -> None:
    result = sb.run("print('a')\n" + code + "\nprint('b')")
    assert (result.ok, result.stdout, result.error) == (True, stdout, None)


def test_math_libraries_are_preloaded(sb: Sandbox) -> None:
    code = (
        "import math, sympy, numpy as np, scipy\n"
        "from fractions import Fraction\n"
        "x = sympy.Symbol('x')\n"
        "print(sympy.solve(x**2 - 5*x + 6, x))\n"
        "print(round(float(np.linalg.det(np.array([[2.0, 1.0], [1.0, 3.0]]))), 6))\n"
        "print(Fraction(1, 3) + Fraction(1, 6), math.comb(5, 2))\n"
    )
    result = sb.run(code)
    assert (result.ok, result.stdout) == (True, "[2, 3]\n5.0\n1/2 10\n")
    # Importing sympy, numpy and scipy from scratch takes far longer than this whole run.
    assert result.duration < 1.0
    # scipy's subpackages load on first use (add them to `preload` to pay that once).
    optimize = sb.run(
        "from scipy import optimize\nprint(round(optimize.brentq(lambda v: v**3 - 8, 0, 5), 9))"
    )
    assert (optimize.ok, optimize.stdout) == (True, "2.0\n")


def test_run_many_keeps_order_and_runs_in_parallel(sb: Sandbox) -> None:
    codes = [f"import time\ntime.sleep({0.4 if i % 2 else 0.1})\nprint({i})" for i in range(6)]
    start = time.perf_counter()
    results = sb.run_many(codes)
    elapsed = time.perf_counter() - start
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
    assert all(r.ok for r in results)
    assert elapsed < 0.8 * sum(r.duration for r in results)  # two workers at once
    assert sb.run_many([]) == []


def test_timeout_default_and_override(sb: Sandbox) -> None:
    slow = "import time\ntime.sleep(0.8)\nprint('woke')"
    assert sb.run(slow).stdout == "woke\n"  # within the default 2 s
    result = sb.run(slow, timeout=0.3)
    assert (result.ok, result.error) == (False, "timeout after 0.3s")
    assert 0.3 <= result.duration < 1.3
    many = sb.run_many([slow, "print(1)"], timeout=0.3)
    assert [(r.ok, r.error) for r in many] == [(False, "timeout after 0.3s"), (True, None)]


def test_output_flushed_before_a_timeout_is_kept(sb: Sandbox) -> None:
    result = sb.run("print('started', flush=True)\nwhile True:\n    pass", timeout=0.5)
    assert (result.stdout, result.error) == ("started\n", "timeout after 0.5s")


def test_long_output_keeps_head_and_tail() -> None:
    with Sandbox(timeout=TIMEOUT, workers=1, max_output=100) as small:
        assert len(small.worker_pids) == 1
        result = small.run("import sys\nsys.stdout.write('H' * 500 + 'T' * 500)")
    assert result.ok
    assert result.stdout == "H" * 50 + "\n[... 900 bytes of output truncated ...]\n" + "T" * 50


def test_output_is_always_text(sb: Sandbox) -> None:
    result = sb.run("import os\nos.write(1, bytes(range(256)))\nprint('\\u03c0 \\ud800')")
    assert result.ok
    assert result.stdout == bytes(range(256)).decode("utf-8", "replace") + "\u03c0 \\ud800\n"


def test_memory_limit_is_on_top_of_the_template(sb: Sandbox) -> None:
    fits = sb.run("b = bytearray(600 * 2**20)\nprint(len(b) // 2**20)")
    assert (fits.ok, fits.stdout) == (True, "600\n")
    too_much = sb.run("b = bytearray(1100 * 2**20)")
    assert (too_much.ok, too_much.error) == (False, "memory limit exceeded (1024 MB)")


def test_each_run_starts_fresh(sb: Sandbox) -> None:
    first = (
        "import builtins, math\n"
        "math.pi = 3\n"
        "builtins.len = lambda x: -1\n"
        "SECRET = 'left over'\n"
        "open('notes.txt', 'w').write('x')\n"
    )
    second = "import math, os\nprint(math.pi, len('ab'), 'SECRET' in globals(), os.listdir('.'))"
    assert sb.run(first).ok
    for _ in range(2):  # whichever worker it lands on
        result = sb.run(second)
        assert (result.ok, result.stdout) == (True, "3.141592653589793 2 False []\n")


def test_scratch_dir_is_private_and_writable(sb: Sandbox) -> None:
    code = (
        "import os, tempfile\n"
        "open('a.txt', 'w').write('hello')\n"
        "with tempfile.NamedTemporaryFile(dir=None) as f:\n"
        "    inside = os.path.dirname(f.name) == os.getcwd()\n"
        "print(open('a.txt').read(), inside, os.environ['HOME'] == os.getcwd())"
    )
    assert sb.run(code).stdout == "hello True True\n"


def test_strongest_available_isolation_is_used(sb: Sandbox) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    assert sb.isolation is IsolationLevel.BWRAP
    assert sb.drops_privileges == (os.geteuid() == 0)


def test_a_dead_server_is_replaced_transparently(sb: Sandbox) -> None:
    before = sb.restarts
    for pid in sb.worker_pids:
        for proc in psutil.Process(pid).children(recursive=True) or [psutil.Process(pid)]:
            if "_server.py" in " ".join(proc.cmdline()):
                proc.send_signal(signal.SIGKILL)
    results = sb.run_many(["print('back')"] * 4)
    assert [r.stdout for r in results] == ["back\n"] * 4
    assert sb.restarts == before + 2


def test_bad_arguments_are_refused(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Sandbox(timeout=0)
    with pytest.raises(ValueError, match="workers"):
        Sandbox(workers=0)
    with pytest.raises(TypeError, match="must be str"):
        sb.run(b"print(1)")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        sb.run("print(1)", timeout=-1)
    with pytest.raises(RuntimeError, match="not started"):
        Sandbox(workers=1).run("print(1)")


@pytest.mark.parametrize("level", [IsolationLevel.UNSHARE, IsolationLevel.FORK])
def test_fallback_levels_run_code_and_contain_it(level: IsolationLevel) -> None:
    """The levels used when bubblewrap cannot run: same API, code still contained.

    UNSHARE remounts / read-only, so even a world-writable host directory is safe; FORK has no
    mount namespace, so there only the uid drop (as root) protects a directory closed to others.
    """
    if level is IsolationLevel.UNSHARE and shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    target = Path(tempfile.mkdtemp(dir="/var/tmp"))
    target.chmod(0o777 if level is IsolationLevel.UNSHARE else 0o755)
    write = f"print(sum(range(10)))\nopen('{target}/planted', 'w').write('x')"
    connect = f"import socket\nsocket.socket().connect(('127.0.0.1', {port}))"
    try:
        # Without a mount namespace a closed interpreter directory (a pyenv under /root) stays
        # closed to the dropped uid: only what the server preloaded can be imported.
        preload = (*DEFAULT_PRELOAD, "socket")
        with Sandbox(timeout=TIMEOUT, workers=1, isolation=level, preload=preload) as sandbox:
            assert sandbox.isolation is level
            wrote = sandbox.run(write)
            connected = sandbox.run(connect)
            assert sandbox.run("print('still here')").stdout == "still here\n"
        assert wrote.stdout == "45\n"
        if level is IsolationLevel.UNSHARE or sandbox.drops_privileges:
            assert not wrote.ok
            assert not (target / "planted").exists()
        assert (connected.ok, connected.error) == (
            False,
            "PermissionError: [Errno 13] Permission denied",
        )
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
        shutil.rmtree(target)


# --- simple programs batched in one child (run_many) ---------------------------------------

TOY = "# Step 1: add\nx = 3 + 4\n# Step 2: scale\nx = x * {k}\n# Now print the answer\nprint(x)\n"


@pytest.mark.parametrize(
    "code",
    [
        TOY.format(k=2),
        "from fractions import Fraction\nmoney = Fraction(38, 6)\nprint(money)\n",
        "import math\nr = math.sqrt(16) + math.pi\nprint(round(r, 2), end='')\n",
        "a = -2 ** 10 // 3 % 7\na += 1\nprint(f'{a:>4}', abs(a), min(a, 2), sep=', ')\n",
        "pass\n",
    ],
)
def test_straight_line_arithmetic_is_simple(code: str) -> None:
    assert is_simple(code)


@pytest.mark.parametrize(
    "code",
    [
        "import os\nprint(os.getpid())",  # any other import
        "from fractions import Fraction as F\nprint(F(1, 2))",  # renamed imports
        "print(print.__self__)",  # attributes other than math's functions
        "x = ().__class__",
        "__builtins__ = None",  # underscore names
        "print(__import__('os'))",
        "x = [1, 2]\nprint(x[0])",  # subscripts, containers
        "f = lambda: 1",  # definitions, loops, comprehensions
        "for i in range(3):\n    print(i)",
        "print([i for i in range(3)])",
        "x = 10 ** 10 ** 8",  # unbounded exponents
        "x = 2 ** y",
        "open('f', 'w')",  # other calls
        "exec('print(1)')",
        "print(1, file=None)",  # keywords beyond sep and end
        "x = (",  # what does not parse
        "math = 3",  # shadowing math
    ],
)
def test_anything_else_is_not_simple(code: str) -> None:
    assert not is_simple(code)


def test_a_batch_gives_each_program_its_own_namespace_output_and_error(sb: Sandbox) -> None:
    codes = [
        "x = 1\nprint(x)",
        "print(x)",  # x of the program before must not exist here
        TOY.format(k=3),
        "x = 1 / 0",
        "print('a' * 40000)",  # its output is bounded alone
        "import os\nprint(os.getpid())",  # not simple: a child of its own
        "import os\nprint(os.getpid())",
    ]
    results = sb.run_many(codes)
    assert [(r.ok, r.error) for r in results[:4]] == [
        (True, None),
        (False, "NameError: name 'x' is not defined"),
        (True, None),
        (False, "ZeroDivisionError: division by zero"),
    ]
    assert [r.stdout for r in results[:3]] == ["1\n", "", "21\n"]
    assert results[4].ok and len(results[4].stdout) < 17_000 and "truncated" in results[4].stdout
    assert results[5].stdout != results[6].stdout  # two processes
    assert [(r.ok, r.stdout, r.error) for r in results[:4]] == [
        (r.ok, r.stdout, r.error) for r in (sb.run(code) for code in codes[:4])
    ]  # as run alone


def test_a_simple_program_that_never_ends_times_out_alone(sb: Sandbox) -> None:
    endless = "x = 10 ** 64\n" + "x = x ** 64\n" * 8 + "print(x % 7)\n"
    assert is_simple(endless)
    codes = [TOY.format(k=k) for k in range(5)] + [endless] + [TOY.format(k=9)]
    results = sb.run_many(codes, timeout=1.0)
    assert [r.stdout for r in results[:5]] == [f"{7 * k}\n" for k in range(5)]
    assert (results[5].ok, results[5].error) == (False, "timeout after 1s")
    assert results[6].stdout == "63\n"
