"""MLflow tracking with a real SQLite store: locations, nested runs, metrics, model versions."""

from __future__ import annotations

import hashlib
import json
import subprocess

import mlflow
import pytest
from mlflow import MlflowClient
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from rstar.format import build_prompt
from rstar.tracking import (
    CHAMPION,
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING,
    PPM_MODEL,
    Tracking,
    TrackingConfig,
    activate,
    champion_score,
    checkpoint_path,
    file_digest,
    log_datasets,
    log_metrics,
    promote,
    register_checkpoint,
    source_commit,
    start_run,
)
from rstar.train.config import PolicyTrainConfig, PPMTrainConfig
from rstar.train.ppm import train_ppm
from rstar.train.sft import train_policy
from tests.tiny_models import tiny_checkpoint

QUESTION = "What is 2 plus 3?"
PREFIX = "<code>\n# Step 1: add\nx = 2 + 3\n<end_of_step>"
SOLUTION = PREFIX + "\n# Now print the final answer\nprint(x)\n<end_of_code>"
SMALL = {"batch_size": 4, "per_device_batch_size": 4, "max_length": 128}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    yield path
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(scope="module")
def tracking(run_dir) -> Tracking:
    return Tracking.for_run(run_dir)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("base")
    return tiny_checkpoint(path, [build_prompt(QUESTION) + SOLUTION], max_positions=128)


def test_locations_default_under_the_run_directory(run_dir):
    default = Tracking.for_run(run_dir)
    assert default.tracking_uri == f"sqlite:///{run_dir.resolve()}/mlflow/mlflow.db"
    assert default.artifact_location == (run_dir.resolve() / "mlflow" / "artifacts").as_uri()
    explicit = Tracking.for_run(
        run_dir, TrackingConfig(tracking_uri="sqlite:////elsewhere/x.db", artifact_root="rel/a")
    )
    assert explicit.tracking_uri == "sqlite:////elsewhere/x.db"
    assert explicit.artifact_location.startswith(
        "file:///"
    ) and explicit.artifact_location.endswith("/rel/a")


def test_runs_nest_and_nothing_lands_in_the_working_directory(
    tracking, run_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with (
        start_run(tracking, "round-1", tags={"round": 1}) as parent,
        start_run(tracking, "child", params={"lr": 0.1}) as child,
    ):
        log_metrics({"x/value": 2.0, "x/nan": float("nan"), "x/text": "no"}, step=3)
    assert list(tmp_path.iterdir()) == []
    assert (run_dir / "mlflow" / "mlflow.db").is_file()
    client = MlflowClient(tracking.tracking_uri)
    got = client.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert got.data.params == {"lr": "0.1"}
    assert got.data.metrics == {"x/value": 2.0}  # non-finite and non-numeric values dropped
    experiment = client.get_experiment(got.info.experiment_id)
    assert experiment.artifact_location == tracking.artifact_location
    # MLflow's UI opens a model-training experiment on its runs
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING == "custom_model_development"
    client.delete_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG)  # an older rstar's
    activate(tracking)
    tags = client.get_experiment(experiment.experiment_id).tags
    assert tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
    assert client.get_run(parent.info.run_id).data.tags["round"] == "1"


def test_datasets_are_inputs_with_their_content_digest(tracking, tmp_path):
    problems, rows = tmp_path / "problems.parquet", tmp_path / "sft.jsonl"
    problems.write_bytes(b"some problems")
    rows.write_text('{"text": "a row"}\n')
    with start_run(tracking, "datasets") as run:
        pass
    missing = tmp_path / "pairs.jsonl"  # a round without pairs: skipped, not an error
    log_datasets(
        tracking,
        run.info.run_id,
        [("problems", problems, "search"), ("sft", rows, "training"), ("pairs", missing, "x")],
    )
    inputs = MlflowClient(tracking.tracking_uri).get_run(run.info.run_id).inputs.dataset_inputs
    got = {i.dataset.name: (i.dataset.digest, i.tags[0].value) for i in inputs}
    expected = hashlib.sha256(b"some problems").hexdigest()[:16]
    assert got == {"problems": (expected, "search"), "sft": (file_digest(rows)[:16], "training")}
    assert json.loads(inputs[0].dataset.source)["uri"].startswith("file:///")


