"""The runner settings and the checks a round makes before any shard starts
(rstar.cluster): what a wrong address, an unwritable store or a missing model says."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

import rstar.config
from rstar.cluster import (
    ClusterError,
    RunnerConfig,
    StageResources,
    _host_port,
    check_address,
    check_writable,
    preflight,
    worker_env,
)
from rstar.config import load_profile
from rstar.evolve.stages import RunSpec
from rstar.tracking import Tracking, resolve_checkpoint


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_stage_resources_become_ray_options():
    assert StageResources().ray_options() == {"num_cpus": 1.0, "num_gpus": 0.0}
    gpu = StageResources(cpus=4, gpus=1, memory_mb=2048)
    assert gpu.ray_options() == {"num_cpus": 4.0, "num_gpus": 1.0, "memory": 2048 * 2**20}
    config = RunnerConfig(kind="ray", resources={"search": {"gpus": 1}})
    assert config.stage("search").gpus == 1.0
    assert config.stage("synthesis") == StageResources()
    assert RunnerConfig(resources={"train": {"gpus": 1}}).stage("train").gpus == 1.0
    with pytest.raises(ValueError, match="stage must be one of"):
        config.stage("register")
    with pytest.raises(ValidationError):
        RunnerConfig(kind="dask")
    with pytest.raises(ValidationError):
        RunnerConfig(resources={"curate": {"gpus": 1}})  # curation runs in the flow process


def test_the_default_profile_runs_shards_in_threads():
    assert load_profile("tiny").runner == RunnerConfig()
    assert RunnerConfig().kind == "thread"


def test_workers_get_the_pipelines_variables_and_the_flows_api():
    environ = {
        "PREFECT_HOME": "/runs/prefect-home",
        "MLFLOW_TRACKING_URI": "sqlite:////runs/mlflow.db",
        "RSTAR_RUN_DIR": "/runs",
        "HF_HUB_OFFLINE": "1",
        "HOME": "/root",
        "OPENAI_API_KEY": "sk-never-passed",
    }
    env = worker_env("http://127.0.0.1:8123/api", environ)
    assert env == {
        "PREFECT_HOME": "/runs/prefect-home",
        "MLFLOW_TRACKING_URI": "sqlite:////runs/mlflow.db",
        "RSTAR_RUN_DIR": "/runs",
        "HF_HUB_OFFLINE": "1",
        "PREFECT_API_URL": "http://127.0.0.1:8123/api",
    }


def test_an_unreachable_ray_address_is_named_with_the_fix():
    port = closed_port()
    with pytest.raises(ClusterError, match=rf"no Ray head answers at 127.0.0.1:{port} .*"
                       rf"ray start --head --port {port}"):  # fmt: skip
        check_address(f"127.0.0.1:{port}", timeout=2)
    with pytest.raises(ClusterError, match="not HOST:PORT"):
        check_address("127.0.0.1:head", timeout=2)
    check_address(None, timeout=2)  # a temporary local Ray: nothing to check
    assert _host_port("10.0.0.5") == ("10.0.0.5", 6379)  # the head's GCS port
    assert _host_port("ray://10.0.0.5") == ("10.0.0.5", 10001)  # the Ray client's
    assert _host_port("ray://10.0.0.5:10002") == ("10.0.0.5", 10002)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_address(f"ray://127.0.0.1:{server.getsockname()[1]}", timeout=2)


def test_auto_needs_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ClusterError, match="RAY_ADDRESS is not set"):
        check_address("auto", timeout=2)
    port = closed_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(
        ClusterError, match=rf"no Ray head answers at auto \(RAY_ADDRESS=127.0.0.1:{port}\)"
    ):
        check_address("auto", timeout=2)


def test_a_store_workers_cannot_write_fails_first(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ClusterError, match=rf"the store {blocker}/store is not writable"):
        check_writable(blocker / "store", "the store")
    check_writable(tmp_path / "new" / "store", "the store")
    assert (tmp_path / "new" / "store").is_dir()
    assert list((tmp_path / "new" / "store").iterdir()) == []  # the probe is removed
    port = closed_port()
    ray = RunnerConfig(kind="ray", address=f"127.0.0.1:{port}", connect_timeout=2)
    with pytest.raises(ClusterError, match="the store"):  # paths first, then the cluster
        preflight(ray, {"the store": blocker / "store"})
    with pytest.raises(ClusterError, match="no Ray head answers"):
        preflight(ray, {"the store": tmp_path / "store"})
    preflight(RunnerConfig(), {"the store": tmp_path / "store"})


def test_a_registry_reference_that_does_not_exist_is_named(tmp_path: Path):
    tracking = Tracking.for_run(tmp_path)
    assert resolve_checkpoint("/ckpt/policy", tracking.tracking_uri) == "/ckpt/policy"
    with pytest.raises(LookupError, match="models:/policy/7 is not in the MLflow registry"):
        resolve_checkpoint("models:/policy/7", tracking.tracking_uri)


def test_a_run_spec_is_absolute_so_any_node_resolves_it(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RSTAR_RUN_DIR", raising=False)
    (tmp_path / "mine.yaml").write_text((Path(rstar.config.PROFILES_DIR) / "tiny.yaml").read_text())
    spec = RunSpec("mine.yaml", "runs/a", quick=True).absolute()
    assert spec == RunSpec(str(tmp_path / "mine.yaml"), str(tmp_path / "runs" / "a"), True)
    assert RunSpec("tiny").absolute() == RunSpec("tiny", str(tmp_path / "runs"), False)
    monkeypatch.chdir(tmp_path / "..")  # elsewhere, the same run
    assert spec.load().run_dir == tmp_path / "runs" / "a"
