"""Arrow schemas of everything the store holds.

``NODE_SCHEMA`` is the contract with the search (one row per tree node, written by
``rstar.search.records``); the store adds the partition columns ``round``, ``stage`` and
``shard`` when it writes a shard (``STORED_NODE_SCHEMA``). A tree is identified by
(round, stage, problem_id): a problem is searched at most once per round and stage, and
lives in exactly one shard of that (round, stage).
"""

from __future__ import annotations

import pyarrow as pa

# Stages of a round whose trees are written to the store.
SEARCH = "search"  # the round's main MCTS (docs/method.md §2)
EXTRA_ROLLOUTS = "extra_rollouts"  # additional rollouts on the hard problems
# further searches of what is still unsolved after those (evolve.rounds.N.escalate), one
# stage each: a problem has one tree per stage
ESCALATION = ("escalation_1", "escalation_2", "escalation_3")
EVAL = "eval"  # test-time search on benchmarks (no training data is taken from it)
STAGES = (SEARCH, EXTRA_ROLLOUTS, *ESCALATION, EVAL)
# The stages whose trees training data is made from.
TRAINING_STAGES = (SEARCH, EXTRA_ROLLOUTS, *ESCALATION)


def search_stage(extra: int) -> str:
    """The stage of a round's ``extra``-th search of unsolved problems (0: the search)."""
    return (SEARCH, EXTRA_ROLLOUTS, *ESCALATION)[extra]


def extra_index(stage: str) -> int:
    """Which search of a round ``stage`` is: 0 the search, 1 the extra one, 2... escalation."""
    return (SEARCH, EXTRA_ROLLOUTS, *ESCALATION).index(stage)


NODE_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string()),
        pa.field("node_id", pa.int32()),  # 0 = root (the question), unique within the tree
        pa.field("parent_id", pa.int32()),  # -1 for the root
        pa.field("depth", pa.int16()),  # root 0, first step 1
        pa.field("rollout", pa.int32()),  # rollout that created the node (root: -1)
        pa.field("kind", pa.string()),  # "root" | "code" | "final_code" | "answer"
        pa.field("text", pa.string()),  # raw step text as generated (incl. end marker)
        pa.field("output", pa.string()),  # stdout or error text of the cumulative program
        pa.field("exec_ok", pa.bool_()),  # the cumulative program ran (answer/root: true)
        pa.field("consecutive_errors", pa.int16()),
        pa.field("terminal", pa.bool_()),
        pa.field("terminal_reason", pa.string()),  # null | answer | code_error | max_depth | ...
        pa.field("answer", pa.string()),  # extracted final answer of answer nodes
        pa.field("correct", pa.bool_()),  # answer graded against gold, else null
        pa.field("visits", pa.int32()),  # N(s)
        pa.field("value_sum", pa.float64()),  # q(s)
        pa.field("q", pa.float64()),  # Q(s) = q(s) / N(s)
        pa.field("ppm_score", pa.float64()),  # PPM score of the partial trajectory, or null
    ]
)

PARTITION_FIELDS = [
    pa.field("round", pa.int16()),
    pa.field("stage", pa.string()),
    pa.field("shard", pa.int32()),
]

# Derived by the store at write time (``rstar.store.trees.derive``).
DERIVED_NODE_FIELDS = [
    pa.field("path", pa.list_(pa.int32())),  # node ids root -> this node, root included
    pa.field("path_avg_q", pa.float64()),  # mean Q over the path's steps (root excluded)
    pa.field("path_min_q", pa.float64()),  # min Q over the path's steps
    pa.field("path_code_error", pa.bool_()),  # some node on the path has exec_ok = false
    pa.field("num_trajectories", pa.int32()),  # trajectories through this node (itself incl.)
    pa.field("num_correct", pa.int32()),  # ... of which end in a correct answer
    pa.field("num_answered", pa.int32()),  # ... of which end in an answer (right or wrong)
]

STORED_NODE_SCHEMA = pa.schema([*PARTITION_FIELDS, *NODE_SCHEMA, *DERIVED_NODE_FIELDS])

# The catalog's ``trajectories`` view: one row per trajectory, a path root -> a terminal
# node that a rollout reached (visits >= 1). It reads the terminal nodes' rows.
TRAJECTORY_SCHEMA = pa.schema(
    [
        *PARTITION_FIELDS,
        pa.field("problem_id", pa.string()),
        pa.field("leaf_id", pa.int32()),  # node_id of the terminal node
        pa.field("depth", pa.int16()),  # number of steps (the leaf's depth)
        pa.field("path", pa.list_(pa.int32())),  # node ids root -> leaf, root included
        # answer terminals: the node's grade (null when ungraded); other terminals: false
        pa.field("correct", pa.bool_()),
        pa.field("avg_q", pa.float64()),  # mean Q over the steps (root excluded)
        pa.field("min_q", pa.float64()),  # min Q over the steps
        pa.field("has_code_error", pa.bool_()),  # some node on the path has exec_ok = false
        pa.field("answer", pa.string()),  # the leaf's extracted answer
        pa.field("terminal_reason", pa.string()),
        pa.field("ppm_score", pa.float64()),  # the leaf's PPM score (test-time selection)
    ]
)

PROBLEM_SCHEMA = pa.schema(
    [
        pa.field("problem_id", pa.string()),  # rstar.problems.problem_id(question)
        pa.field("question", pa.string()),
        pa.field("answer", pa.string()),  # the gold final answer
        pa.field("source", pa.string()),  # where it came from (file stem, dataset, "synthetic")
        pa.field("level", pa.int32()),  # difficulty level when the source has one (MATH)
        pa.field("split", pa.string()),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),  # the file or dataset the row came from
        pa.field("row", pa.int64()),  # 0-based record index in the source
        pa.field("line", pa.int64()),  # 1-based line in the file (JSON, JSONL), else null
        pa.field("reason", pa.string()),
        pa.field("raw", pa.string()),  # the record as read, truncated
    ]
)

# Per-problem results of an evaluation (test-time search on a benchmark).
EVAL_RESULT_SCHEMA = pa.schema(
    [
        pa.field("round", pa.int16()),  # the round whose models were evaluated
        pa.field("benchmark", pa.string()),
        pa.field("method", pa.string()),  # e.g. "mcts@64", "best_of_n@8", "greedy"
        pa.field("problem_id", pa.string()),
        pa.field("prediction", pa.string()),
        pa.field("correct", pa.bool_()),
        pa.field("score", pa.float64()),  # the chosen trajectory's PPM score, if any
    ]
)


# One row per judged synthesis candidate (docs/method.md §4), kept for audit.
SYNTHESIS_SCHEMA = pa.schema(
    [
        pa.field("candidate_id", pa.string()),  # "<seed problem id>:<k>", the k-th new problem
        pa.field("seed_problem_id", pa.string()),
        pa.field("problem_id", pa.string()),  # id of the new question (null if none written)
        pa.field("question", pa.string()),
        pa.field("answers", pa.list_(pa.string())),  # extracted answer per sampled solution
        pa.field("votes", pa.int32()),  # size of the largest group of equivalent answers
        pa.field("agreed_answer", pa.string()),  # that group's answer when kept, else null
        pa.field("kept", pa.bool_()),
        pa.field("reason", pa.string()),  # why kept or dropped
    ]
)
