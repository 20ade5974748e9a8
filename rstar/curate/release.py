"""The authors' released training data in and out of our row shapes.

Released SFT rows are ``{query, response}``; ours are ``SFT_SCHEMA`` with
prompt = build_prompt(query) and completion = response.

Released PPM rows are ``{prompt, pos, neg, pos_count, neg_count}`` in two shapes, told
apart with ``rstar.format.parse_pair``:

- step pairs: the prompt holds the question and the shared prefix steps, pos/neg are
  one step each. Kept as they are (kind "step").
- full-solution pairs (the final-answer step): the prompt is ``"<|user|>:\\n{question}"``
  and pos/neg start with the assistant header. The header moves into the prompt, so
  prompt = build_prompt(question) and chosen/rejected are the responses (kind "final"),
  like the pairs ``select_pairs`` makes.

Writing goes the other way, so read -> write reproduces the released records exactly.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from rstar.curate.export import write_json
from rstar.curate.schema import FINAL, PAIR_SCHEMA, SFT_SCHEMA, STEP
from rstar.format import PROMPT_TEMPLATE, FormatError, build_prompt, parse_pair
from rstar.problems.ids import problem_id
from rstar.problems.readers import iter_records

# What a full-solution pair's pos/neg begin with: the prompt after the question.
_ASSISTANT_HEADER = PROMPT_TEMPLATE.split("{question}")[1]


def _records(path: str | Path, fields: tuple[str, ...]) -> list[dict]:
    records = []
    for record in iter_records(path):
        value = record.value
        where = f"{path} row {record.row}" + (f" (line {record.line})" if record.line else "")
        if record.error is not None:
            raise ValueError(f"{where}: invalid JSON: {record.error}")
        missing = [f for f in fields if not isinstance(value, dict) or f not in value]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}; expected {list(fields)}")
        records.append(value)
    return records


def read_release_sft(path: str | Path) -> pa.Table:
    """Released SFT records (JSON list, JSONL or Parquet) as ``SFT_SCHEMA`` rows."""
    records = _records(path, ("query", "response"))
    queries = [r["query"] for r in records]
    columns = {
        "problem_id": [problem_id(q) for q in queries],
        "question": queries,
        "prompt": [build_prompt(q) for q in queries],
        "completion": [r["response"] for r in records],
    }
    return pa.table(
        {name: columns.get(name, pa.nulls(len(records))) for name in SFT_SCHEMA.names}
    ).cast(SFT_SCHEMA)


def write_release_sft(rows: pa.Table, path: str | Path) -> Path:
    """``SFT_SCHEMA`` rows as released SFT records (a JSON list for ``.json``, else JSONL)."""
    released = pa.table({"query": rows["question"], "response": rows["completion"]})
    return write_json(released, path)


def read_release_pairs(path: str | Path) -> pa.Table:
    """Released PPM records (JSON list, JSONL or Parquet) as ``PAIR_SCHEMA`` rows."""
    records = _records(path, ("prompt", "pos", "neg", "pos_count", "neg_count"))
    columns: dict[str, list] = {
        name: [] for name in ("problem_id", "kind", "prompt", "chosen", "rejected")
    }
    for row, record in enumerate(records):
        try:
            parsed = parse_pair(record["prompt"], record["pos"])
        except FormatError as exc:
            raise ValueError(f"{path} row {row}: prompt + pos is not in the format: {exc}") from exc
        prompt, chosen, rejected, kind = record["prompt"], record["pos"], record["neg"], STEP
        if parsed.prefix_length == 0:  # a full-solution pair: the header joins the prompt
            prompt, kind = build_prompt(parsed.question), FINAL
            chosen = (record["prompt"] + chosen)[len(prompt) :]
            rejected = (record["prompt"] + rejected)[len(prompt) :]
        values = (problem_id(parsed.question), kind, prompt, chosen, rejected)
        for name, value in zip(columns, values, strict=True):
            columns[name].append(value)
    columns["pos_count"] = [r["pos_count"] for r in records]
    columns["neg_count"] = [r["neg_count"] for r in records]
    return pa.table(
        {name: columns.get(name, pa.nulls(len(records))) for name in PAIR_SCHEMA.names}
    ).cast(PAIR_SCHEMA)


def write_release_pairs(rows: pa.Table, path: str | Path) -> Path:
    """``PAIR_SCHEMA`` rows as released PPM records (a JSON list for ``.json``, else JSONL)."""
    final = [kind == FINAL for kind in rows["kind"].to_pylist()]
    prompts, pos, neg = [], [], []
    for is_final, prompt, chosen, rejected in zip(
        final,
        rows["prompt"].to_pylist(),
        rows["chosen"].to_pylist(),
        rows["rejected"].to_pylist(),
        strict=True,
    ):
        header = _ASSISTANT_HEADER if is_final else ""
        prompts.append(prompt.removesuffix(header) if is_final else prompt)
        pos.append(header + chosen)
        neg.append(header + rejected)
    released = pa.table(
        {
            "prompt": prompts,
            "pos": pos,
            "neg": neg,
            "pos_count": rows["pos_count"],
            "neg_count": rows["neg_count"],
        }
    )
    return write_json(released, path)
