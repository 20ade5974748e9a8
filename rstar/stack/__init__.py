"""The local orchestration stack: Prefect server, a Prefect worker, the MLflow UI, and
optionally a synthesis teacher.

Modules: ``config`` (:class:`StackConfig`, the shared environment), ``processes`` (the
components, their PID and log files), ``health`` (HTTP checks), ``prefect`` (the work
pool, deploying ``prefect.yaml``), ``start`` and ``stop`` (with ``status``); the command
line is ``rstar.cli.stack``.

``rstar stack start`` runs three (with ``--teacher``, four) long-lived processes on
127.0.0.1, each in its own session (so they outlive the command), each with a log file
and a PID file under the state directory (default ``<run_dir>/stack``):

- ``prefect-server``: ``prefect server start``; its database lives in an isolated
  ``PREFECT_HOME`` under the state directory, never the user's ``~/.prefect``.
- ``prefect-worker``: ``prefect worker start`` on the stack's process work pool, which
  ``start`` creates, after deploying the project's ``prefect.yaml`` when there is one.
- ``mlflow-ui``: ``mlflow server`` over the same sqlite store and artifact root that
  :meth:`rstar.tracking.Tracking.for_run` resolves, so the UI shows what the pipeline logs;
  one worker and no job runner keep it at two processes (~0.5 GB instead of ~3 GB).
- ``teacher`` (with ``--teacher CHECKPOINT``): ``rstar serve --execute``, an
  OpenAI-compatible server over that checkpoint on ``teacher_port`` (8100, the tiny
  profile's ``evolve.synthesis.teacher.base_url``), so that a round's problem synthesis
  reaches it over HTTP as it would GPT-4; ``--teacher-api-key-env`` names the variable
  holding the key it asks clients for.

Everything goes through the venv's ``prefect`` and ``mlflow`` executables (this module
never imports either). :func:`stack_env` is the environment all of them share; a client
that runs with it talks to the same server and writes results to the same storage.

``stop`` first interrupts the flow runs in progress (the worker starts them in sessions of
their own; interrupted while their worker lives, they report themselves crashed, so they
can be retried), then the worker, then the two servers. Each gets SIGINT, then SIGTERM,
then SIGKILL, ``stop_timeout`` seconds apart, sent to its whole process group and to any
descendant that left the group. The worker gets a second SIGINT before SIGTERM (its
handler turns a second interrupt into an immediate exit); the MLflow server starts at
SIGTERM, the signal uvicorn shuts down on without re-raising it as a traceback.
"""

from rstar.stack.config import (
    COMPONENTS,
    MLFLOW,
    SERVER,
    TEACHER,
    WORKER,
    StackConfig,
    StackError,
    env_exports,
    saved_config,
    stack_env,
)
from rstar.stack.processes import pid_file
from rstar.stack.start import start
from rstar.stack.stop import status, stop

__all__ = [
    "COMPONENTS",
    "MLFLOW",
    "SERVER",
    "TEACHER",
    "WORKER",
    "StackConfig",
    "StackError",
    "env_exports",
    "pid_file",
    "saved_config",
    "stack_env",
    "start",
    "status",
    "stop",
]
