"""Where a run keeps its files: the one owner of every path under a run directory.

A run directory holds (:class:`RunLayout`, :class:`RoundLayout`)::

    store/                              the trajectory store (:class:`StoreLayout`)
    round-N/problems.parquet            the problems round N searches (sorted by id)
    round-N/extra.parquet               those it left unsolved, for its extra search
    round-N/policy, round-N/ppm         its checkpoints (SLM-rN, PPM-rN)
    round-N/eval/<benchmark>-<kind>/    its evaluations (summary.json, scaling.png, records/)
    round-N/summary.png                 its summary plot
    round-N/metrics.json                its metrics, written when it finishes (progress view)
    round-N/trees/                      a solved and an unsolved search tree, as HTML pages
    round-N/profile.yaml                the resolved profile it ran with
    run.json                            the profile the run directory was made with
    logs/                               the main job's log files (`rstar evolve`)
    learning-curves.png                 every finished round so far, on one picture
    rounds.md                           the per-round table of the main job
    mlflow/                             MLflow's database and artifacts (rstar.tracking)
    prefect-home/                       Prefect's state when no server is configured
    stack/                              the local stack's PID files and logs (rstar stack)

Round 0 is the base policy: its evaluations live in ``round-0/eval/``.

A store is one directory per project run (default ``<run_dir>/store``)::

    catalog.duckdb                                   the DuckDB catalog (one writer process)
    nodes/round=1/stage=search/shard-00007.parquet   the search-tree nodes of one shard
    synthesis/part-<id>.parquet                      synthesis audit records
    datasets/...                                     exported SFT / PPM data

The ``key=value`` directories follow the hive convention so the tree is easy to browse,
but the partition columns are also stored inside every file (with their Arrow types), and
the catalog reads the files with ``hive_partitioning = false``.

Every file is written whole or not at all (``rstar.atomic``): readers never see half a
file, a rerun replaces the file, and temporary names never match the ``*.parquet`` globs
the catalog reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CATALOG_FILE = "catalog.duckdb"
NODES = "nodes"
# The two evaluations of a round (``round-N/eval/<benchmark>-<kind>``): greedy decoding, and
# the budgeted methods (MCTS + PPM...).
GREEDY_EVAL = "greedy"
SEARCH_EVAL = "search"
SYNTHESIS = "synthesis"
DATASETS = "datasets"


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one store; ``root`` is made absolute so catalog views work from any cwd."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    @classmethod
    def for_run(cls, run_dir: str | Path) -> StoreLayout:
        """The default store of a run: ``<run_dir>/store``."""
        return cls(Path(run_dir) / "store")

    @property
    def catalog_path(self) -> Path:
        return self.root / CATALOG_FILE

    def shard_path(self, round: int, stage: str, shard: int) -> Path:
        """The Parquet file of the nodes of one shard."""
        return (
            self.root / NODES / f"round={round}" / f"stage={stage}" / f"shard-{shard:05d}.parquet"
        )

    def glob(self, table: str) -> str:
        """The glob of every Parquet file of ``table`` (a directory under the root)."""
        return str(self.root / table / "**" / "*.parquet")

    def has_files(self, table: str) -> bool:
        return any((self.root / table).glob("**/*.parquet"))

    @property
    def synthesis_dir(self) -> Path:
        return self.root / SYNTHESIS

    @property
    def datasets_dir(self) -> Path:
        return self.root / DATASETS

    def dataset_path(self, round: int, name: str) -> Path:
        """Where a round's exported training rows ``name`` (``sft``, ``ppm_pairs``) live."""
        return self.datasets_dir / f"round={round}" / f"{name}.jsonl"


@dataclass(frozen=True)
class RoundLayout:
    """The files of one round (round 0: the base policy's evaluations)."""

    run_dir: Path
    round: int

    @property
    def dir(self) -> Path:
        return self.run_dir / f"round-{self.round}"

    @property
    def problems(self) -> Path:
        return self.dir / "problems.parquet"

    def extra_problems(self, extra: int = 1) -> Path:
        """The unsolved problems that the round's ``extra``-th search of them searches (1:
        the extra search, 2...: the escalation stages)."""
        return self.dir / ("extra.parquet" if extra == 1 else f"extra-{extra}.parquet")

    @property
    def policy(self) -> Path:
        return self.dir / "policy"

    @property
    def ppm(self) -> Path:
        return self.dir / "ppm"

    def eval_dir(self, benchmark: str, kind: str | None = None) -> Path:
        """Where an evaluation of ``benchmark`` writes its files; ``kind`` tells a round's
        evaluations apart (``greedy``, ``search``)."""
        return self.dir / "eval" / (f"{benchmark}-{kind}" if kind else benchmark)

    @property
    def summary_plot(self) -> Path:
        return self.dir / "summary.png"

    @property
    def synthesis_plot(self) -> Path:
        return self.dir / "synthesis.png"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def profile(self) -> Path:
        """The resolved profile the round ran with (also on its MLflow run)."""
        return self.dir / "profile.yaml"

    @property
    def trees_dir(self) -> Path:
        """A few of the round's search trees as HTML pages (rstar.evolve.round_trees)."""
        return self.dir / "trees"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory (module docstring); ``run_dir`` is made absolute."""

    run_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir).expanduser().resolve())

    @property
    def store(self) -> StoreLayout:
        return StoreLayout.for_run(self.run_dir)

    def round(self, number: int) -> RoundLayout:
        return RoundLayout(self.run_dir, number)

    @property
    def rounds_table(self) -> Path:
        return self.run_dir / "rounds.md"

    @property
    def run_record(self) -> Path:
        return self.run_dir / "run.json"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def learning_curves(self) -> Path:
        return self.run_dir / "learning-curves.png"

    @property
    def heldout_pairs(self) -> Path:
        """PPM pairs no round trains on, the same for every round (rstar.evolve.heldout_pairs)."""
        return self.run_dir / "heldout-pairs.jsonl"

    @property
    def mlflow_dir(self) -> Path:
        return self.run_dir / "mlflow"

    @property
    def prefect_home(self) -> Path:
        return self.run_dir / "prefect-home"

    @property
    def stack_dir(self) -> Path:
        return self.run_dir / "stack"
