"""Does a refactor keep behaviour? The quick main job at two revisions, their stores diffed.

    .venv/bin/python benchmarks/same_behaviour.py --before REV [--after REV] [--work DIR]

Each revision is checked out into a git worktree under ``--work`` and runs the quick main
job there (``python -m flows.main --quick``, fixed seeds) with this venv, importing that
worktree's code. Each run is then reduced to a snapshot: the catalog's problems, every
search tree (node texts, outputs, visits and values per shard), the trajectories, the
curated SFT rows and PPM pairs, the evaluation results and the rounds table's metrics.
The script prints the differences table by table and exits 1 when there are any.
``--after`` defaults to the working tree (uncommitted changes included).

Metrics that measure time (seconds, ...) and run-specific values (paths, timestamps,
MLflow ids) are left out of the snapshot.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
_TIMING = ("seconds", "time", "_at", "runtime", "samples_per_second", "steps_per_second")


def _checkout(rev: str | None, work: Path, name: str) -> Path:
    """The code of ``rev`` in a fresh worktree (None: a copy of the working tree)."""
    target = work / name
    subprocess.run(["git", "worktree", "remove", "--force", str(target)], cwd=REPO, check=False)
    if rev is None:
        files = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        ).stdout.split(b"\0")
        for file in filter(None, files):
            source, dest = REPO / os.fsdecode(file), target / os.fsdecode(file)
            if source.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(source.read_bytes())
        return target
    subprocess.run(["git", "worktree", "add", "--detach", str(target), rev], cwd=REPO, check=True)
    return target


def _run_main_job(code: Path, run_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1"}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "flows.main", "--quick", "--run-dir", str(run_dir)]
    print(f"$ {' '.join(command)}  (in {code})", flush=True)
    subprocess.run(command, cwd=code, env=env, check=True)


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not any(t in k for t in _TIMING)}


def snapshot(run_dir: Path) -> dict[str, object]:
    """What the run computed, without times, paths and ids."""
    catalog = next(run_dir.glob("**/store/catalog.duckdb"))
    con = duckdb.connect(str(catalog), read_only=True)

    def rows(sql: str) -> list[tuple]:
        return [tuple(row) for row in con.sql(sql).fetchall()]

    trees = rows(
        "SELECT round, stage, shard, problem_id, list(node_id ORDER BY node_id), "
        "list(text ORDER BY node_id), list(output ORDER BY node_id), "
        "list(visits ORDER BY node_id), list(round(value_sum, 9) ORDER BY node_id), "
        "list(ppm_score ORDER BY node_id) "
        "FROM nodes GROUP BY ALL ORDER BY ALL"
    )
    shot: dict[str, object] = {
        "problems": rows(
            "SELECT problem_id, answer, source, level, split FROM problems ORDER BY 1"
        ),
        "rejects": rows("SELECT source, row, line, reason FROM rejects ORDER BY ALL"),
        "trees": {f"{r[0]}/{r[1]}/{r[2]}/{r[3]}": _digest(r[4:]) for r in trees},
        "trajectories": rows(
            "SELECT round, stage, problem_id, leaf_id, correct, round(avg_q, 9), answer "
            "FROM trajectories ORDER BY ALL"
        ),
        "eval_results": rows(
            "SELECT round, benchmark, method, problem_id, prediction, correct, "
            "round(score, 6) FROM eval_results ORDER BY ALL"
        ),
        "rounds": {
            str(r[0]): _untimed(json.loads(r[1] or "{}"))
            for r in rows("SELECT round, metrics FROM rounds ORDER BY round")
        },
    }
    for name, path in rows("SELECT name, path FROM datasets ORDER BY name"):
        lines = Path(path).read_text().splitlines() if Path(path).is_file() else []
        shot[f"dataset {name}"] = [_digest(json.loads(line)) for line in lines]
    con.close()
    return shot


def diff(before: dict, after: dict) -> list[str]:
    """One line per table that differs, saying how."""
    found = []
    for table in sorted(set(before) | set(after)):
        a, b = before.get(table), after.get(table)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            found.append(f"{table}: {len(keys)} differ, e.g. {keys[:3]}")
        elif isinstance(a, list) and isinstance(b, list):
            changed = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
            found.append(f"{table}: {len(a)} vs {len(b)} rows, {changed} differ")
        else:
            found.append(f"{table}: present in only one run")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision before the change")
    parser.add_argument("--after", default=None, help="git revision after (default: worktree)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rstar-same-behaviour"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    shots = []
    for name, rev in (("before", args.before), ("after", args.after)):
        code = _checkout(rev, args.work, name)
        run_dir = args.work / f"{name}-run"
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        _run_main_job(code, run_dir)
        shot = snapshot(run_dir)
        (args.work / f"{name}.json").write_text(json.dumps(shot, indent=1, default=str))
        shots.append(shot)
    differences = diff(*shots)
    sizes = {k: len(v) for k, v in shots[0].items() if isinstance(v, list | dict)}
    print(f"compared {sizes}")
    for line in differences:
        print(f"DIFFERS {line}")
    print("same behaviour" if not differences else f"{len(differences)} tables differ")
    return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
