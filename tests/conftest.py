"""Shared test fixtures: locating ../shared and keeping every test offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared/ folder (benchmarks, fixtures, paper), beside the checkout."""
    if not SHARED_DIR.is_dir():
        pytest.fail(f"shared/ not found at {SHARED_DIR}: clone the repo with shared/ beside it")
    return SHARED_DIR
