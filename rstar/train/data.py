"""Training rows in: the curated SFT rows and PPM pairs, checked, and a held-out split.

Files are what ``rstar.curate`` exports (JSONL; JSON lists and Parquet read too). Only the
columns the trainers read are required; a bad row stops the run with an error naming the
file, the row and the field, since training on a silently shortened dataset is worse.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from rstar.problems.readers import iter_records

log = logging.getLogger(__name__)

# Optional columns kept when present: the pair's problem (for the held-out split) and kind.
_OPTIONAL = ("problem_id", "kind")


class TrainingDataError(ValueError):
    """A training file that cannot be used; the message names the file, row and field."""


def read_rows(path: str | Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """The rows of ``path`` with ``columns`` (each a non-empty string) and optional columns."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(
            f"training data {path} does not exist; export it with rstar.curate.export_round"
        )
    rows = []
    for record in iter_records(path):
        where = f"{path} row {record.row}" + (f" (line {record.line})" if record.line else "")
        if record.error is not None:
            raise TrainingDataError(f"{where}: invalid JSON: {record.error}")
        value = record.value
        if not isinstance(value, dict):
            raise TrainingDataError(f"{where}: expected an object with {list(columns)}")
        row = {}
        for name in columns:
            item = value.get(name)
            if not isinstance(item, str) or not item:
                raise TrainingDataError(
                    f"{where}: field {name!r} must be a non-empty string, got {item!r}; "
                    f"every row needs {list(columns)}"
                )
            row[name] = item
        row.update({name: str(value[name]) for name in _OPTIONAL if value.get(name) is not None})
        rows.append(row)
    if not rows:
        raise TrainingDataError(f"{path} holds no rows: there is nothing to train on")
    return rows


def _group(row: dict[str, str]) -> str:
    """Rows of one problem stay on one side of the split (its pairs share prefixes)."""
    return row.get("problem_id") or row["prompt"]


def held_out_split(
    rows: list[dict[str, str]], share: float, seed: int = 0
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, held-out) rows: ``ceil(share x problems)`` whole problems are held out.

    Problems are ranked by a hash of (seed, problem), so the split is the same on every
    run and machine. At least one problem stays on each side when there are two or more;
    rows of a single problem are all trained on (a round's search may yield pairs of one
    problem only, and a run of four rounds should not stop for it), with a warning.
    """
    if share <= 0:
        return rows, []
    groups = sorted({_group(row) for row in rows})
    if len(groups) < 2:
        log.warning(
            "the rows come from %d problem(s): nothing is held out, all are trained on",
            len(groups),
        )
        return rows, []
    ranked = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}\0{g}".encode()).hexdigest())
    count = min(max(1, math.ceil(share * len(groups))), len(groups) - 1)
    held = set(ranked[:count])
    return [r for r in rows if _group(r) not in held], [r for r in rows if _group(r) in held]
