"""rstar: rStar-Math self-evolution (MCTS + process preference model) for small language models."""

import os

__version__ = "0.1.0"

# Offline by default: the libraries rstar drives report usage over the internet unless told
# not to (MLflow sends telemetry from `import mlflow` on). A user who wants it sets the
# variable; rstar only fills in what is unset, before any of them is imported through it.
OFFLINE_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}
for _name, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
