"""Offline by default: importing rstar turns the stack's telemetry off (unless a user set it)."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = (
    "import rstar, mlflow\n"
    "from mlflow.telemetry.utils import is_telemetry_disabled\n"
    "from mlflow.telemetry import get_telemetry_client\n"
    "print(is_telemetry_disabled(), get_telemetry_client() is None)\n"
)


def _run(code: str, **env: str) -> str:
    """``code`` in a fresh interpreter without CI markers (MLflow stays quiet under CI)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "HF_HOME")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_importing_rstar_turns_mlflow_telemetry_off():
    assert _run(CHECK) == "True True"
    # without rstar's default MLflow would report usage: the check above can fail
    without = CHECK.replace("import rstar, mlflow", "import mlflow")
    assert _run(without) == "False False"


def test_a_users_choice_is_kept():
    assert _run(CHECK, MLFLOW_DISABLE_TELEMETRY="false") == "False False"
