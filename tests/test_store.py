"""The trajectory store: atomic idempotent shards, parallel writers, derived trajectories,
the DuckDB catalog's tables and views."""

from __future__ import annotations

import csv
import io
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rstar.store import (
    EVAL_RESULT_SCHEMA,
    STORED_NODE_SCHEMA,
    TRAJECTORY_SCHEMA,
    Catalog,
    NodeTableError,
    StoreLayout,
    write_shard,
)
from tests.store_trees import tree_table

STEP1 = "<code>\n# Step 1: x\nx = 2\n<end_of_step>"
FINAL = "\n\n# Now print the final answer\nprint(x)\n<end_of_code>"
ANSWER = "\n<answer>\\boxed{2}<end_of_answer>"
WRONG = "\n<answer>\\boxed{3}<end_of_answer>"

# (node_id, parent_id, kind, text, q, visits, terminal_reason, correct, exec_ok, output)
TREE = [
    (1, 0, "code", STEP1, 0.5, 3, None, None, True, ""),
    (2, 1, "final_code", FINAL, 0.25, 3, None, None, True, "2"),
    (3, 2, "answer", ANSWER, 1.0, 2, "answer", True, True, ""),
    (4, 2, "answer", WRONG, -1.0, 1, "answer", False, True, ""),
    (5, 0, "code", STEP1, -1.0, 1, "code_error", None, False, "NameError"),
    (6, 0, "code", STEP1, 0.0, 0, "max_depth", None, True, ""),  # never visited
    (7, 1, "code", STEP1, -0.5, 1, "max_depth", None, True, ""),
]


def shard_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_path_columns_are_derived_at_write_time(tmp_path):
    info = write_shard(tmp_path, tree_table("p", TREE), round=2, stage="search", shard=7)
    assert (info.num_nodes, info.num_trajectories) == (8, 4)
    assert info.path == tmp_path / "nodes/round=2/stage=search/shard-00007.parquet"
    nodes = pq.read_table(info.path)
    assert nodes.schema == STORED_NODE_SCHEMA
    derived = nodes.select(
        [
            "node_id",
            "path",
            "path_avg_q",
            "path_min_q",
            "path_code_error",
            "num_trajectories",
            "num_correct",
        ]
    ).to_pylist()
    assert [tuple(row.values()) for row in derived] == [
        (0, [0], None, None, False, 4, 1),
        (1, [0, 1], 0.5, 0.5, False, 3, 1),  # 3, 4 and 7 pass through node 1; 3 is correct
        (2, [0, 1, 2], 0.375, 0.25, False, 2, 1),
        (3, [0, 1, 2, 3], 1.75 / 3, 0.25, False, 1, 1),
        (4, [0, 1, 2, 4], -0.25 / 3, -1.0, False, 1, 0),
        (5, [0, 5], -1.0, -1.0, True, 1, 0),
        (6, [0, 6], 0.0, 0.0, False, 0, 0),  # terminal but never visited: no trajectory
        (7, [0, 1, 7], 0.0, -0.5, False, 1, 0),
    ]  # fmt: skip
    assert (nodes["round"][0].as_py(), nodes["stage"][0].as_py(), nodes["shard"][0].as_py()) == (
        2,
        "search",
        7,
    )


def test_trajectories_view(tmp_path):
    write_shard(tmp_path, tree_table("p", TREE), round=2, stage="search", shard=7)
    with Catalog(tmp_path) as catalog:
        table = catalog.sql("SELECT * FROM trajectories ORDER BY leaf_id")
    assert table.schema.names == TRAJECTORY_SCHEMA.names
    common = {"round": 2, "stage": "search", "shard": 7, "problem_id": "p", "ppm_score": None}
    assert table.to_pylist() == [
        {**common, "leaf_id": 3, "depth": 3, "path": [0, 1, 2, 3], "correct": True,
         "avg_q": 1.75 / 3, "min_q": 0.25, "has_code_error": False, "answer": "2",
         "terminal_reason": "answer"},
        {**common, "leaf_id": 4, "depth": 3, "path": [0, 1, 2, 4], "correct": False,
         "avg_q": -0.25 / 3, "min_q": -1.0, "has_code_error": False, "answer": "3",
         "terminal_reason": "answer"},
        {**common, "leaf_id": 5, "depth": 1, "path": [0, 5], "correct": False,
         "avg_q": -1.0, "min_q": -1.0, "has_code_error": True, "answer": None,
         "terminal_reason": "code_error"},
        {**common, "leaf_id": 7, "depth": 2, "path": [0, 1, 7], "correct": False,
         "avg_q": 0.0, "min_q": -0.5, "has_code_error": False, "answer": None,
         "terminal_reason": "max_depth"},
    ]  # fmt: skip


