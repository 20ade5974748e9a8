"""A round's problem synthesis: new problems from a teacher, before the round searches.

For each round named in ``evolve.synthesis.rounds`` (docs/evolve.md, "Problem synthesis"):

1. ``prepare_synthesis`` fixes the round's seeds (toy train problems, a new slice each
   round; problem files; up to ``hard_seeds`` of the previous round's unsolved problems) in
   ``round-N/synthesis-seeds.parquet``, sorted by id, so shard ``i`` is always the same seeds;
2. ``synthesize_shard`` (mapped over the shards) asks the teacher over HTTP
   (``OpenAIBackend``) to write and solve problems and keeps those whose answers agree
   (``rstar.problems.synthesis``); the audit records go to ``synthesis/round=N/`` in the
   store, and a retried shard skips every candidate already judged (no model call twice);
3. ``synthesized_problems`` (called by ``prepare_round``) returns the kept problems, minus
   the round's own problems, benchmark questions and, for the toy world, any question of
   its held-out splits, as problem rows with ``source = synthetic``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rstar.atomic import atomic_write
from rstar.config import Profile, SynthesisStageConfig
from rstar.curate import hard_problems
from rstar.evaluate.benchmarks import decontaminator
from rstar.models import generation_backend
from rstar.problems import load_problems
from rstar.problems.ids import problem_id
from rstar.problems.synthesis import audit_dir, kept_problems, outcome, read_records, synthesize
from rstar.store import Catalog, RunLayout, StoreLayout
from rstar.store.schema import PROBLEM_SCHEMA
from rstar.toy.world import problem_pool, split_of

SEEDS_FILE = "synthesis-seeds.parquet"
USAGE = ("requests", "retries", "prompt_tokens", "completion_tokens")  # OpenAIBackend.usage
SEED_SCHEMA = pa.schema([("problem_id", pa.string()), ("question", pa.string())])


def stage_config(prof: Profile, round: int) -> SynthesisStageConfig | None:
    """The synthesis settings when ``round`` synthesizes, else None."""
    config = prof.evolve.synthesis
    return config if config is not None and config.on(round) else None


def audit_partition(round: int) -> str:
    """The round's part of the store's synthesis audit (candidates are judged once in it)."""
    return f"round={round}"


def round_records(store: StoreLayout, round: int) -> pa.Table:
    """Every candidate the round's synthesis judged (SYNTHESIS_SCHEMA)."""
    return read_records(audit_dir(store, audit_partition(round)))


