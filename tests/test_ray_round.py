"""A quick round on a real Ray cluster on 127.0.0.1: a head and a second node started as
separate processes (`ray start --head`, `ray start --address`), the round's shards run on
them through prefect-ray, and the store equals a thread run's; the second node is killed
(SIGKILL) while it runs an MCTS shard, and nothing is lost or written twice.

Slow (two quick rounds and a cluster: a few minutes), so RSTAR_SLOW=1 / CI only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from rstar.config import PROFILES_DIR
from rstar.store import Catalog, StoreLayout

REPO = Path(__file__).resolve().parents[1]
RSTAR = str(Path(sys.executable).parent / "rstar")
RAY = str(Path(sys.executable).parent / "ray")
STARTED = "This command will now block forever"
# A cluster's token (Ray 2.60 authenticates by default): nodes and drivers all hold it.
RAY_ENV = {
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(16),
    "RAY_USAGE_STATS_ENABLED": "0",
}
SHARD_TASK = "ray::search_shard"  # a Ray worker's title while it runs a search shard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@dataclass
class Node:
    """One `ray start --block` process: its session holds every process of the node."""

    process: subprocess.Popen
    log: Path

    def processes(self) -> list[psutil.Process]:
        """The node's live processes (a killed one may linger as a zombie until reaped)."""
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getsid(proc.pid) == self.process.pid and proc.status() != "zombie":
                    found.append(proc)
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
        return found

    def running(self, title: str) -> bool:
        """Whether a process of the node has ``title`` (Ray retitles a busy worker)."""
        for proc in self.processes():
            try:
                if " ".join(proc.cmdline()).startswith(title):
                    return True
            except psutil.Error:
                continue
        return False

    def kill(self, sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


def start_node(args: list[str], log: Path, env: dict[str, str]) -> Node:
    with log.open("w") as out:
        process = subprocess.Popen(
            [RAY, "start", *args, "--node-ip-address=127.0.0.1", "--num-cpus=1", "--block",
             "--disable-usage-stats"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    node = Node(process, log)
    wait_for(lambda: STARTED in log.read_text() or process.poll() is not None, "ray start", 120)
    assert process.poll() is None, log.read_text()[-3000:]
    return node


@dataclass
class Cluster:
    address: str
    env: dict[str, str]  # what a driver needs: the cluster's token
    head: Node
    second: Node | None


@contextmanager
def ray_cluster(tmp_path: Path, count: int = 2) -> Iterator[Cluster]:
    """A head and (``count`` 2) a second node on 127.0.0.1, one CPU each, token-authenticated;
    every process of them is gone afterwards."""
    port = free_port()
    env = os.environ | RAY_ENV
    nodes: list[Node] = []
    try:
        nodes.append(
            start_node(
                ["--head", f"--port={port}", "--include-dashboard=false"],
                tmp_path / "ray-head.log",
                env,
            )
        )
        if count == 2:
            second = start_node([f"--address=127.0.0.1:{port}"], tmp_path / "ray-node-2.log", env)
            nodes.append(second)
        yield Cluster(f"127.0.0.1:{port}", env, nodes[0], nodes[1] if count == 2 else None)
    finally:
        for node in reversed(nodes):
            node.kill(signal.SIGTERM)
        for node in nodes:
            try:
                node.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.kill(signal.SIGKILL)
                node.process.wait(timeout=20)
        for node in nodes:
            wait_for(lambda n=node: not n.processes(), "the node's processes to end", 30)


def profile(path: Path, runner: dict, threads: int | None = 1) -> Path:
    """The tiny profile with ``runner``; one thread per shard by default (the same trees
    whichever runner: a shard's thread count may change its floating-point sums)."""
    raw = yaml.safe_load((PROFILES_DIR / "tiny.yaml").read_text())
    raw |= {"threads": threads, "runner": runner}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def main_job(prof: Path, run_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    """Round 1 of the quick main job, in a process of its own."""
    env = {k: v for k, v in env.items() if not k.startswith(("PREFECT_", "RSTAR_"))}
    log = (run_dir.parent / f"{run_dir.name}.log").open("w")
    return subprocess.Popen(
        [RSTAR, "evolve", "--quick", "--profile", str(prof), "--run-dir", str(run_dir),
         "--rounds", "1"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def trees(run_dir: Path) -> list[tuple]:
    """Every node of round 1's search, as the store holds it (duplicates would show)."""
    with Catalog(StoreLayout.for_run(run_dir)) as catalog:
        rows = catalog.sql(
            "SELECT stage, shard, problem_id, node_id, parent_id, text, visits, "
            "round(q, 9) AS q, correct FROM nodes WHERE round = 1 AND stage != 'eval' "
            "ORDER BY ALL"
        )
    return [tuple(r.values()) for r in rows.to_pylist()]


def evaluations(run_dir: Path) -> list[tuple]:
    """Round 1's per-problem evaluation rows, as the catalog holds them."""
    with Catalog(StoreLayout.for_run(run_dir)) as catalog:
        rows = catalog.sql(
            "SELECT benchmark, method, problem_id, prediction, correct FROM eval_results "
            "WHERE round = 1 ORDER BY ALL"
        )
    return [tuple(r.values()) for r in rows.to_pylist()]


def log_of(run_dir: Path, tail: int = 5000) -> str:
    """What the main job printed, then its log files (the libraries' output)."""
    files = [run_dir.parent / f"{run_dir.name}.log", *sorted(run_dir.glob("logs/*.log"))]
    return "".join(path.read_text(errors="replace") for path in files)[-tail:]


@pytest.mark.slow
def test_a_round_on_a_ray_cluster_equals_a_thread_run_and_survives_a_killed_node(tmp_path):
    thread_dir, ray_dir = tmp_path / "thread", tmp_path / "ray"
    thread_dir.mkdir()
    job = main_job(profile(tmp_path / "thread.yaml", {"kind": "thread"}), thread_dir, os.environ)
    assert job.wait(timeout=900) == 0, log_of(thread_dir)
    shutil.copytree(thread_dir / "toy", ray_dir / "toy")  # the same base policy

    with ray_cluster(tmp_path) as cluster:
        runner = {"kind": "ray", "address": cluster.address, "resources": {"search": {"cpus": 1}}}
        job = main_job(profile(tmp_path / "ray.yaml", runner), ray_dir, cluster.env)
        # each node has one CPU and a wave runs two shards: one of them is on the second node
        wait_for(
            lambda: cluster.second.running(SHARD_TASK) or job.poll() is not None,
            "a search shard on the second node",
            600,
        )
        assert job.poll() is None, log_of(ray_dir)
        cluster.second.kill(signal.SIGKILL)
        cluster.second.process.wait(timeout=30)  # reap our child, `ray start`
        wait_for(lambda: not cluster.second.processes(), "the killed node to be gone", 30)
        assert job.wait(timeout=900) == 0, log_of(ray_dir)  # Ray reran the lost shard
        assert cluster.head.process.poll() is None

    log = log_of(ray_dir, tail=10**7)
    assert "shards run on Ray (127.0.0.1:" in log
    assert "the node it was running on is dead" in log  # Ray reran the killed node's shard
    # training and evaluation ran as Ray tasks too (Ray prefixes a worker's output with the
    # task's function), and the catalog got their rows from the flow-run process
    for task in ("train_policy", "train_ppm", "benchmark"):
        assert f"({task} pid=" in log, task
    assert evaluations(ray_dir) == evaluations(thread_dir) != []
    ray_trees, thread_trees = trees(ray_dir), trees(thread_dir)
    assert ray_trees == thread_trees  # the same nodes per problem, none twice
    assert len(ray_trees) == len(set(ray_trees)) > 0
