"""Problem difficulty and coverage per round (docs/method.md §2), from the catalog's
``problem_summary`` view, over the trajectories that ended in an answer: easy = every
answer correct, medium = some, hard = none (also a searched problem with no answer at all).
Training stages only."""

from __future__ import annotations

import pyarrow as pa

from rstar.store.catalog import Catalog


def difficulty(catalog: Catalog, round: int) -> pa.Table:
    """Per problem searched in ``round``: num_trajectories, num_answered, num_correct,
    difficulty."""
    return catalog.sql(
        "SELECT problem_id, num_trajectories, num_answered, num_correct, difficulty "
        "FROM problem_summary "
        "WHERE round = $round ORDER BY problem_id",
        {"round": round},
    )


def difficulty_counts(catalog: Catalog, round: int) -> dict[str, int]:
    """How many problems of ``round`` are easy, medium and hard."""
    rows = catalog.sql(
        "SELECT difficulty, count(*) AS n FROM problem_summary WHERE round = $round "
        "GROUP BY difficulty",
        {"round": round},
    ).to_pylist()
    counts = {"easy": 0, "medium": 0, "hard": 0}
    counts.update({row["difficulty"]: row["n"] for row in rows})
    return counts


def hard_problems(catalog: Catalog, round: int) -> pa.Table:
    """The problems (``PROBLEM_SCHEMA`` rows, by id) of ``round`` with no correct trajectory:
    the input of the round's extra search."""
    return catalog.sql(
        "SELECT p.* FROM problems p JOIN problem_summary s USING (problem_id) "
        "WHERE s.round = $round AND s.difficulty = 'hard' ORDER BY problem_id",
        {"round": round},
    )


def coverage(catalog: Catalog) -> dict[int, float]:
    """Per round: the share of its searched problems with at least one correct trajectory."""
    table = catalog.sql(
        "SELECT round, avg(CAST(num_correct > 0 AS DOUBLE)) AS coverage "
        "FROM problem_summary GROUP BY round ORDER BY round"
    )
    return dict(zip(table["round"].to_pylist(), table["coverage"].to_pylist(), strict=True))


_FUNNEL_SQL = """
SELECT count(*) AS searched,
       count(*) FILTER (WHERE num_trajectories > 0) AS with_a_trajectory,
       count(*) FILTER (WHERE num_answered > 0) AS with_an_answer,
       count(*) FILTER (WHERE num_correct > 0) AS with_a_correct_answer,
       count(*) FILTER (WHERE num_correct > 0 AND
                        (CASE WHEN $any_failure THEN num_trajectories ELSE num_answered END)
                        > num_correct) AS with_a_correct_and_a_negative
FROM problem_summary WHERE round = $round
"""


def data_funnel(catalog: Catalog, round: int, negatives: str) -> dict[str, int]:
    """How many of ``round``'s searched problems pass each condition training data needs:
    a trajectory, a final answer, a correct one, and (for PPM pairs) both a correct one and
    a negative (a wrong answer, or with ``negatives: any_failure`` any failed trajectory).
    Said when a round yields nothing to train on."""
    params = {"round": round, "any_failure": negatives == "any_failure"}
    return catalog.sql(_FUNNEL_SQL, params).to_pylist()[0]
