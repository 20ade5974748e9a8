"""MLflow tracking with explicit locations: runs, metrics, and checkpoints as model versions.

MLflow left to itself writes ``mlflow.db`` and ``mlruns/`` into whatever the current
working directory is. Here every location is explicit: a :class:`Tracking` names the
tracking/registry URI and the experiment's artifact root, by default both under the run
directory (``<run_dir>/mlflow/mlflow.db`` and ``<run_dir>/mlflow/artifacts``), and the
experiment is created with that artifact location.

- :func:`start_run`: a run in the experiment, nested under the active run when there is
  one (a round's run holds its training and evaluation runs).
- :func:`log_metrics`: metrics to the active run (training logs its loss curves through
  it under stable names, "sft/loss", "ppm/accuracy", ..., so rounds compare side by side).
- :func:`register_checkpoint`: a checkpoint directory as a new version of a registered
  model (``policy``, ``ppm``) with the alias ``round-N``; :func:`checkpoint_path` reads a
  version back by alias as a directory that transformers loads.

``mlflow`` is imported by the functions that use it, so that a profile can embed
``TrackingConfig`` without paying for the import.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from rstar.settings import Settings
from rstar.store.layout import RunLayout

if TYPE_CHECKING:
    import mlflow
    from mlflow.entities.model_registry import ModelVersion

POLICY_MODEL = "policy"
PPM_MODEL = "ppm"
DEFAULT_EXPERIMENT = "rstar"
# The run whose metrics are the rounds' key numbers with the round as step (log_curve).
CURVES_RUN = "learning-curves"
CURVES_TAG = "rstar.learning_curves"
CURVES_NOTE = "The key numbers of every round, with the round as the step (0: the base)."
# The experiment tag MLflow 3's UI reads to choose its first page: runs, not GenAI traces.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
# The UI's view for model training (MLflow 3.17 opens on its GenAI view otherwise: a browser
# setting, which the experiment's kind does not change).
MODEL_TRAINING_VIEW = "?workflowType=machine_learning"
MLFLOW_UI_ENV = "RSTAR_MLFLOW_UI"  # the UI's address when tracking is a database file
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's UI shows it with the run's source
MODEL_TRAINING = "custom_model_development"
DIGEST_CHARS = 16  # of a dataset input's content digest
_PARENT_RUN: ContextVar[str | None] = ContextVar("rstar_parent_run", default=None)


class TrackingConfig(Settings):
    """Where MLflow keeps runs and artifacts (the ``tracking:`` section of a profile)."""

    tracking_uri: str | None = Field(
        None, description="tracking and registry URI; default sqlite:///<run_dir>/mlflow/mlflow.db"
    )
    artifact_root: str | None = Field(
        None, description="artifact location of the experiment; default <run_dir>/mlflow/artifacts"
    )
    experiment: str = Field(
        DEFAULT_EXPERIMENT,
        description="MLflow experiment of every run: rounds, training, evaluation",
    )
    copy_checkpoints: bool = Field(
        True,
        description="log checkpoint files as run artifacts (self-contained registry); False "
        "registers the checkpoint directory by reference (no copy of large weights)",
    )


@dataclass(frozen=True)
class Tracking:
    """Resolved MLflow locations: absolute, never relative to the working directory."""

    tracking_uri: str
    artifact_location: str
    experiment: str = DEFAULT_EXPERIMENT
    copy_checkpoints: bool = True

    @classmethod
    def for_run(cls, run_dir: str | Path, config: TrackingConfig | None = None) -> Tracking:
        """The locations of ``config`` with its defaults filled in under ``run_dir``."""
        config = config or TrackingConfig()
        base = RunLayout(Path(run_dir)).mlflow_dir
        uri = config.tracking_uri or f"sqlite:///{base / 'mlflow.db'}"
        root = config.artifact_root or str(base / "artifacts")
        if "://" not in root:
            root = Path(root).expanduser().resolve().as_uri()
        return cls(uri, root, config.experiment, config.copy_checkpoints)


def activate(tracking: Tracking) -> str:
    """Point MLflow (tracking and registry) at ``tracking``; returns the experiment id.

    The experiment is created with ``tracking.artifact_location`` when it does not exist,
    marked as model training (MLflow's UI otherwise opens it on an empty GenAI traces page).
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if tracking.tracking_uri.startswith("sqlite:///"):
        Path(tracking.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    mlflow.set_tracking_uri(tracking.tracking_uri)
    mlflow.set_registry_uri(tracking.tracking_uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(tracking.experiment)
    if experiment is not None:
        if EXPERIMENT_KIND_TAG not in experiment.tags:  # made by an older rstar
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
        return experiment.experiment_id
    try:
        return client.create_experiment(
            tracking.experiment,
            artifact_location=tracking.artifact_location,
            tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING},
        )
    except MlflowException:  # created meanwhile by another process
        experiment = client.get_experiment_by_name(tracking.experiment)
        if experiment is None:
            raise
        return experiment.experiment_id


@contextmanager
def under_run(run_id: str | None) -> Iterator[None]:
    """Runs started inside (in this thread or task) become children of run ``run_id``.

    An orchestrator's task runs in a thread or process of its own, where the round's run is
    not active; this names it as the parent without making it active (which would end it).
    """
    token = _PARENT_RUN.set(run_id)
    try:
        yield
    finally:
        _PARENT_RUN.reset(token)


@contextmanager
def start_run(
    tracking: Tracking,
    name: str,
    *,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """A run named ``name`` in the experiment; nested when another run is active, else a
    child of the :func:`under_run` parent when there is one."""
    import mlflow

    experiment_id = activate(tracking)
    nested = mlflow.active_run() is not None
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=name,
        nested=nested,
        parent_run_id=None if nested else _PARENT_RUN.get(),
        tags={k: str(v) for k, v in (tags or {}).items()},
    ) as run:
        if params:
            mlflow.log_params(dict(params))
        yield run


def log_artifact(path: str | Path) -> None:
    """Log the file at ``path`` to the active run (if any)."""
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_artifact(str(path))


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric values of ``metrics`` (what MLflow takes as metrics)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log the finite numeric values of ``metrics`` to the active run (if any)."""
    import mlflow

    if mlflow.active_run() is None:
        return
    clean = numeric(metrics)
    if clean:
        mlflow.log_metrics(clean, step=step)


def open_run(
    tracking: Tracking,
    name: str,
    *,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    """Create a run that outlives this call (a round's run, which tasks in other threads or
    processes fill in through :func:`under_run` and :func:`close_run`); returns its id."""
    from mlflow import MlflowClient

    experiment_id = activate(tracking)
    client = MlflowClient()
    run = client.create_run(
        experiment_id, run_name=name, tags={k: str(v) for k, v in (tags or {}).items()}
    )
    for key, value in (params or {}).items():
        client.log_param(run.info.run_id, key, str(value))
    return run.info.run_id


def run_url(tracking: Tracking, run_id: str) -> str | None:
    """The run's page in the MLflow UI: on the tracking server, or on the UI that
    ``RSTAR_MLFLOW_UI`` names (the local stack's, over a sqlite store); else None."""
    server = tracking.tracking_uri.startswith(("http://", "https://"))
    base = tracking.tracking_uri if server else os.environ.get(MLFLOW_UI_ENV)
    if not base:
        return None
    from mlflow import MlflowClient

    activate(tracking)
    experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}{MODEL_TRAINING_VIEW}"


def source_commit(package_dir: Path | None = None) -> str | None:
    """The git commit of rstar's source tree, when it runs from a clone (None from a wheel
    or without git)."""
    import subprocess

    root = (package_dir or Path(__file__).resolve().parent).parent
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's content, in hex (a training run's data, a dataset input)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def log_datasets(
    tracking: Tracking, run_id: str, datasets: Sequence[tuple[str, Path, str]]
) -> None:
    """Each ``(name, file, context)`` as a dataset input of run ``run_id``: named, with the
    file as its source and its content digest, so that two rounds compare in MLflow on what
    they were made from (context: ``search``, ``training``...). Missing files are skipped."""
    from mlflow import MlflowClient
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    activate(tracking)
    inputs = []
    for name, path, context in datasets:
        if not path.is_file():
            continue
        with warnings.catch_warnings():  # two local sources match a file URI: either is right
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(path.resolve().as_uri())
        # MLflow keeps at most 36 characters of a dataset's digest
        dataset = MetaDataset(source, name=name, digest=file_digest(path)[:DIGEST_CHARS])
        tags = [InputTag(key="mlflow.data.context", value=context)]
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=tags))
    if inputs:
        MlflowClient().log_inputs(run_id, datasets=inputs)


