"""A round with its shards on Ray vs in threads, on this machine: wall time and Ray's fixed
costs (issue 17: target ray / thread <= 1.15).

Round 1 of the main job (``python -m flows.main --last 1``), run twice from the same base
policy: at the shipped size from ``--base`` (a ``runs/toy`` folder with the built base
policy), or without one at the quick size with ``--per-level`` problems of levels 1 and 2
(its base built first); ``runner: thread``, then ``runner: ray`` against a Ray head started
here as a separate process (``ray start --head``, as a user would: the same 2 cores), and,
apart, the fixed costs: connecting a driver, and a first task on a fresh worker importing
the round's task module (Ray starts workers per job). Every round writes the same trees
(checked): only where the shards ran differs.

    .venv/bin/python benchmarks/ray_round.py --out runs/ray-round --base runs/toy

Writes ``<out>/report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from rstar.config import PROFILES_DIR
from rstar.store import Catalog, StoreLayout

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")


def profile(path: Path, per_level: int | None, runner: dict) -> Path:
    """The tiny profile with ``runner``; with ``per_level``, its quick size's problems."""
    raw = yaml.safe_load((PROFILES_DIR / "tiny.yaml").read_text())
    raw["threads"] = 1
    raw["runner"] = runner
    if per_level is not None:
        raw["quick"]["evolve"]["problems"] = {"toy_per_level": {1: per_level, 2: per_level}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def round_one(prof: Path, run_dir: Path, env: dict[str, str], quick: bool) -> float:
    """Seconds of round 1 (the main job's process, base policy built beforehand)."""
    env = {k: v for k, v in env.items() if not k.startswith(("PREFECT_", "RSTAR_"))}
    started = time.perf_counter()
    with (run_dir.parent / f"{run_dir.name}.log").open("w") as log:
        subprocess.run(
            [sys.executable, "-m", "flows.main", *(["--quick"] if quick else []),
             "--profile", str(prof), "--run-dir", str(run_dir), "--last", "1"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
    return time.perf_counter() - started


def node_rows(run_dir: Path) -> int:
    with Catalog(StoreLayout.for_run(run_dir)) as catalog:
        return catalog.sql("SELECT count(*) AS n FROM nodes WHERE round = 1").to_pylist()[0]["n"]


FIXED_COSTS = """
import json, time, ray
t = time.perf_counter(); ray.init(address={address!r}); connect = time.perf_counter() - t
@ray.remote(num_cpus=1)
def first():
    t = time.perf_counter(); import tasks.evolve; return time.perf_counter() - t
t = time.perf_counter(); imports = ray.get(first.remote()); total = time.perf_counter() - t
print(json.dumps({{"connect": connect, "first_task": total, "imports": imports}}))
"""


def fixed_costs(address: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", FIXED_COSTS.format(address=address)],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ray-round"))
    parser.add_argument("--base", type=Path, help="a toy folder with the base: shipped size")
    parser.add_argument("--per-level", type=int, default=40, help="quick size: problems/level")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    quick = args.base is None
    per_level = args.per_level if quick else None
    report: dict = {"size": "quick" if quick else "shipped", "per_level": per_level}

    base = args.base
    if base is None:  # the quick base, built once (round 1 of a throwaway run)
        warm = out / "warm"
        round_one(profile(out / "warm.yaml", 1, {"kind": "thread"}), warm, dict(os.environ), True)
        base = warm / "toy"
    for name in ("thread", "ray"):
        shutil.rmtree(out / name, ignore_errors=True)
        shutil.copytree(base, out / name / "toy")

    report["thread_seconds"] = round_one(
        profile(out / "thread.yaml", per_level, {"kind": "thread"}),
        out / "thread",
        dict(os.environ),
        quick,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    started = time.perf_counter()
    head = subprocess.Popen(
        [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", "--block"],
        env=env, stdout=(out / "ray-head.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        while "block forever" not in (out / "ray-head.log").read_text():
            time.sleep(0.2)
        report["ray_head_start"] = time.perf_counter() - started
        report["ray_fixed"] = fixed_costs(address, env)
        runner = {"kind": "ray", "address": address}
        report["ray_seconds"] = round_one(
            profile(out / "ray.yaml", per_level, runner), out / "ray", env, quick
        )
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
    report["ratio"] = report["ray_seconds"] / report["thread_seconds"]
    report["node_rows"] = {name: node_rows(out / name) for name in ("thread", "ray")}
    assert report["node_rows"]["thread"] == report["node_rows"]["ray"], report
    print(json.dumps(report, indent=2))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
