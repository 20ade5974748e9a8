"""Deployments against a real Prefect server and worker on 127.0.0.1 (the local stack).

`evolve/round-1` runs at the quick size with one MCTS shard failing on its first attempt
(the test-only switch); the flow run fails, `prefect flow-run retry` reruns it, and only the
failed shard and what depends on it run again. Round 2 then finds round 1's models itself.
A clean in-process run of round 1 gives the row counts the retried run must match.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from test_ray_round import RAY_ENV, free_port, profile, ray_cluster

from rstar.config import load_profile
from rstar.evolve.stages import bootstrap_policy
from rstar.stack import StackConfig, stack_env, start, stop
from rstar.stack.prefect import chain_rounds
from rstar.store import Catalog, RunLayout, StoreLayout
from rstar.tracking import (
    MODEL_TRAINING_VIEW,
    POLICY_MODEL,
    PPM_MODEL,
    checkpoint_path,
    round_alias,
    version_uri,
)
from tasks.evolve import FAIL_ONCE_ENV
from tests.browser import CHROMIUM, dump_dom, parse, render_app, visible_text

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def quick_base(tmp_path_factory) -> Path:
    """The quick-size base policy, built once and copied into each run directory (round 1
    skips the bootstrap when its checkpoint exists)."""
    run_dir = tmp_path_factory.mktemp("base")
    return Path(bootstrap_policy(load_profile("tiny", run_dir, quick=True), progress=False))


def with_base(run_dir: Path, base: Path) -> Path:
    shutil.copytree(base, run_dir / "toy" / "base-policy")
    return run_dir


def node_counts(run_dir: Path, round: int) -> list[tuple]:
    with Catalog(StoreLayout.for_run(run_dir)) as catalog:
        rows = catalog.sql(
            "SELECT stage, shard, problem_id, count(*) AS n, "
            "count(DISTINCT node_id) AS distinct_nodes "
            "FROM nodes WHERE round = $round GROUP BY ALL ORDER BY ALL",
            {"round": round},
        )
    return [tuple(r.values()) for r in rows.to_pylist()]


@pytest.fixture(scope="module")
def clean_round_one(tmp_path_factory, quick_base) -> list[tuple]:
    """The node counts of round 1 run once without faults, from the same base."""
    clean = with_base(tmp_path_factory.mktemp("clean"), quick_base)
    run_clean_round_one(clean)
    return node_counts(clean, 1)


def run_clean_round_one(run_dir: Path) -> None:
    """Round 1 without the injected failure, in a process of its own: a Prefect flow run in
    this process would leave threads behind, and later tests fork."""
    env = {k: v for k, v in os.environ.items() if k != FAIL_ONCE_ENV}
    code = f"from flows.evolve import evolve; evolve(round=1, run_dir={str(run_dir)!r}, quick=True)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.env = {**os.environ, **stack_env(config)}
        self.api = f"{config.prefect_url}/api"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [PREFECT, *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def run_deployment(self, name: str, **params: object) -> str:
        args = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()]
        out = self.cli("deployment", "run", name, *[a for p in args for a in ("--param", p)])
        return re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)

    def flow_run(self, run_id: str) -> dict:
        return httpx.get(f"{self.api}/flow_runs/{run_id}", trust_env=False).json()

    def wait(self, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.flow_run(run_id)["state"]
            if state["type"] in TERMINAL:
                return state["type"]
            time.sleep(2)
        raise TimeoutError(f"flow run {run_id} still {state['type']} after {timeout} s")

    def runs_of(self, deployment: str) -> list[dict]:
        """The flow runs of deployment ``deployment`` (e.g. round-2), oldest first."""
        body = {"deployments": {"name": {"any_": [deployment]}}, "sort": "START_TIME_ASC"}
        return httpx.post(f"{self.api}/flow_runs/filter", json=body, trust_env=False).json()

    def task_runs(self, run_id: str) -> list[dict]:
        body = {"flow_runs": {"id": {"any_": [run_id]}}}
        return httpx.post(f"{self.api}/task_runs/filter", json=body, trust_env=False).json()

    def artifacts(self, run_id: str) -> dict[str, dict]:
        """The flow run's artifacts by key."""
        body = {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
        found = httpx.post(f"{self.api}/artifacts/filter", json=body, trust_env=False).json()
        return {a["key"]: a for a in found}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Stack:
    run_dir = tmp_path_factory.mktemp("stack-run")
    config = StackConfig(
        run_dir=run_dir,
        prefect_port=free_port(),
        mlflow_port=free_port(),
        worker_query_seconds=2,
        project_dir=REPO,
    )
    # the worker (and its flow runs) inherit the injected failure and a Ray cluster's token
    added = {FAIL_ONCE_ENV: "1:search:1", **RAY_ENV}
    os.environ.update(added)
    try:
        start(config)
        yield Stack(config)
    finally:
        for name in added:
            del os.environ[name]
        stop(config)


@pytest.mark.slow  # a real server, worker and two deployed rounds: minutes
def test_round_one_retry_reruns_only_the_failed_shard_then_round_two_follows(
    stack, quick_base, clean_round_one, tmp_path
):
    run_dir = with_base(stack.config.run_dir, quick_base)
    store = RunLayout(run_dir).store

    first = stack.run_deployment("evolve/round-1", quick=True)
    assert stack.wait(first) == "FAILED"
    failed = {r["name"]: r["state"]["type"] for r in stack.task_runs(first)}
    assert failed["search-round-1-shard-1"] == "FAILED"
    assert failed["search-round-1-shard-0"] == "COMPLETED"
    assert not [name for name in failed if name.startswith("bucket")]  # nothing after search ran
    shard0 = store.shard_path(1, "search", 0)
    kept = shard0.stat().st_mtime_ns
    assert not store.shard_path(1, "search", 1).exists()

    stack.cli("flow-run", "retry", first)
    assert stack.wait(first) == "COMPLETED"
    runs = stack.task_runs(first)
    states: dict[str, list[str]] = {}
    for r in sorted(runs, key=lambda r: r["created"]):
        states.setdefault(r["name"], []).append(r["state"]["name"])
    # completed tasks were not run again: their retried calls were served from the cache
    for name in (
        "bootstrap-policy",
        "resolve-models-round-1",
        "open-round-run-1",
        "evaluate-base-policy",
        "prepare-round-1",
        "search-round-1-shard-0",
    ):
        assert states[name][-1] == "Cached", (name, states[name])
    assert shard0.stat().st_mtime_ns == kept
    # the failed shard ran again, and what depends on it ran
    assert states["search-round-1-shard-1"][-1] == "Completed"
    assert states["finish-round-1"] == ["Completed"]

    retried = node_counts(run_dir, 1)
    assert all(n == distinct for *_, n, distinct in retried)  # no duplicate rows
    assert retried == clean_round_one

    prof = load_profile("tiny", run_dir, quick=True)
    # round 2 was started by the stack's automation when round 1 completed, with round 1's
    # profile, size and run directory; the switch then turns the chain off, so round 3 is not
    deadline = time.monotonic() + 60
    while not stack.runs_of("round-2"):
        assert time.monotonic() < deadline, "round 1 completed, but round 2 did not start"
        time.sleep(1)
    assert chain_rounds(stack.config, False) == 3  # the automations of rounds 2-4
    (started,) = stack.runs_of("round-2")
    second = started["id"]
    expected = {k: stack.flow_run(first)["parameters"].get(k) for k in ("profile", "quick")}
    assert (
        {k: started["parameters"].get(k) for k in expected}
        == expected
        == {
            "profile": "tiny",
            "quick": True,
        }
    )
    assert stack.wait(second) == "COMPLETED"
    time.sleep(10)  # an automation that were still on would have started round 3 by now
    assert stack.runs_of("round-3") == []
    # a new run of the finished round 1 is refused before it does anything
    again = stack.run_deployment("evolve/round-1", quick=True)
    assert stack.wait(again) == "FAILED"
    assert "round 1 has already finished" in stack.flow_run(again)["state"]["message"]
    assert node_counts(run_dir, 1) == clean_round_one  # nothing mixed into its store
    with Catalog(StoreLayout.for_run(run_dir)) as catalog:
        rows = catalog.sql("SELECT round, policy FROM rounds").to_pylist()
    policies = {r["round"]: r["policy"] for r in rows}
    tracking = prof.resolved_tracking()
    # round 2 searched with SLM-r1, named by its registry version
    assert policies[2] == version_uri(tracking, POLICY_MODEL, round_alias(1))
    assert checkpoint_path(tracking, PPM_MODEL, round_alias(2)).is_dir()

    # the round's results are artifacts of its flow run: the table of the rounds so far (one
    # row each), its key numbers, and a link to its MLflow run on the stack's server
    shown = stack.artifacts(second)
    assert shown.keys() >= {"rounds-table", "round-2-numbers", "round-2-mlflow"}
    rows = [line.split("|")[1].strip() for line in shown["rounds-table"]["data"].splitlines()
            if line.startswith("| ") and "round" not in line]  # fmt: skip
    assert rows == ["0 (base)", "1", "2"]
    numbers = {r["number"] for r in json.loads(shown["round-2-numbers"]["data"])}
    assert numbers >= {"greedy", "coverage", "SFT rows", "PPM pairs"}
    mlflow = f"http://127.0.0.1:{stack.config.mlflow_port}/#/experiments/"
    assert shown["round-2-mlflow"]["data"].startswith(f"[round 2 in MLflow]({mlflow}")
    assert CHROMIUM is not None, "the UIs are checked in Chromium: scripts/install installs it"
    link = shown["round-2-mlflow"]["data"].split("](")[1].rstrip(")")
    seen_in_a_browser(stack, shown["rounds-table"]["id"], link, tmp_path)


def seen_in_a_browser(stack: Stack, table_id: str, round_link: str, tmp_path: Path) -> None:
    """What a user opens, rendered by headless Chromium (screenshots in ``tmp_path``): the
    rounds table artifact in the Prefect UI, round 2's MLflow run from the artifact's link,
    the learning curves in MLflow, and a search-tree page logged to round 2's run."""
    prefect = f"http://127.0.0.1:{stack.config.prefect_port}"
    dom = render_app(f"{prefect}/artifacts/artifact/{table_id}", tmp_path, tmp_path / "p.png")
    rows = [[cell.text.strip() for cell in row.find_all("td")] for row in dom.find_all("tr")]
    assert [row[0] for row in rows if row] == ["0 (base)", "1", "2"]  # one row per round

    text = visible_text(render_app(round_link, tmp_path, tmp_path / "round-2.png"))
    assert "round-2" in text and "eval/toy/greedy/accuracy" in text and "Model training" in text

    client = MlflowClient(f"http://127.0.0.1:{stack.config.mlflow_port}")
    run_id = round_link.split("/runs/")[1].split("?")[0]
    (curves,) = client.search_runs(
        [client.get_run(run_id).info.experiment_id], "tags.`rstar.learning_curves` = 'true'"
    )
    base = round_link.split("/runs/")[0]
    page = f"{base}/runs/{curves.info.run_id}/model-metrics{MODEL_TRAINING_VIEW}"
    text = visible_text(render_app(page, tmp_path, tmp_path / "curves.png"))
    assert "learning-curves" in text and "eval/toy/greedy" in text and "Step" in text

    # the tree page as MLflow's artifact view shows it (in a frame: its DOM is read from the
    # file the view loads, rendered on its own)
    (tree,) = [a.path for a in client.list_artifacts(run_id, "trees") if "/solved-" in a.path]
    render_app(f"{base}/runs/{run_id}/artifacts/{tree}{MODEL_TRAINING_VIEW}", tmp_path,
               tmp_path / "tree.png")  # fmt: skip
    page = Path(client.download_artifacts(run_id, tree, str(tmp_path)))
    nodes = [e for e in parse(dump_dom(page, tmp_path)).iter() if "data-node-id" in e.attrs]
    chosen = [e for e in nodes if "★ chosen" in e.text]
    assert len(chosen) == 1 and "correct" in chosen[0].classes  # the best correct answer
    assert "on-chosen" in nodes[0].classes  # its path is marked from the root


def flow_run_process(run_id: str) -> psutil.Process | None:
    """The process executing flow run ``run_id`` (the worker starts it with the run's id)."""
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("PREFECT__FLOW_RUN_ID") == run_id:
                return proc
        except psutil.Error:
            continue
    return None


@pytest.mark.slow  # a deployed round, killed and retried twice: minutes
def test_a_flow_run_killed_by_sigkill_mid_shard_is_retried_to_the_same_store(
    stack, quick_base, clean_round_one, tmp_path
):
    run_dir = with_base(tmp_path / "killed", quick_base)
    run = stack.run_deployment("evolve/round-1", quick=True, run_dir=run_dir)
    assert stack.wait(run) == "FAILED"  # the stack's injected failure of search shard 1
    stack.cli("flow-run", "retry", run)

    def shard_running() -> bool:
        return any(
            r["name"] == "search-round-1-shard-1" and r["state"]["type"] == "RUNNING"
            for r in stack.task_runs(run)
        )

    deadline = time.monotonic() + 300
    while not shard_running():  # the retried shard is searching: kill its flow-run process
        assert time.monotonic() < deadline and stack.flow_run(run)["state"]["type"] not in TERMINAL
        time.sleep(0.2)
    process = flow_run_process(run)
    assert process is not None
    process.kill()  # SIGKILL: no handler runs, as with the OOM killer or a lost node
    assert stack.wait(run) == "CRASHED"
    # The flow-run executor reports the crash at once; the worker checks the exited process a
    # few seconds later and, finding the run no longer final (a retry already scheduled),
    # reports it crashed again, which ends that retry (seen with Prefect 3.8 at +7 s). A user
    # retries later than that; so does this test.
    time.sleep(20)
    # nothing half-written is visible: every shard file is whole (a killed write leaves at most
    # a hidden .tmp file, which no reader globs)
    for shard in (RunLayout(run_dir).store.root / "nodes").rglob("*.parquet"):
        assert pq.read_metadata(shard).num_rows > 0, shard

    stack.cli("flow-run", "retry", run)
    assert stack.wait(run) == "COMPLETED"
    counts = node_counts(run_dir, 1)
    assert all(n == distinct for *_, n, distinct in counts)  # no duplicate rows
    assert counts == clean_round_one  # nothing lost, nothing twice
    with Catalog(StoreLayout.for_run(run_dir)) as catalog:
        finished = catalog.sql(
            "SELECT round FROM rounds WHERE finished_at IS NOT NULL ORDER BY round"
        )
    assert finished.to_pylist() == [{"round": 0}, {"round": 1}]  # the base line, round 1


@pytest.mark.slow  # a deployed round with its shards on a Ray head, failed and retried
def test_a_ray_round_retried_from_prefect_reruns_only_the_failed_shard(
    stack, quick_base, clean_round_one, tmp_path
):
    with ray_cluster(tmp_path, count=1) as cluster:  # the stack's worker holds its token
        runner = {"kind": "ray", "address": cluster.address}
        ray_profile = profile(tmp_path / "ray.yaml", runner, threads=None)
        run_dir = with_base(tmp_path / "ray-run", quick_base)
        run = stack.run_deployment(
            "evolve/round-1", quick=True, run_dir=run_dir, profile=ray_profile
        )
        assert stack.wait(run) == "FAILED"  # search shard 1 failed on the Ray worker
        failed = {r["name"]: r["state"]["type"] for r in stack.task_runs(run)}
        assert (failed["search-round-1-shard-0"], failed["search-round-1-shard-1"]) == (
            "COMPLETED",
            "FAILED",
        )
        stack.cli("flow-run", "retry", run)  # what the UI's Retry does
        assert stack.wait(run) == "COMPLETED"
    states: dict[str, list[str]] = {}
    for r in sorted(stack.task_runs(run), key=lambda r: r["created"]):
        states.setdefault(r["name"], []).append(r["state"]["name"])
    assert states["search-round-1-shard-0"][-1] == "Cached"  # its Ray result was reused
    assert states["search-round-1-shard-1"][-1] == "Completed"
    counts = node_counts(run_dir, 1)
    assert all(n == distinct for *_, n, distinct in counts)  # nothing twice
    # every problem searched once, by the shard it belongs to (the trees themselves may differ:
    # a Ray worker runs a shard with other thread counts than the flow's thread pool)
    searched = [c[:3] for c in counts if c[0] == "search"]
    assert searched == [c[:3] for c in clean_round_one if c[0] == "search"]
