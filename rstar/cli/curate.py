"""``rstar curate ...``: a round's trees into training data; the authors' released data in."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from rstar.cli.console import console, fail, profile_or_exit
from rstar.settings import with_overrides

curate_app = typer.Typer(
    help="Training data: a round's SFT rows and PPM pairs; import the authors' released data.",
    no_args_is_help=True,
)


@curate_app.command()
def export(
    round: int = typer.Option(..., help="the round whose trees are curated"),
    min_q_margin: float | None = typer.Option(None, help="pair filter (default: the profile's)"),
    min_edit_distance: int | None = typer.Option(
        None, help="pair filter, characters (default: the profile's)"
    ),
    sft_per_problem: int | None = typer.Option(None, help="SFT rows per problem"),
    negatives: str | None = typer.Option(
        None,
        help="what PPM negatives lead to: wrong_answer or any_failure (default: the profile's)",
    ),
    profile: str = typer.Option("tiny", help="profile name or .yaml path"),
    run_dir: Path | None = typer.Option(None, help="run directory (default: the profile's)"),
) -> None:
    """Select a round's SFT rows and PPM pairs (the profile's `curate:` rules, docs/method.md §3)
    and write them to <store>/datasets/round=R/ (sft.jsonl, ppm_pairs.jsonl)."""
    from pydantic import ValidationError

    from rstar.curate.difficulty import difficulty_counts
    from rstar.curate.export import export_round
    from rstar.store import Catalog, StoreLayout

    prof = profile_or_exit(profile, run_dir)
    try:
        config = with_overrides(
            prof.curate,
            min_q_margin=min_q_margin,
            min_edit_distance=min_edit_distance,
            sft_per_problem=sft_per_problem,
            negatives=negatives,
        )
    except ValidationError as exc:
        raise fail(exc) from exc
    layout = StoreLayout.for_run(prof.run_dir)
    if not layout.catalog_path.is_file():
        raise fail(f"no store at {layout.root}: run a round's search first (or give --run-dir)")
    with Catalog(layout) as catalog:
        buckets = difficulty_counts(catalog, round)
        if not sum(buckets.values()):
            raise fail(f"round {round} has no search trees in {layout.root}: nothing to curate")
        exported = export_round(catalog, round, config)
    table = Table(title=f"round {round}", show_header=False)
    for bucket, count in buckets.items():
        table.add_row(f"{bucket} problems", str(count))
    table.add_row("SFT rows", f"{exported.sft_rows} -> {exported.sft_path}")
    table.add_row("PPM pairs", f"{exported.pair_rows} -> {exported.pairs_path}")
    console.print(table)


@curate_app.command("import-release")
def import_release(
    source: Path = typer.Argument(..., help="released SFT ({query, response}) or PPM data"),
    out: Path = typer.Option(..., help="JSONL of training rows to write"),
) -> None:
    """Convert the authors' released SFT or PPM data to training rows (`rstar train sft|ppm
    --data OUT`); which of the two is told from the first record's fields."""
    from rstar.curate.export import write_json
    from rstar.curate.release import read_release_pairs, read_release_sft
    from rstar.problems.readers import SourceError, iter_records

    try:
        first = next(iter(iter_records(source)), None)
    except SourceError as exc:
        raise fail(exc) from exc
    fields = set(first.value) if first is not None and isinstance(first.value, dict) else set()
    if {"query", "response"} <= fields:
        kind, read = "sft", read_release_sft
    elif {"prompt", "pos", "neg"} <= fields:
        kind, read = "ppm", read_release_pairs
    else:
        raise fail(
            f"{source}: the first record has fields {sorted(fields)}; released SFT data has "
            "query/response, released PPM data prompt/pos/neg/pos_count/neg_count"
        )
    try:
        rows = read(source)
    except ValueError as exc:
        raise fail(exc) from exc
    write_json(rows, out)
    console.print(f"{len(rows)} {kind} rows -> {out}")
    console.print(f"train on them: rstar train {kind} --data {out} --init <model> --out <dir>")