def log_curve(
    tracking: Tracking, step: int, metrics: Mapping[str, Any], artifacts: Sequence[Path] = ()
) -> str:
    """Log ``metrics`` at ``step`` to the experiment's one ``learning-curves`` run (made on
    first use), so that each metric is one curve over the rounds in MLflow's charts; returns
    the run's id. ``artifacts`` replace the run's files of the same name."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    experiment_id = activate(tracking)
    client = MlflowClient()
    found = client.search_runs([experiment_id], f"tags.{CURVES_TAG} = 'true'", max_results=1)
    if found:
        run_id = found[0].info.run_id
    else:
        tags = {CURVES_TAG: "true", "mlflow.note.content": CURVES_NOTE}
        run_id = client.create_run(experiment_id, run_name=CURVES_RUN, tags=tags).info.run_id
    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, step) for k, v in numeric(metrics).items()]
    if batch:
        client.log_batch(run_id, metrics=batch)
    for path in artifacts:
        client.log_artifact(run_id, str(path))
    return run_id


def close_run(
    tracking: Tracking,
    run_id: str,
    metrics: Mapping[str, Any],
    artifacts: Sequence[str | Path] = (),
    folders: Mapping[str, Sequence[Path]] | None = None,
) -> None:
    """Log ``metrics`` and ``artifacts`` to run ``run_id`` (and the files of ``folders``
    under those artifact folders) and mark it finished."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    activate(tracking)
    client = MlflowClient()
    now = int(time.time() * 1000)
    batch = [Metric(k, v, now, 0) for k, v in numeric(metrics).items()]
    if batch:
        client.log_batch(run_id, metrics=batch)
    log_run_artifacts(tracking, run_id, artifacts)
    for folder, paths in (folders or {}).items():
        log_run_artifacts(tracking, run_id, paths, folder)
    client.set_terminated(run_id, "FINISHED")


