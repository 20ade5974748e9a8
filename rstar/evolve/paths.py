"""Where one round keeps its files under the run directory.

<run_dir>/evolve/round-N/problems.parquet     the problems the round searches (sorted by id)
<run_dir>/evolve/round-N/extra.parquet        those left unsolved, for the extra search
<run_dir>/evolve/round-N/eval/                evaluation outputs (JSON, scaling PNG)
<run_dir>/evolve/round-N/summary.png          the round's summary plot
<run_dir>/round-N/policy, <run_dir>/round-N/ppm   the round's checkpoints
<run_dir>/store/                              the trajectory store (rstar.store)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rstar.store import StoreLayout


@dataclass(frozen=True)
class RoundPaths:
    run_dir: Path
    round: int

    @property
    def work(self) -> Path:
        return self.run_dir / "evolve" / f"round-{self.round}"

    @property
    def problems(self) -> Path:
        return self.work / "problems.parquet"

    @property
    def extra_problems(self) -> Path:
        return self.work / "extra.parquet"

    @property
    def eval_dir(self) -> Path:
        return self.work / "eval"

    @property
    def summary_plot(self) -> Path:
        return self.work / "summary.png"

    @property
    def policy(self) -> Path:
        return self.run_dir / f"round-{self.round}" / "policy"

    @property
    def ppm(self) -> Path:
        return self.run_dir / f"round-{self.round}" / "ppm"

    @property
    def store(self) -> StoreLayout:
        return StoreLayout.for_run(self.run_dir)