def test_the_source_commit_is_read_from_a_clone_only(tmp_path):
    package = tmp_path / "clone" / "rstar"
    package.mkdir(parents=True)
    assert source_commit(package) is None  # no .git beside it: an installed wheel
    git = ["git", "-C", str(package.parent), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    assert source_commit(package) == head.stdout.strip()


def test_checkpoints_register_with_round_aliases(tracking, base, tmp_path):
    with start_run(tracking, "first"):
        first = register_checkpoint(tracking, "scratch", base, round=1)
    with start_run(tracking, "second"):
        second = register_checkpoint(tracking, "scratch", base, round=1)
    client = MlflowClient(tracking.tracking_uri)
    assert client.get_model_version_by_alias("scratch", "round-1").version == second.version
    assert int(second.version) == int(first.version) + 1
    path = checkpoint_path(tracking, "scratch", "round-1")
    assert path.is_relative_to(tracking.artifact_location.removeprefix("file://"))
    assert AutoModelForCausalLM.from_pretrained(path).num_parameters() > 0
    by_reference = Tracking(
        tracking.tracking_uri, tracking.artifact_location, copy_checkpoints=False
    )
    with start_run(by_reference, "third"):
        register_checkpoint(by_reference, "scratch", base, round=2)
    assert checkpoint_path(tracking, "scratch", "round-2") == base.resolve()
    with pytest.raises(LookupError, match="round-9"):
        checkpoint_path(tracking, "scratch", "round-9")
    with pytest.raises(RuntimeError, match="active MLflow run"):
        register_checkpoint(tracking, "scratch", base, round=3)


def test_the_champion_moves_only_to_models_that_score_at_least_as_well(tracking, base):
    by_reference = Tracking(
        tracking.tracking_uri, tracking.artifact_location, copy_checkpoints=False
    )
    versions = {}
    for round in (1, 2, 3, 4):
        with start_run(by_reference, f"round-{round}"):
            versions[round] = {
                name: register_checkpoint(by_reference, name, base, round=round).version
                for name in ("gate-policy", "gate-ppm")
            }
    assert champion_score(tracking, "gate-policy") is None
    gate = "eval/toy-val/greedy/accuracy"
    # round 1: no champion yet; round 2 scores lower; round 3 ties; round 4 is better
    moves = [promote(tracking, versions[r], score, gate) for r, score in
             ((1, 0.5), (2, 0.4), (3, 0.5), (4, 0.7))]  # fmt: skip
    assert moves == [True, False, True, True]
    client = MlflowClient(tracking.tracking_uri)
    for name in ("gate-policy", "gate-ppm"):
        assert client.get_model_version_by_alias(name, CHAMPION).version == versions[4][name]
        assert client.get_model_version(name, versions[2][name]).tags == {
            "gate_score": "0.4",
            "gate_metric": gate,
        }
    assert champion_score(tracking, "gate-ppm") == 0.7


def test_training_logs_curves_and_registers_both_models(tracking, base, tmp_path):
    sft_rows = [{"prompt": build_prompt(QUESTION), "completion": SOLUTION}] * 8
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft_rows))
    pairs = [
        {
            "problem_id": f"p{i}",
            "prompt": build_prompt(f"What is {i} plus 3?"),
            "chosen": PREFIX,
            "rejected": "<code>\n# Step 1: guess\nx = 7\n<end_of_step>",
        }
        for i in range(8)
    ]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs))
    with start_run(tracking, "round-1") as parent:
        policy = train_policy(
            tmp_path / "sft.jsonl",
            base,
            tmp_path / "policy",
            PolicyTrainConfig(max_steps=6, learning_rate=1e-3, logging_steps=2, **SMALL),
            round=1,
            tracking=tracking,
            progress=False,
        )
        ppm = train_ppm(
            tmp_path / "pairs.jsonl",
            tmp_path / "policy",
            tmp_path / "ppm",
            PPMTrainConfig(
                max_steps=4, learning_rate=1e-3, logging_steps=1, eval_share=0.25, **SMALL
            ),
            round=1,
            tracking=tracking,
            progress=False,
        )
    client = MlflowClient(tracking.tracking_uri)
    policy_version = client.get_model_version_by_alias("policy", "round-1")
    ppm_version = client.get_model_version_by_alias(PPM_MODEL, "round-1")
    assert policy_version.version == policy.model_version
    assert ppm_version.version == ppm.model_version
    sft_run = client.get_run(policy_version.run_id)
    assert sft_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert sft_run.data.tags["round"] == "1" and sft_run.info.run_name == "sft"
    assert sft_run.data.params["learning_rate"] == "0.001"
    history = client.get_metric_history(policy_version.run_id, "sft/loss")
    assert [m.step for m in history] == [1, 2, 4, 6]  # logging_first_step, then every 2
    assert [m.step for m in history] == [s for s, _ in policy.loss_history]
    assert [m.value for m in history] == pytest.approx([v for _, v in policy.loss_history])
    ppm_metrics = client.get_run(ppm_version.run_id).data.metrics
    assert ppm_metrics["ppm/pair_accuracy"] == ppm.metrics["ppm/pair_accuracy"]
    assert ppm_metrics["ppm/held_out_pairs"] == 2
    assert "ppm/accuracy" in ppm_metrics  # TRL's training-batch accuracy, logged each step
    # the registered PPM loads back as the scalar-head model PPMScorer serves
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint_path(tracking, PPM_MODEL, "round-1")
    )
    assert model.config.num_labels == 1 and model.config.pad_token_id is not None