def test_a_shard_written_twice_leaves_one_copy(tmp_path):
    write_shard(tmp_path, tree_table("p", TREE), round=1, stage="search", shard=0)
    files = shard_files(tmp_path)
    smaller = tree_table("q", TREE[:1])  # a rerun with different content
    write_shard(tmp_path, smaller, round=1, stage="search", shard=0)
    assert shard_files(tmp_path) == files  # the same one file, no temporary left behind
    with Catalog(tmp_path) as catalog:
        nodes = catalog.sql("SELECT problem_id, count(*) AS n FROM nodes GROUP BY ALL")
        assert nodes.to_pylist() == [{"problem_id": "q", "n": 2}]
        paths = catalog.sql("SELECT problem_id, leaf_id FROM trajectories")
        assert paths.num_rows == 0


def _write_in_child(root: str, shard: int, barrier) -> None:
    table = tree_table(f"problem-{shard}", TREE)
    barrier.wait()  # both children write at the same moment
    write_shard(root, table, round=1, stage="search", shard=shard)


def test_parallel_processes_write_different_shards(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    # The catalog is held open (DuckDB lock) the whole time: shard writers never need it.
    with Catalog(tmp_path) as catalog:
        workers = [
            ctx.Process(target=_write_in_child, args=(str(tmp_path), shard, barrier))
            for shard in (3, 4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [w.exitcode for w in workers] == [0, 0]
        catalog.refresh()  # the first shards of the store: swap the empty views for globs
        rows = catalog.sql(
            "SELECT shard, problem_id, count(*) AS n FROM trajectories GROUP BY ALL ORDER BY shard"
        )
        assert rows.to_pylist() == [
            {"shard": 3, "problem_id": "problem-3", "n": 4},
            {"shard": 4, "problem_id": "problem-4", "n": 4},
        ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.drop_columns(["q"]), r"missing \['q'\]"),
        (lambda t: t.append_column("extra", pa.array([1] * len(t))), r"unexpected \['extra'\]"),
        (lambda t: pa.concat_tables([t, t.slice(3, 1)]), "duplicate node id: problem 'p' node 3"),
        (lambda t: pa.concat_tables([t, t.slice(0, 1)]), "duplicate node id: problem 'p' node 0"),
        (lambda t: t.slice(1), "problem 'p' has 0 root nodes"),
        (lambda t: t.filter(pa.compute.not_equal(t["node_id"], 2)), "node 3 has parent 2"),
        (
            lambda t: t.set_column(3, "depth", pa.array([0, 1, 2, 3, 3, 1, 1, 5], pa.int16())),
            "node 7 has depth 5",
        ),
        (
            lambda t: t.set_column(16, "q", pa.array([None] + [0.0] * 7, pa.float64())),
            "column 'q' has 1 null",
        ),
    ],
)
def test_malformed_trees_are_rejected(tmp_path, edit, message):
    with pytest.raises(NodeTableError, match=message):
        write_shard(tmp_path, edit(tree_table("p", TREE)), round=1, stage="search", shard=0)
    assert shard_files(tmp_path) == []


def test_unknown_stage_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown stage 'serch'"):
        write_shard(tmp_path, tree_table("p", TREE), round=1, stage="serch", shard=0)


def test_empty_store_has_typed_empty_views(tmp_path):
    with Catalog(tmp_path) as catalog:
        for view, schema in (("nodes", STORED_NODE_SCHEMA), ("trajectories", TRAJECTORY_SCHEMA)):
            table = catalog.sql(f"SELECT * FROM {view}")
            assert table.num_rows == 0
            assert table.schema.names == schema.names
        assert catalog.sql("SELECT * FROM problem_summary").num_rows == 0
        assert catalog.sql("SELECT * FROM synthesis").num_rows == 0


def test_views_work_from_another_cwd_and_after_a_move(tmp_path, monkeypatch):
    store = tmp_path / "run" / "store"
    write_shard(store, tree_table("p", TREE), round=1, stage="search", shard=0)
    Catalog(store).close()
    monkeypatch.chdir(tmp_path)  # as a user opening the file with the DuckDB CLI elsewhere
    with duckdb.connect(str(store / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM trajectories").fetchall() == [(4,)]
    moved = tmp_path / "moved"
    shutil.move(store, moved)
    with Catalog(moved) as catalog:  # a writable open re-points the views
        assert catalog.sql("SELECT count(*) AS n FROM nodes").to_pylist() == [{"n": 8}]


def test_layout_defaults_under_the_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    layout = StoreLayout.for_run("runs/exp1")
    assert layout.root == tmp_path / "runs/exp1/store"
    assert layout.catalog_path == tmp_path / "runs/exp1/store/catalog.duckdb"


def test_catalog_tables(tmp_path):
    problems = pa.table(
        {
            "problem_id": ["a", "b"],
            "question": ["Q a", "Q b"],
            "answer": ["1", "2"],
            "source": ["s", "s"],
            "level": pa.array([None, 3], pa.int32()),
            "split": ["train", "train"],
        }
    )
    rejects = pa.table(
        {
            "source": ["f.jsonl"],
            "row": [4],
            "line": [5],
            "reason": ["empty question"],
            "raw": ["{}"],
        }
    )
    with Catalog(tmp_path) as catalog:
        assert catalog.add_problems(problems) == 2
        assert catalog.add_problems(problems.slice(1)) == 0  # present ids are kept as they are
        catalog.add_rejects(rejects)
        catalog.add_rejects(rejects)  # the same source again replaces its rejects
        assert catalog.sql("SELECT source, row, line, reason FROM rejects").to_pylist() == [
            {"source": "f.jsonl", "row": 4, "line": 5, "reason": "empty question"}
        ]
        catalog.start_round(1, policy="policy-r0", ppm=None)
        catalog.finish_round(1, {"coverage": 0.6})
        round_row = catalog.sql(
            "SELECT round, policy, metrics, finished_at IS NOT NULL AS done FROM rounds"
        )
        assert round_row.to_pylist() == [
            {"round": 1, "policy": "policy-r0", "metrics": '{"coverage": 0.6}', "done": True}
        ]
        with pytest.raises(ValueError, match="round 2 was never started"):
            catalog.finish_round(2)
        results = pa.table(
            {
                "round": [1, 1, 1],
                "benchmark": ["math500"] * 3,
                "method": ["mcts@8"] * 3,
                "problem_id": ["a", "b", "c"],
                "prediction": ["1", "5", None],
                "correct": [True, False, None],
                "score": [0.9, 0.1, None],
            },
            schema=EVAL_RESULT_SCHEMA,
        )
        catalog.add_eval_results(results)
        catalog.add_eval_results(results.slice(0, 2))  # a rerun replaces the earlier results
        summary = catalog.sql("SELECT benchmark, num_problems, accuracy FROM eval_summary")
        assert summary.to_pylist() == [{"benchmark": "math500", "num_problems": 2, "accuracy": 0.5}]
    # A second process gets a clear error while the catalog is open here.
    held = Catalog(tmp_path)
    try:
        code = f"from rstar.store import Catalog; Catalog({str(tmp_path)!r})"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert result.returncode != 0
        assert "CatalogLockedError" in result.stderr and "write_shard" in result.stderr
    finally:
        held.close()


DOCS_TREE_STEPS = [
    "root #0",
    "  code #1",
    "    final_code #2",
    "      answer #3",
    "      answer #4",
    "    code #7",
    "  code #5",
    "  code #6",
]


@pytest.fixture
def docs_queries(tmp_path: Path) -> tuple[Path, list[str]]:
    """A small store, closed, and the SQL blocks of docs/store.md."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "store.md").read_text()
    blocks = [block.split("```", 1)[0] for block in docs.split("```sql\n")[1:]]
    assert len(blocks) >= 7
    hard = tree_table("q", [(1, 0, "code", STEP1, -1.0, 1, "code_error", None, False, "E")])
    trees = pa.concat_tables([tree_table("p", TREE), hard])
    write_shard(tmp_path, trees, round=1, stage="search", shard=0)
    problems = pa.table(
        {
            "problem_id": ["p", "q"],
            "question": ["What is 1 + 1?", "What is 2 + 2?"],
            "answer": ["2", "4"],
            "source": ["hand", "hand"],
            "level": pa.nulls(2, pa.int32()),
            "split": ["train", "train"],
        }
    )
    with Catalog(tmp_path) as catalog:
        catalog.add_problems(problems)
        catalog.add_rejects(
            pa.table({"source": ["f"], "row": [0], "line": [1], "reason": ["x: y"], "raw": [""]})
        )
    return tmp_path / "catalog.duckdb", blocks


def test_the_example_queries_in_docs_run(docs_queries):
    database, blocks = docs_queries
    with duckdb.connect(str(database), read_only=True) as con:
        results = [con.sql(block).fetchall() for block in blocks]
    coverage = results[0]
    assert coverage == [(1, 2, 1, 50.0, 1)]
    assert results[2] == [("q", 1, 2, 1, "What is 2 + 2?", "4")]  # the hardest problems
    assert all(results[:-1]), "every example query returns rows on this store"
    tree = results[3]
    assert [row[0] for row in tree] == DOCS_TREE_STEPS


def test_the_duckdb_cli_opens_the_catalog_and_runs_the_docs_queries(docs_queries):
    """The `duckdb` shell of the [dev] extra (a 1.x CLI) reads the DuckDB 2 catalog."""
    database, blocks = docs_queries
    cli = Path(sys.executable).with_name("duckdb")
    assert cli.exists(), f"{cli} missing: install rstar with its [dev] extra (duckdb-cli)"
    outputs = []
    for block in blocks:
        run = subprocess.run(
            [str(cli), "-readonly", "-bail", "-csv", "-noheader", str(database)],
            input=block,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0 and "Error" not in run.stderr, (block, run.stderr)
        outputs.append(list(csv.reader(io.StringIO(run.stdout))))
    assert outputs[0] == [["1", "2", "1", "50.0", "1"]]  # coverage per round
    assert [row[0] for row in outputs[3]] == DOCS_TREE_STEPS  # a problem's tree
