"""The rstar the tests import carries its data: CI imports it from an installed wheel."""

from __future__ import annotations

from importlib import resources

from rstar.config import load_profile, profile_names
from rstar.evaluate.benchmarks import PAPER_BENCHMARKS


def test_the_imported_package_carries_benchmarks_and_profiles():
    shipped = resources.files("rstar") / "data" / "benchmarks"
    assert sorted(p.name for p in shipped.iterdir() if p.name.endswith(".json")) == sorted(
        info.file for info in PAPER_BENCHMARKS.values()
    )
    assert profile_names() == ["qwen2.5-math-7b", "tiny"]
    assert load_profile("tiny").name == "tiny"
