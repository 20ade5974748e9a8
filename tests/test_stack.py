"""The local stack with real processes: Prefect server + worker and the MLflow UI.

Each stack test starts the real services on free ports with a temporary run directory,
checks them over HTTP, and stops them, asserting that every process (children included)
is gone and the ports are free again.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pickle
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from pydantic import ValidationError
from rich.console import Console
from tiny_models import tiny_checkpoint
from typer.testing import CliRunner

from rstar.cli.stack import stack_app
from rstar.stack import (
    COMPONENTS,
    MLFLOW,
    SERVER,
    TEACHER,
    WORKER,
    StackConfig,
    StackError,
    env_exports,
    pid_file,
    saved_config,
    stack_env,
    start,
    status,
    stop,
)
from rstar.tracking import Tracking, TrackingConfig, activate

PREFECT = str(Path(sys.executable).parent / "prefect")


def free_ports(count: int) -> list[int]:
    """Distinct ports nothing listens on (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def flat(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def make_config(tmp_path: Path, **overrides: object) -> StackConfig:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    prefect_port, mlflow_port = free_ports(2)
    fields: dict[str, object] = {
        "prefect_port": prefect_port,
        "mlflow_port": mlflow_port,
        "run_dir": tmp_path / "runs",
        "project_dir": project,
        "worker_query_seconds": 1,
    }
    return StackConfig(**{**fields, **overrides})


def cli_args(config: StackConfig) -> list[str]:
    return [
        "--prefect-port",
        str(config.prefect_port),
        "--mlflow-port",
        str(config.mlflow_port),
        "--run-dir",
        str(config.run_dir),
        "--project-dir",
        str(config.project_dir),
        "--worker-query-seconds",
        "1",
    ]


def pids(config: StackConfig) -> dict[str, int]:
    return {
        name: json.loads(pid_file(config, name).read_text())["pid"]
        for name in COMPONENTS
        if pid_file(config, name).exists()
    }


def process_trees(config: StackConfig) -> dict[str, list[psutil.Process]]:
    trees = {}
    for name, pid in pids(config).items():
        root = psutil.Process(pid)
        trees[name] = [root, *root.children(recursive=True)]
    return trees


def assert_stopped(config: StackConfig, trees: dict[str, list[psutil.Process]]) -> None:
    for name, procs in trees.items():
        for proc in procs:
            assert not proc.is_running(), f"{name}: pid {proc.pid} still running"
        assert not pid_file(config, name).exists()
    assert port_free(config.prefect_port)
    assert port_free(config.mlflow_port)


FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def run_deployment(config: StackConfig, name: str, *args: str) -> dict:
    """``prefect deployment run`` from a client with the stack's env; the new flow run."""
    ran = subprocess.run(
        [PREFECT, "deployment", "run", name, *args],
        env={**os.environ, **stack_env(config)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", ran.stdout).group(1)
    return httpx.get(f"{config.prefect_url}/api/flow_runs/{run_id}").json()


def wait_for_state(
    config: StackConfig, run_id: str, states: set[str], timeout: float = 60.0
) -> dict:
    """Poll the flow run until its state type is one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        flow_run = httpx.get(f"{config.prefect_url}/api/flow_runs/{run_id}").json()
        if flow_run["state"]["type"] in states:
            return flow_run
        assert time.monotonic() < deadline, f"flow run still {flow_run['state']['type']}"
        time.sleep(0.5)


@pytest.fixture
def stack_config(tmp_path: Path) -> Iterator[StackConfig]:
    """A config on free ports; whatever a test left running is stopped afterwards."""
    config = make_config(tmp_path)
    yield config
    stop(config, Console(file=io.StringIO()))


def test_config_defaults_resolve_under_the_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = StackConfig()
    runs = tmp_path.resolve() / "runs"
    tracking = Tracking.for_run(runs)
    assert config.run_dir == runs
    assert config.state_dir == runs / "stack"
    assert config.project_dir == tmp_path.resolve()
    assert config.mlflow_tracking_uri == f"sqlite:///{runs}/mlflow/mlflow.db"
    assert config.mlflow_artifact_root == (runs / "mlflow" / "artifacts").as_uri()
    assert (config.mlflow_tracking_uri, config.mlflow_artifact_root) == (
        tracking.tracking_uri,
        tracking.artifact_location,
    )
    assert stack_env(config) == {
        "PREFECT_API_URL": "http://127.0.0.1:4200/api",
        "PREFECT_HOME": f"{runs}/stack/prefect-home",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": f"{runs}/prefect/results",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_WORKER_QUERY_SECONDS": "5",
        "MLFLOW_TRACKING_URI": f"sqlite:///{runs}/mlflow/mlflow.db",
        "RSTAR_MLFLOW_UI": "http://127.0.0.1:5000",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "RSTAR_RUN_DIR": str(runs),
    }
    with pytest.raises(ValidationError, match="prefect_port and mlflow_port are both 5000"):
        StackConfig(prefect_port=5000)
    custom = StackConfig(run_dir="r", state_dir="s", prefect_port=4300, worker_query_seconds=0.5)
    assert custom.state_dir == tmp_path.resolve() / "s"
    assert stack_env(custom)["PREFECT_API_URL"] == "http://127.0.0.1:4300/api"
    assert stack_env(custom)["PREFECT_WORKER_QUERY_SECONDS"] == "0.5"
    assert stack_env(custom)["PREFECT_HOME"] == f"{tmp_path.resolve()}/s/prefect-home"
    plain = StackConfig(mlflow_artifact_root="art")
    assert plain.mlflow_artifact_root == f"file://{tmp_path.resolve()}/art"


@pytest.mark.parametrize(
    ("field", "option"), [("prefect_port", "--prefect-port"), ("mlflow_port", "--mlflow-port")]
)
def test_port_in_use_is_a_clear_error(tmp_path: Path, field: str, option: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = make_config(tmp_path, **{field: port})
        with pytest.raises(StackError, match=f"port {port} on 127.0.0.1 .* {option}"):
            start(config, Console(file=io.StringIO()))
        result = CliRunner(env={"COLUMNS": "300"}).invoke(stack_app, ["start", *cli_args(config)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1" in flat(result.output)
    assert option in flat(result.output)
    assert pids(config) == {}


def test_start_status_env_stop_without_prefect_yaml(stack_config: StackConfig) -> None:
    config = stack_config
    runner = CliRunner(env={"COLUMNS": "300"})
    # An experiment made the way the pipeline makes them, before the UI exists.
    tracking = Tracking.for_run(config.run_dir, TrackingConfig(experiment="stack-check"))
    experiment_id = activate(tracking)

    started = runner.invoke(stack_app, ["start", *cli_args(config)])
    assert started.exit_code == 0, started.output
    out = flat(started.output)
    assert f"no prefect.yaml in {config.project_dir}: nothing deployed" in out
    assert f"Prefect UI: http://127.0.0.1:{config.prefect_port}" in out
    assert f"MLflow UI: http://127.0.0.1:{config.mlflow_port}" in out
    assert f"Stop with: rstar stack stop --run-dir {config.run_dir}" in out
    first = pids(config)
    assert set(first) == {SERVER, WORKER, MLFLOW}

    api = f"http://127.0.0.1:{config.prefect_port}/api"
    assert httpx.get(f"{api}/health").json() is True
    pool = httpx.get(f"{api}/work_pools/rstar").json()
    assert (pool["name"], pool["type"]) == ("rstar", "process")
    workers = httpx.post(f"{api}/work_pools/rstar/workers/filter", json={}).json()
    assert [(w["name"], w["status"]) for w in workers] == [("rstar-worker", "ONLINE")]
    mlflow = f"http://127.0.0.1:{config.mlflow_port}"
    assert httpx.get(f"{mlflow}/").status_code == 200
    found = httpx.post(
        f"{mlflow}/api/2.0/mlflow/experiments/search", json={"max_results": 100}
    ).json()["experiments"]
    by_name = {e["name"]: e for e in found}
    assert by_name["stack-check"]["experiment_id"] == experiment_id
    assert by_name["stack-check"]["artifact_location"] == tracking.artifact_location

    # Starting again starts nothing new.
    again = runner.invoke(stack_app, ["start", *cli_args(config)])
    assert again.exit_code == 0, again.output
    assert flat(again.output).count("(already running)") == 3
    assert pids(config) == first
    # ... and a start with other settings is refused, naming the fix.
    other = runner.invoke(stack_app, ["start", *cli_args(config), "--work-pool", "other"])
    assert other.exit_code == 1
    assert "runs with other settings (work_pool rstar -> other)" in flat(other.output)

    # status, env and stop find the stack from its run directory alone.
    where = ["--run-dir", str(config.run_dir)]
    shown = runner.invoke(stack_app, ["status", *where])
    assert shown.exit_code == 0
    assert flat(shown.output).count("healthy") == 3
    for name, pid in first.items():
        assert re.search(rf"{name}\s*│\s*{pid}\s*│", shown.output)
    assert [(s.name, s.pid, s.healthy) for s in status(config)] == [
        (SERVER, first[SERVER], True),
        (WORKER, first[WORKER], True),
        (MLFLOW, first[MLFLOW], True),
    ]
    exported = runner.invoke(stack_app, ["env", *where])
    assert exported.output == env_exports(config)
    assert f"export PREFECT_API_URL=http://127.0.0.1:{config.prefect_port}/api\n" in exported.output

    trees = process_trees(config)
    assert len(trees[MLFLOW]) == 2  # mlflow server + its single uvicorn worker
    stopped = runner.invoke(stack_app, ["stop", *where])
    assert stopped.exit_code == 0, stopped.output
    assert flat(stopped.output).count("✓ stopped") == 3
    assert_stopped(config, trees)

    noop = runner.invoke(stack_app, ["stop", *where])
    assert noop.exit_code == 0
    assert f"nothing running (state in {config.state_dir})" in flat(noop.output)
    assert [(s.running, s.healthy) for s in status(config)] == [(False, False)] * 3


def test_the_stack_serves_a_teacher_over_http(tmp_path: Path, monkeypatch) -> None:
    """--teacher adds `rstar serve --execute` over a checkpoint, on 127.0.0.1 with its key;
    status sees it and stop ends it with the rest."""
    monkeypatch.setenv("STACK_TEACHER_KEY", "sk-stack-teacher")
    checkpoint = tiny_checkpoint(tmp_path / "teacher", ["Ann has 3 apples. How many?"] * 10)
    (teacher_port,) = free_ports(1)
    config = make_config(
        tmp_path, teacher=checkpoint, teacher_port=teacher_port,
        teacher_api_key_env="STACK_TEACHER_KEY",
    )  # fmt: skip
    runner = CliRunner(env={"COLUMNS": "300"})
    args = [*cli_args(config), "--teacher", str(checkpoint), "--teacher-port", str(teacher_port)]
    try:
        started = runner.invoke(
            stack_app, ["start", *args, "--teacher-api-key-env", "STACK_TEACHER_KEY"]
        )
        assert started.exit_code == 0, started.output
        url = f"http://127.0.0.1:{teacher_port}/v1"
        assert f"Teacher: {url} (model 'toy-teacher')" in flat(started.output)
        assert [(s.name, s.healthy) for s in status(config)] == [
            (SERVER, True), (WORKER, True), (MLFLOW, True), (TEACHER, True),
        ]  # fmt: skip
        assert httpx.get(f"{url}/models").status_code == 401  # the key is asked for
        listed = httpx.get(f"{url}/models", headers={"Authorization": "Bearer sk-stack-teacher"})
        assert [m["id"] for m in listed.json()["data"]] == ["toy-teacher"]
        assert "sk-stack-teacher" not in (config.logs_dir / "teacher.log").read_text()
        trees = process_trees(config)
    finally:
        stopped = runner.invoke(stack_app, ["stop", "--run-dir", str(config.run_dir)])
    assert flat(stopped.output).count("✓ stopped") == 4
    assert_stopped(config, trees)
    assert port_free(teacher_port)
    # a missing checkpoint stops `start` before anything runs, while `status` and `stop` of a
    # stack whose checkpoint has gone since still read its saved settings
    missing = make_config(tmp_path, teacher=tmp_path)
    with pytest.raises(StackError, match=r"is not a model checkpoint .* `rstar toy teacher`"):
        start(missing, Console(file=io.StringIO()))
    assert pids(missing) == {}
    (checkpoint / "config.json").unlink()
    assert saved_config(config.state_dir).teacher == checkpoint
    shown = runner.invoke(stack_app, ["status", "--run-dir", str(config.run_dir)])
    assert shown.exit_code == 0 and "teacher" in shown.output
    with pytest.raises(ValidationError, match="prefect_port and teacher_port are both 4200"):
        StackConfig(teacher=checkpoint, teacher_port=4200)


FLOW = """\
from prefect import flow, task


@task
def multiply(a: int, b: int) -> int:
    return a * b


@flow
def hello(a: int = 6, b: int = 7) -> int:
    return multiply(a, b)


@flow
def sleepy(seconds: float = 300) -> None:
    import time

    time.sleep(seconds)
"""


def test_start_deploys_and_the_worker_runs_the_flow(stack_config: StackConfig) -> None:
    config = stack_config
    (config.project_dir / "hello.py").write_text(FLOW)
    (config.project_dir / "prefect.yaml").write_text(
        "name: stack-test\n"
        "pull:\n"
        "  - prefect.deployments.steps.set_working_directory:\n"
        f"      directory: {config.project_dir}\n"
        "deployments:\n"
        "  - name: once\n"
        "    entrypoint: hello.py:hello\n"
        "    work_pool:\n"
        "      name: rstar\n"
        "  - name: long\n"
        "    entrypoint: hello.py:sleepy\n"
        "    work_pool:\n"
        "      name: rstar\n"
    )
    output = io.StringIO()
    statuses = start(config, Console(file=output, width=300))
    assert f"deployed {config.project_dir / 'prefect.yaml'}" in output.getvalue()
    assert [(s.name, s.running, s.healthy) for s in statuses] == [
        (SERVER, True, True),
        (WORKER, True, True),
        (MLFLOW, True, True),
    ]
    api = f"http://127.0.0.1:{config.prefect_port}/api"
    deployment = httpx.get(f"{api}/deployments/name/hello/once").json()
    assert deployment["work_pool_name"] == "rstar"

    flow_run = run_deployment(config, "hello/once", "-p", "a=5", "-p", "b=9")
    flow_run = wait_for_state(config, flow_run["id"], FINAL)
    worker_log = (config.logs_dir / "prefect-worker.log").read_text()
    assert flow_run["state"]["type"] == "COMPLETED", worker_log[-3000:]
    # The result went to the stack's result storage (persisted by default): 5 * 9, pickled.
    stored = Path(flow_run["state"]["data"]["storage_key"])
    assert stored.parent == config.run_dir / "prefect" / "results"
    assert base64.b64decode(stored.read_text()) == pickle.dumps(45, protocol=5)

    # Stopping with a flow run in progress ends it (in its own session, under the worker)
    # and it is reported as crashed, so it can be retried.
    long_run = run_deployment(config, "sleepy/long")
    assert wait_for_state(config, long_run["id"], {"RUNNING"})["state"]["type"] == "RUNNING"
    trees = process_trees(config)
    worker_pid = pids(config)[WORKER]
    flow_runs = [p for p in trees[WORKER] if os.getsid(p.pid) != worker_pid]
    assert [p.cmdline()[1:] for p in flow_runs] == [["-m", "prefect.engine"]]
    output = io.StringIO()
    assert stop(config, Console(file=output, width=300)) == [SERVER, WORKER, MLFLOW]
    assert "✓ stopped 1 process(es) started by Prefect worker" in output.getvalue()
    assert_stopped(config, trees)
    assert stop(config, Console(file=io.StringIO())) == []

    # The server's own database (the server is down now) holds the run's last state.
    with contextlib.closing(sqlite3.connect(config.state_dir / "prefect-home/prefect.db")) as db:
        crashed = db.execute(
            "SELECT f.state_type, s.message FROM flow_run f JOIN flow_run_state s"
            " ON s.id = f.state_id WHERE f.name = ?",
            (long_run["name"],),
        ).fetchall()
    assert crashed == [("CRASHED", "Execution was aborted by an interrupt signal.")]


def test_a_service_that_fails_to_start_is_reported_and_the_rest_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Prefect database that cannot be opened: the server exits during startup.
    monkeypatch.setenv(
        "PREFECT_API_DATABASE_CONNECTION_URL", "sqlite+aiosqlite:////nonexistent/x.db"
    )
    config = make_config(tmp_path)
    with pytest.raises(StackError) as failure:
        start(config, Console(file=io.StringIO()))
    message = str(failure.value)
    assert message.startswith(
        f"Prefect server exited while starting; last lines of {config.logs_dir}/prefect-server.log:"
    )
    assert "unable to open database file" in message
    # The MLflow UI started alongside it was stopped again.
    assert pids(config) == {}
    assert port_free(config.mlflow_port)
    with pytest.raises(StackError, match=r"cannot listen on 256\.0\.0\.1:4200 .*check --host"):
        start(
            StackConfig(host="256.0.0.1", run_dir=tmp_path / "other"), Console(file=io.StringIO())
        )
