"""Trajectory store at scale: ingest 1M search-tree nodes, then extract SFT rows and PPM pairs.

Synthetic trees (default 20,000 problems x 50 nodes = 1,000,000 nodes): each tree grows by
attaching steps under random open nodes, preferring recent ones (depths up to ~10, 2-5
children per expanded node); code steps are 200-400 characters, outputs 20-100; 8 % of
code steps fail (code_error terminals), a final-code step gets an answer child, answers are
correct with a per-problem probability; Q values come from back-propagating +1/-1 from
every terminal, as terminal-guided MCTS does.

Phases, each in its own process so its peak RSS (``ru_maxrss``) is its own:

1. generate: build the trees, save one Arrow IPC file per shard (timed, not part of ingest).
2. baseline: ``pyarrow.parquet.write_table`` of the same shards, same compression.
3. ingest: ``write_shard`` for every shard (checks + trajectories + Parquet), then the
   catalog: open (views), ``add_problems``.
4. extract: ``select_sft`` and ``select_pairs`` (DuckDB over the shard globs); for scale,
   the time of one DuckDB scan of every step's text is reported beside it.

    .venv/bin/python benchmarks/bench_store.py                 # 1M nodes
    .venv/bin/python benchmarks/bench_store.py --problems 2000  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rstar.curate import select_pairs, select_sft
from rstar.store import NODE_SCHEMA, PROBLEM_SCHEMA, Catalog, write_shard

# fmt: off
WORDS = [
    "the", "of", "a", "number", "sum", "product", "each", "value", "total", "first", "second",
    "let", "we", "compute", "find", "then", "since", "so", "equation", "solve", "integer",
    "remainder", "divide", "multiply", "area", "triangle", "circle", "radius", "angle",
    "probability", "ways", "choose", "digits", "prime", "factor", "square", "root",
]
# fmt: on


def _prose(rng: random.Random, length: int) -> str:
    text = ""
    while len(text) < length:
        text += rng.choice(WORDS) + " "
    return text[:length]


def _code_step(rng: random.Random) -> str:
    """A code step of 200-400 characters: a reasoning comment and a line of code."""
    comment = _prose(rng, rng.randint(140, 340))
    code = f"x{rng.randint(0, 99)} = {rng.randint(0, 999)} * y{rng.randint(0, 99)}"
    return f"\n\n# Step {rng.randint(1, 9)}: {comment}\n{code}\n<end_of_step>"


def _pools(rng: random.Random) -> dict[str, list[str]]:
    """Step texts to draw from (distinct enough that Parquet cannot just deduplicate them)."""
    return {
        "code": [_code_step(rng) for _ in range(20_000)],
        "final_code": [
            f"\n\n# Now print the final answer\nprint({_prose(rng, rng.randint(10, 60))})\n"
            "<end_of_code>"
            for _ in range(2_000)
        ],
        "answer": [
            f"\n<answer>The answer is \\boxed{{{rng.randint(0, 999)}}}.<end_of_answer>"
            for _ in range(2_000)
        ],
        "output": [_prose(rng, rng.randint(20, 100)) for _ in range(5_000)],
    }


def _tree(rng: random.Random, pid: str, size: int, p_correct: float, pools: dict) -> dict:
    """One tree of ``size`` nodes as NODE_SCHEMA column lists."""
    parent, depth, kind, reason, correct = [-1], [0], ["root"], [None], [None]
    children = [0]
    wanted = [rng.randint(2, 5)]  # children an open node gets before it is closed
    open_nodes = [0]  # newest last
    while len(parent) < size:
        if not open_nodes:  # every branch ended early: the root gets another candidate
            open_nodes.append(0)
        at = open_nodes[-1 - min(len(open_nodes) - 1, int(rng.expovariate(0.7)))]
        node = len(parent)
        parent.append(at)
        depth.append(depth[at] + 1)
        children[at] += 1
        children.append(0)
        wanted.append(rng.randint(2, 5))
        if kind[at] == "final_code":  # the answer after a final-code step ends the branch
            kind.append("answer")
            reason.append("answer")
            correct.append(rng.random() < p_correct)
            open_nodes.remove(at)
            continue
        roll = rng.random()
        if roll < 0.08:
            kind.append("code")
            reason.append("code_error")
        else:
            kind.append("final_code" if roll < 0.30 or depth[node] >= 10 else "code")
            reason.append(None)
            open_nodes.append(node)
        correct.append(None)
        if children[at] >= wanted[at]:
            open_nodes.remove(at)
    n = len(parent)
    terminal = [r is not None for r in reason]
    visits = np.zeros(n, np.int32)
    value = np.zeros(n)
    for leaf in (i for i in range(n) if terminal[i]):  # back-propagate each terminal's reward
        reward = 1.0 if correct[leaf] else -1.0
        node = leaf
        while node != -1:
            visits[node] += 1
            value[node] += reward
            node = parent[node]
    q = np.divide(value, visits, out=np.zeros(n), where=visits > 0)
    exec_ok = [r != "code_error" for r in reason]
    pick = {k: (pools[k], len(pools[k])) for k in ("code", "final_code", "answer", "output")}

    def draw(name: str) -> str:
        pool, size = pick[name]
        return pool[rng.randrange(size)]

    return {
        "problem_id": [pid] * n,
        "node_id": list(range(n)),
        "parent_id": parent,
        "depth": depth,
        "rollout": [-1] + [0] * (n - 1),
        "kind": kind,
        "text": [""] + [draw(k) for k in kind[1:]],
        "output": [draw("output") if k in ("code", "final_code") else "" for k in kind],
        "exec_ok": exec_ok,
        "consecutive_errors": [0 if ok else 1 for ok in exec_ok],
        "terminal": terminal,
        "terminal_reason": reason,
        "answer": ["42" if k == "answer" else None for k in kind],
        "correct": correct,
        "visits": visits,
        "value_sum": value,
        "q": q,
        "ppm_score": [None] * n,
    }


def generate(work: Path, problems: int, nodes: int, shards: int) -> dict:
    start = time.perf_counter()
    rng = random.Random(0)
    pools = _pools(rng)
    (work / "ipc").mkdir(parents=True)
    per_shard = -(-problems // shards)
    ids = [f"p{i:07d}" for i in range(problems)]
    total = 0
    for shard in range(shards):
        columns: dict[str, list] = {name: [] for name in NODE_SCHEMA.names}
        for pid in ids[shard * per_shard : (shard + 1) * per_shard]:
            for name, values in _tree(rng, pid, nodes, rng.random(), pools).items():
                columns[name].extend(values)
        table = pa.table(columns, schema=NODE_SCHEMA)
        total += len(table)
        path = str(work / "ipc" / f"{shard:05d}.arrow")
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, NODE_SCHEMA) as writer:
            writer.write_table(table)
    problem_rows = {
        "problem_id": ids,
        "question": [f"Question {pid}?" for pid in ids],
        "answer": ["42"] * problems,
        "source": ["bench"] * problems,
        "level": pa.nulls(problems, pa.int32()),
        "split": ["train"] * problems,
    }
    pq.write_table(pa.table(problem_rows, schema=PROBLEM_SCHEMA), work / "problems.parquet")
    return {"seconds": time.perf_counter() - start, "nodes": total}


def _shards(work: Path):
    for path in sorted((work / "ipc").glob("*.arrow")):
        yield int(path.stem), pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def baseline(work: Path, compression: str) -> dict:
    out = work / "baseline"
    out.mkdir()
    loaded = list(_shards(work))  # memory-mapped: reading is not part of the timing
    start, cpu = time.perf_counter(), time.process_time()
    for shard, table in loaded:
        pq.write_table(table, out / f"{shard:05d}.parquet", compression=compression)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}


def ingest(work: Path, compression: str) -> dict:
    loaded = list(_shards(work))
    problems = pq.read_table(work / "problems.parquet")
    start, cpu = time.perf_counter(), time.process_time()
    trajectories = 0
    for shard, table in loaded:
        info = write_shard(
            work / "store", table, round=1, stage="search", shard=shard, compression=compression
        )
        trajectories += info.num_trajectories
    shards_done = time.perf_counter()
    with Catalog(work / "store") as catalog:
        catalog.add_problems(problems)
    end, cpu = time.perf_counter(), time.process_time() - cpu
    size = sum(p.stat().st_size for p in (work / "store").rglob("*.parquet"))
    return {
        "seconds": end - start,
        "cpu_seconds": cpu,
        "shards_seconds": shards_done - start,
        "catalog_seconds": end - shards_done,
        "trajectories": trajectories,
        "parquet_mb": size / 2**20,
    }


def extract(work: Path) -> dict:
    with Catalog(work / "store") as catalog:
        start = time.perf_counter()  # baseline: one DuckDB scan of every step's text
        catalog.sql("SELECT sum(length(text) + length(output)) AS n FROM nodes WHERE round = 1")
        scan = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        sft = select_sft(catalog, 1)
        sft_done = time.perf_counter()
        pairs = select_pairs(catalog, 1)
        end, cpu = time.perf_counter(), time.process_time() - cpu
    kinds = pairs["kind"].value_counts().to_pylist()
    return {
        "seconds": end - start,
        "cpu_seconds": cpu,
        "sft_seconds": sft_done - start,
        "pairs_seconds": end - sft_done,
        "text_scan_seconds": scan,
        "sft_rows": len(sft),
        "pairs": {k["values"]: k["counts"] for k in kinds},
    }


PHASES = {
    "generate": lambda a: generate(Path(a.work), a.problems, a.nodes_per_tree, a.shards),
    "baseline": lambda a: baseline(Path(a.work), a.compression),
    "ingest": lambda a: ingest(Path(a.work), a.compression),
    "extract": lambda a: extract(Path(a.work)),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", type=int, default=20_000)
    parser.add_argument("--nodes-per-tree", type=int, default=50)
    parser.add_argument("--shards", type=int, default=20)
    parser.add_argument("--compression", default="zstd")
    parser.add_argument("--work", default=None, help="working directory (default: a temp dir)")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # one phase, in this (child) process
        result = PHASES[args.phase](args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_store_"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = {}
    for phase in PHASES:
        command = [sys.executable, __file__, "--phase", phase, "--work", str(work), *sys.argv[1:]]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[phase] = json.loads(output.strip().splitlines()[-1])
        print(phase, json.dumps(results[phase]), flush=True)
    ratio = results["ingest"]["seconds"] / results["baseline"]["seconds"]
    print(f"ingest / plain pyarrow write of the same shards: {ratio:.2f}x")
    scans = results["extract"]["seconds"] / results["extract"]["text_scan_seconds"]
    print(f"extraction / one DuckDB scan of all step texts: {scans:.1f}x")
    print("load average (1/5/15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
