"""Shared test fixtures: the repository's test data, and keeping every test offline."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rstar.sandbox import Sandbox

REPO_ROOT = Path(__file__).resolve().parents[1]
# The authors' released SFT and PPM examples (their data format), copied into the tests.
RELEASE_DIR = REPO_ROOT / "tests" / "fixtures" / "rstar-release"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Flows run in-process by tests use a temporary Prefect server whose state stays out of the
# user's ~/.prefect; no telemetry (no internet here).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="rstar-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A temporary server's first start (database creation) can outlast Prefect's default 20 s
# wait on a loaded machine; flows run by tests and their subprocesses wait longer.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# One torch thread in the test process: on a busy 2-core machine, two OpenMP threads that
# spin while waiting for a core made a tiny training run 50 times slower (docs/training.md).
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ppm_dir(tmp_path_factory) -> Path:
    """A tiny PPM checkpoint (``tests.tiny_models.tiny_ppm``)."""
    from tests.tiny_models import tiny_ppm

    return tiny_ppm(tmp_path_factory.mktemp("ppm"))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A real sandbox with the default preload: 2 workers, 2 s per program."""
    with Sandbox(timeout=2.0, workers=2) as box:
        yield box


def shipped_rows(name: str) -> list[dict]:
    """The records of a benchmark file shipped with rstar, as the file holds them."""
    from rstar.evaluate.benchmarks import shipped_file

    with shipped_file(name) as path:
        return json.loads(path.read_text(encoding="utf-8"))
