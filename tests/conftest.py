"""Shared test fixtures: locating ../shared and keeping every test offline."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Flows run in-process by tests use a temporary Prefect server whose state stays out of the
# user's ~/.prefect; no telemetry (no internet here).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="rstar-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared/ folder (benchmarks, fixtures, paper), beside the checkout."""
    if not SHARED_DIR.is_dir():
        pytest.fail(f"shared/ not found at {SHARED_DIR}: clone the repo with shared/ beside it")
    return SHARED_DIR
