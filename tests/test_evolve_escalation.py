"""Escalation: each further search of a round takes the problems still unsolved after all
searches before it, into a stage of its own (a problem has one tree per stage)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from rstar.config import load_profile
from rstar.curate import select_sft
from rstar.evolve.stages import bucket
from rstar.store import PROBLEM_SCHEMA, Catalog, RunLayout, write_shard
from tests.store_trees import tree_table
from tests.test_curate import P1, P2, P3_EXTRA, P3_SEARCH, P4


def test_each_escalation_stage_searches_what_is_still_unsolved(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    rounds = {n: {"values": "terminal"} for n in (1, 2, 3)}
    rounds[4] = {"extra": {"rollouts": 16}, "escalate": [{"rollouts": 64}, {"rollouts": 128}]}
    path = tmp_path / "p.yaml"
    evolve = {"rounds": rounds, "shard_size": 1}
    path.write_text(yaml.safe_dump({"policy": {"path": str(base)}, "evolve": evolve}))
    prof = load_profile(path, str(tmp_path / "run"))
    layout = RunLayout(prof.run_dir)
    trees = [tree_table(pid, nodes) for pid, nodes in (("p1", P1), ("p2", P2), ("p3", P3_SEARCH))]
    write_shard(layout.store, pa.concat_tables(trees), round=4, stage="search", shard=0)
    write_shard(layout.store, tree_table("p4", P4), round=4, stage="search", shard=1)
    with Catalog(layout.store) as catalog:
        rows = [{"problem_id": p, "question": p, "answer": "2"} for p in ("p1", "p2", "p3", "p4")]
        catalog.add_problems(pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA))

    def unsolved(extra: int) -> list[str]:
        return pq.read_table(layout.round(4).extra_problems(extra))["problem_id"].to_pylist()

    first = bucket(prof, 4, 1)  # p3 (depth limit) and p4 (no trajectory) are unsolved
    assert (first["stage"], first["extra_shards"], unsolved(1)) == (
        "extra_rollouts",
        2,
        ["p3", "p4"],
    )
    write_shard(layout.store, tree_table("p3", P3_EXTRA), round=4, stage="extra_rollouts", shard=0)
    second = bucket(prof, 4, 2)  # the extra search solved p3: the first escalation gets p4
    assert (second["stage"], second["extra_shards"], unsolved(2)) == ("escalation_1", 1, ["p4"])
    third = bucket(prof, 4, 3)  # p4 still unsolved
    assert (third["stage"], third["extra_shards"], unsolved(3)) == ("escalation_2", 1, ["p4"])
    assert bucket(prof, 4, 4)["extra_shards"] == 0  # no fourth search configured
    # p4 searched again in its own stage: its tree's node ids repeat those of its extra
    # search's tree, and curation reads both (a correct trajectory, leaf 5 of P1's nodes)
    write_shard(layout.store, tree_table("p4", P4), round=4, stage="extra_rollouts", shard=1)
    write_shard(layout.store, tree_table("p4", P1), round=4, stage="escalation_1", shard=0)
    with Catalog(layout.store) as catalog:
        rows = select_sft(catalog, 4).to_pylist()
    assert [(r["stage"], r["leaf_id"]) for r in rows if r["problem_id"] == "p4"] == [
        ("escalation_1", 5),
        ("escalation_1", 11),
    ]
