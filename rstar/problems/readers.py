"""Reading raw records, each with where it came from, from any supported source.

Sources: a JSON file holding a top-level list (or one object per line), JSONL, CSV (a
header row names the columns), Parquet, a Hugging Face dataset saved with
``save_to_disk``, or anything ``datasets.load_dataset`` opens (a data directory, or a hub
id where the network allows). A record that cannot be read (a bad JSON line) is yielded
with its ``error`` set instead of stopping the read; text that is not UTF-8 stops it with
a ``SourceError`` naming the line.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

RAW_LIMIT = 500  # characters of a record kept for the rejects table
_BATCH_ROWS = 10_000


class SourceError(ValueError):
    """A source that cannot be read at all (missing, unknown kind, not a JSON list ...)."""


@dataclass(frozen=True)
class RawRecord:
    """One record as read. ``error`` says why it is not valid JSON (``value`` is None then)."""

    row: int  # 0-based index of the record in its source
    line: int | None  # 1-based line of its start in a JSON/JSONL file, else None
    value: Any
    raw: str  # the record's text, truncated to RAW_LIMIT characters
    error: str | None = None


def _raw(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:RAW_LIMIT]


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _not_utf8(path: Path, line: int, exc: UnicodeDecodeError) -> SourceError:
    return SourceError(
        f"{path}: line {line} is not UTF-8 text ({exc.reason}, byte {exc.object[exc.start]:#x});"
        " convert the file to UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)"
    )


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data.count(b"\n", 0, exc.start) + 1, exc) from None


def _json_lines(path: Path) -> Iterator[RawRecord]:
    row = 0
    with open(path, "rb") as handle:
        for line_no, raw_line in enumerate(handle, start=1):
            try:
                line = raw_line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, line_no, exc) from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                reason = f"{exc.msg} (column {exc.colno})"
                yield RawRecord(row, line_no, None, line[:RAW_LIMIT], reason)
            else:
                yield RawRecord(row, line_no, value, line[:RAW_LIMIT])
            row += 1


def _json_list(path: Path, text: str) -> Iterator[RawRecord]:
    """The elements of a top-level JSON list, each with the line it starts on."""
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0) + 1  # after "["
    line, counted, row = 1, 0, 0
    while True:
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == "]" and row == 0:
            return
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            reason = f"{exc.msg} (the rest of the file, from line {line}, is unread)"
            yield RawRecord(row, line, None, text[pos : pos + RAW_LIMIT], reason)
            return
        yield RawRecord(row, line, value, text[pos:end][:RAW_LIMIT])
        row += 1
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            return
        else:
            line += text.count("\n", counted, pos)
            reason = "expected ',' or ']' after a list element"
            yield RawRecord(row, line, None, text[pos : pos + RAW_LIMIT], reason)
            return


def _json_file(path: Path) -> Iterator[RawRecord]:
    text = _read_text(path)
    start = _skip_space(text, 0)
    if text.startswith("[", start):
        yield from _json_list(path, text)
    elif text.startswith("{", start):  # one object per line, as many ".json" datasets are
        yield from _json_lines(path)
    else:
        raise SourceError(f"{path}: expected a JSON list of records or one object per line")


def _csv(path: Path) -> Iterator[RawRecord]:
    """The rows of a CSV file whose first row names the columns, each with its line."""
    reader = csv.DictReader(_read_text(path).splitlines(keepends=True))
    if reader.fieldnames is None:
        return
    end = reader.line_num  # the header's last line
    for row, value in enumerate(reader):
        yield RawRecord(row, end + 1, value, _raw(value))
        end = reader.line_num


def _parquet(path: Path) -> Iterator[RawRecord]:
    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS):
        for value in batch.to_pylist():
            yield RawRecord(row, None, value, _raw(value))
            row += 1


def _hf_dataset(source: str, split: str) -> Iterator[RawRecord]:
    import datasets  # heavy import, only for this kind of source

    path = Path(source)
    try:
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(source, split=split)
    except Exception as exc:  # datasets raises many types; all mean "cannot read this source"
        offline = os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0") and not path.exists()
        hint = " (HF_HUB_OFFLINE is set: hub ids cannot be downloaded)" if offline else ""
        raise SourceError(f"{source}: cannot load as a Hugging Face dataset{hint}: {exc}") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise SourceError(f"{source}: no split {split!r}; splits: {', '.join(loaded)}")
        loaded = loaded[split]
    row = 0
    for batch in loaded.data.to_batches(max_chunksize=_BATCH_ROWS):
        for value in batch.to_pylist():
            yield RawRecord(row, None, value, _raw(value))
            row += 1


def iter_records(source: str | Path, split: str = "train") -> Iterator[RawRecord]:
    """Every record of ``source`` in order; ``split`` picks the split of a HF dataset."""
    path = Path(source)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return _json_file(path)
        if suffix in (".jsonl", ".ndjson"):
            return _json_lines(path)
        if suffix == ".csv":
            return _csv(path)
        if suffix == ".parquet":
            return _parquet(path)
        raise SourceError(
            f"{path}: unknown file type {suffix!r}; use .json, .jsonl, .csv or .parquet"
        )
    return _hf_dataset(str(source), split)