def log_run_artifacts(
    tracking: Tracking, run_id: str, paths: Sequence[str | Path], folder: str | None = None
) -> None:
    """Log files to run ``run_id`` (active or not), under ``folder`` when given."""
    from mlflow import MlflowClient

    activate(tracking)
    client = MlflowClient()
    for path in paths:
        client.log_artifact(run_id, str(path), folder)


def round_alias(round: int) -> str:
    """The alias of a round's model version: ``round-N``."""
    return f"round-{round}"


def register_checkpoint(
    tracking: Tracking,
    model_name: str,
    checkpoint_dir: str | Path,
    round: int,
    description: str | None = None,
) -> ModelVersion:
    """Register ``checkpoint_dir`` as a new version of ``model_name``, aliased ``round-N``.

    Needs an active run (the training run): with ``copy_checkpoints`` the directory is
    logged as the run's artifact ``model_name`` and the version points there; otherwise the
    version points at the directory itself. A later version of the same round takes the
    alias over.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("register_checkpoint needs an active MLflow run (use start_run)")
    directory = Path(checkpoint_dir).resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory {directory} does not exist")
    if tracking.copy_checkpoints:
        mlflow.log_artifacts(str(directory), artifact_path=model_name)
        source = mlflow.get_artifact_uri(model_name)
    else:
        source = directory.as_uri()
    client = MlflowClient()
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name)
    version = client.create_model_version(
        model_name, source, run_id=run.info.run_id, description=description
    )
    client.set_registered_model_alias(model_name, round_alias(round), version.version)
    return version


CHAMPION = "champion"
_GATE_SCORE = "gate_score"  # model version tag: the validation accuracy the gate compared


def champion_score(tracking: Tracking, model_name: str) -> float | None:
    """The gate score of ``model_name``'s ``champion`` version; None without a champion."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    activate(tracking)
    try:
        version = MlflowClient().get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None
    return float(version.tags[_GATE_SCORE])


def promote(tracking: Tracking, versions: dict[str, str], score: float, gate: str) -> bool:
    """The promotion gate: tag each model version of ``versions`` (model name -> version)
    with its validation ``score`` (the metric ``gate``), and move the models' ``champion``
    alias to them when ``score`` is not below the champion's (the first model's champion
    speaks for all: they move together). Returns whether they were promoted."""
    from mlflow import MlflowClient

    activate(tracking)
    client = MlflowClient()
    for name, version in versions.items():
        client.set_model_version_tag(name, version, _GATE_SCORE, str(score))
        client.set_model_version_tag(name, version, "gate_metric", gate)
    current = champion_score(tracking, next(iter(versions)))
    if current is not None and score < current:
        return False
    for name, version in versions.items():
        client.set_registered_model_alias(name, CHAMPION, version)
    return True


MODEL_URI_SCHEME = "models:/"


def version_uri(tracking: Tracking, model_name: str, alias: str) -> str:
    """``models:/NAME/VERSION`` of the version of ``model_name`` with ``alias`` (e.g.
    ``round-2``): a reference any node resolves (:func:`resolve_checkpoint`), pinned to the
    version, so that the alias moving on later does not change what it names."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    activate(tracking)
    try:
        version = MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        raise LookupError(
            f"no version of registered model {model_name!r} has alias {alias!r} in "
            f"{tracking.tracking_uri}: {exc}"
        ) from exc
    return f"{MODEL_URI_SCHEME}{model_name}/{version.version}"


def resolve_checkpoint(path: str, tracking_uri: str | None = None) -> str:
    """The checkpoint directory ``path`` names: ``path`` itself, or for a ``models:/`` URI
    the registered version's directory from the MLflow registry at ``tracking_uri`` (default:
    ``MLFLOW_TRACKING_URI``). Local artifact stores give the stored directory itself (nothing
    is copied); remote ones are downloaded to a temporary directory."""
    if not path.startswith(MODEL_URI_SCHEME):
        return path
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = tracking_uri or mlflow.get_tracking_uri()
    try:
        return mlflow.artifacts.download_artifacts(path, tracking_uri=uri, registry_uri=uri)
    except MlflowException as exc:
        raise LookupError(f"{path} is not in the MLflow registry at {uri}: {exc}") from exc


def checkpoint_path(tracking: Tracking, model_name: str, alias: str) -> Path:
    """The directory of the version of ``model_name`` with ``alias`` (e.g. ``round-2``)."""
    uri = version_uri(tracking, model_name, alias)
    return Path(resolve_checkpoint(uri, tracking.tracking_uri))