def total_usage(shards: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """What the synthesis shards asked the teacher for, summed (no shards: empty)."""
    return {name: sum(s[name] for s in shards) for name in USAGE} if shards else {}


def _toy_seeds(prof: Profile, config: SynthesisStageConfig, round: int) -> list[str]:
    if not config.toy_seeds_per_level:
        return []
    if prof.toy is None:
        raise ValueError(
            "evolve.synthesis.toy_seeds_per_level needs the profile's toy: section; use "
            "evolve.synthesis.seed_files for problem files"
        )
    questions = []
    for level, count in sorted(config.toy_seeds_per_level.items()):
        pool = problem_pool(level, round * count, "train", prof.toy.world)
        questions += [p.question for p in pool[(round - 1) * count :]]
    return questions


def _hard_seeds(prof: Profile, config: SynthesisStageConfig, round: int) -> list[str]:
    layout = RunLayout(prof.run_dir)
    if not config.hard_seeds or round == 1 or not layout.store.catalog_path.exists():
        return []
    with Catalog(layout.store, read_only=True) as catalog:
        hard = hard_problems(catalog, round - 1)
    return hard["question"].to_pylist()[: config.hard_seeds]


def seed_table(prof: Profile, round: int) -> pa.Table:
    """The round's seeds (problem_id, question), distinct, sorted by id."""
    config = stage_config(prof, round)
    if config is None:
        return SEED_SCHEMA.empty_table()
    questions = _toy_seeds(prof, config, round)
    if config.seed_files:
        questions += (
            load_problems(config.seed_files, progress=False).problems["question"].to_pylist()
        )
    questions += _hard_seeds(prof, config, round)
    by_id = {problem_id(q): q for q in questions}
    ids = sorted(by_id)
    return pa.table({"problem_id": ids, "question": [by_id[i] for i in ids]}, schema=SEED_SCHEMA)


def seeds_path(prof: Profile, round: int) -> Path:
    return RunLayout(prof.run_dir).round(round).dir / SEEDS_FILE


def prepare_synthesis(prof: Profile, round: int) -> dict[str, int]:
    """Write the round's seed file; how many seeds and shards it has (0 when off)."""
    config = stage_config(prof, round)
    if config is None:
        return {"seeds": 0, "shards": 0}
    table = seed_table(prof, round)
    if not len(table):
        raise ValueError(
            f"round {round} synthesizes but has no seeds: set evolve.synthesis."
            "toy_seeds_per_level, seed_files or hard_seeds"
        )
    path = seeds_path(prof, round)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return {"seeds": len(table), "shards": -(-len(table) // config.shard_size)}


def synthesize_shard(prof: Profile, round: int, shard: int, progress: bool = True) -> dict:
    """Write and judge the problems of one seed shard through the teacher (resumable)."""
    config = stage_config(prof, round)
    if config is None:
        raise ValueError(f"round {round} does not synthesize (evolve.synthesis.rounds)")
    seeds = pq.read_table(seeds_path(prof, round)).slice(
        shard * config.shard_size, config.shard_size
    )
    store = RunLayout(prof.run_dir).store
    with generation_backend(config.teacher) as teacher:
        result = synthesize(
            seeds,
            teacher,
            store,
            config.filter,
            partition=audit_partition(round),
            progress=progress,
        )
        usage = teacher.usage
    return {"judged": result.judged, "seeds": len(seeds)} | usage


def synthesized_problems(prof: Profile, round: int, searched: pa.Table) -> tuple[pa.Table, int]:
    """The round's kept problems not already in ``searched`` (the round's own problems) and
    not a benchmark's (or, for the toy world, a held-out split's) question; with the count
    left out as contamination."""
    if stage_config(prof, round) is None:
        return PROBLEM_SCHEMA.empty_table(), 0
    kept = kept_problems(round_records(RunLayout(prof.run_dir).store, round))
    kept = kept.filter(pc.invert(pc.is_in(kept["problem_id"], searched["problem_id"])))
    clean = decontaminator(prof.decontamination_benchmarks(), prof.evolve.problems.ngram)
    world = prof.toy.world if prof.toy is not None else None

    def contaminated(question: str) -> bool:
        held_out = (
            world is not None and split_of(question, world.test_share, world.val_share) != "train"
        )
        return held_out or (clean is not None and clean.check(question) is not None)

    mask = [not contaminated(q) for q in kept["question"].to_pylist()]
    return kept.filter(pa.array(mask, pa.bool_())), mask.count(False)


def synthesis_plot(store: StoreLayout, round: int, path: Path) -> Path | None:
    """The round's agreement histogram (kept and dropped) and what became of each candidate,
    one PNG; None when the round judged no candidate."""
    from matplotlib.figure import Figure

    rows = round_records(store, round).to_pylist()
    if not rows:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(10, 4), dpi=100)
    votes, outcomes = figure.subplots(1, 2)
    solved = [r for r in rows if r["answers"] is not None]
    top = max((len(r["answers"]) for r in solved), default=0)
    xs = list(range(top + 1))
    for kept, colour in ((True, "tab:green"), (False, "tab:red")):  # kept: votes >= min_agree
        counts = Counter(r["votes"] for r in solved if r["kept"] == kept)
        label = "kept" if kept else "dropped"
        votes.bar(xs, [counts[x] for x in xs], color=colour, label=label)
    votes.set_title(f"round {round}: answers agreeing, per solved candidate")
    votes.set_xlabel("size of the largest group of equal answers")
    votes.set_ylabel("candidates")
    votes.legend()
    counted = Counter(outcome(r) for r in rows).most_common()
    outcomes.barh([name for name, _ in counted], [n for _, n in counted], color="tab:blue")
    outcomes.invert_yaxis()
    outcomes.set_title(f"round {round}: {len(rows)} candidates")
    outcomes.set_xlabel("candidates")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def synthesis_metrics(store: StoreLayout, round: int) -> dict[str, float]:
    """Candidates, kept, kept share and the agreement histogram of the round's synthesis."""
    records = round_records(store, round)
    if not len(records):
        return {}
    rows = records.to_pylist()
    kept = sum(r["kept"] for r in rows)
    metrics = {
        "synthesis/candidates": len(rows),
        "synthesis/kept": kept,
        "synthesis/kept_share": kept / len(rows),
    }
    votes = Counter(r["votes"] for r in rows if r["answers"])
    metrics |= {f"synthesis/agree_{k}": n for k, n in sorted(votes.items())}
    return metrics
