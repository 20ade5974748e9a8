"""Typed run profiles: the shipped ``rstar/profiles/<name>.yaml``, or a file of one's own.

A profile says which models drive a run (and through which backend), how searches are
sized, how model-written code is sandboxed, how the models are trained and evaluated, and
how the four self-evolution rounds run. Each concept has one knob:

- ``search:`` sizes every search; a round lays its own ``search:`` overrides over it, and
  its extra search on unsolved problems (``extra:``) lays more over the round's;
- ``eval:`` is the one evaluation section, for ``rstar eval`` and every round;
- ``threads`` is the one thread setting (torch CPU threads wherever a model runs);
- ``tracking.experiment`` names the MLflow experiment of every run.

Sections are defined by the packages that read them (``rstar.search.config``,
``rstar.train.config``, ...) on the strict base of ``rstar.settings``; the ``evolve:``
section is defined here, read by ``rstar.evolve``. Paths may use ``{run_dir}``, which
expands to the profile's run directory (``RSTAR_RUN_DIR`` overrides it). A profile written
for an older rstar fails with the keys that moved and their new places (``MOVED``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from rstar.cluster import RunnerConfig
from rstar.curate.config import CurationConfig
from rstar.evaluate.config import EvalConfig
from rstar.models.config import ModelConfig
from rstar.problems.synthesis import SynthesisConfig
from rstar.sandbox.config import SandboxConfig
from rstar.search.config import SearchConfig
from rstar.settings import ProfileError, Settings, with_overrides
from rstar.store.schema import ESCALATION
from rstar.toy.config import ToyConfig
from rstar.tracking import Tracking, TrackingConfig
from rstar.train.config import TrainConfig

__all__ = [
    "EvolveConfig",
    "ModelConfig",
    "Profile",
    "ProfileError",
    "RoundConfig",
    "SandboxConfig",
    "SearchConfig",
    "load_profile",
    "profile_names",
    "with_overrides",
]

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"  # package data

Values = Literal["terminal", "ppm"]


def _search_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(SearchConfig.model_fields))
    if unknown:
        known = ", ".join(SearchConfig.model_fields)
        raise ValueError(f"{unknown} are not search settings; known: {known}")
    return overrides


class RoundConfig(Settings):
    """How one round searches: its values, and its search laid over the profile's."""

    values: Values = Field(
        "terminal",
        description="terminal: Q-values from terminal rewards only; ppm: the previous round's "
        "PPM gives every new node its initial value (PPM-augmented)",
    )
    search: dict[str, Any] = Field(
        default_factory=dict,
        description="search settings of this round, laid over the profile's search: "
        "(e.g. rollouts, error_threshold)",
    )
    extra: dict[str, Any] | None = Field(
        default_factory=lambda: {"rollouts": 16},
        description="the extra search on the problems left unsolved: settings laid over this "
        "round's search (e.g. rollouts); null: no extra search",
    )
    escalate: list[dict[str, Any]] = Field(
        default_factory=list,
        description="further searches after the extra one, in order, each on the problems "
        "still unsolved after every search before it (the paper's round 4: 64, then 128 "
        "rollouts); settings laid over this round's search; each searches with new seeds",
    )

    @model_validator(mode="after")
    def _known_settings(self) -> RoundConfig:
        _search_overrides(self.search)
        for overrides in (self.extra or {}, *self.escalate):
            _search_overrides(overrides)
        if self.escalate and self.extra is None:
            raise ValueError("escalate follows the extra search: set extra too")
        if len(self.escalate) > len(ESCALATION):
            raise ValueError(f"escalate has at most {len(ESCALATION)} stages")
        return self

    @property
    def extra_passes(self) -> int:
        """How many searches of unsolved problems follow the round's search."""
        return (self.extra is not None) + len(self.escalate)


def _paper_rounds() -> dict[int, RoundConfig]:
    return {
        1: RoundConfig(search={"rollouts": 8, "error_threshold": 2}),
        2: RoundConfig(search={"rollouts": 16}),
        3: RoundConfig(values="ppm", search={"rollouts": 16}),
        4: RoundConfig(values="ppm", search={"rollouts": 16}, extra={"rollouts": 64}),
    }


class ProblemsConfig(Settings):
    """The problems the rounds search: the same set each round (the paper), or each round
    a new set of the same size."""

    source: Literal["toy", "files"] = Field(
        "toy", description="toy: the profile's toy world; files: the `files` below"
    )
    files: tuple[str, ...] = Field(
        (), description="problem files or dataset ids (rstar.problems layouts), for source=files"
    )
    toy_levels: tuple[int, ...] = Field((1, 2, 3, 4, 5, 6), description="toy levels searched")
    toy_per_level: int | dict[int, int] = Field(
        20,
        description="toy train problems per level (after those the base model saw): one "
        "count for every level of toy_levels, or a count per level (its keys are the levels)",
    )
    limit: int | None = Field(None, gt=0, description="search only the first N problems (by id)")
    each_round: Literal["same", "new"] = Field(
        "same",
        description="same: every round searches the same problems (the paper: coverage "
        "grows); new: round N searches the N-th slice of the pool (toy: the next toy_per_level "
        "problems of each level; files: the next `limit` problems by id), so rounds that "
        "keep the SFT rows of earlier rounds (curate.sft_rounds: all) gather more problems",
    )
    decontaminate: tuple[str, ...] | None = Field(
        None,
        description="benchmarks (names or files) whose questions are removed from the problem "
        "files, by exact match or n-gram overlap; None: the benchmarks the rounds are "
        "evaluated on (eval.benchmarks); []: none",
    )
    ngram: int = Field(13, ge=1, description="n of the n-gram overlap test of decontamination")

    @model_validator(mode="after")
    def _files_given(self) -> ProblemsConfig:
        if self.source == "files" and not self.files:
            raise ValueError("problems.source is 'files' but problems.files is empty")
        if self.source == "files" and self.each_round == "new" and self.limit is None:
            raise ValueError(
                "problems.each_round is 'new' but problems.limit is not set: a round's slice "
                "of the problem files is `limit` problems"
            )
        counts = self.toy_per_level
        if isinstance(counts, dict) and "toy_levels" in self.model_fields_set:
            raise ValueError(
                "toy_per_level gives a count per level, so its keys are the levels: "
                "leave toy_levels out"
            )
        if any(n < 1 for n in self.level_counts().values()):
            raise ValueError(f"toy_per_level: every count must be >= 1, got {counts}")
        return self

    def level_counts(self) -> dict[int, int]:
        """Toy problems searched per level."""
        counts = self.toy_per_level
        if isinstance(counts, dict):
            return dict(sorted(counts.items()))
        return {level: counts for level in self.toy_levels}


class SynthesisStageConfig(Settings):
    """The ``evolve.synthesis:`` section: each round named in ``rounds`` first asks a teacher
    behind an OpenAI-compatible server for new problems written from seed problems, keeps
    those whose sampled solutions agree (``filter``: the paper's 3 of 10), and adds them to
    the round's problems (docs/evolve.md, "Problem synthesis")."""

    rounds: tuple[int, ...] = Field((), description="rounds that synthesize (e.g. [1, 2, 3, 4])")
    teacher: ModelConfig = Field(
        description="backend openai: base_url, path = the model name the server serves, "
        "api_key_env (the key itself is never stored or logged); extra: OpenAIBackend options "
        "(api: chat or completions, max_concurrency, deadline, ...)"
    )
    toy_seeds_per_level: dict[int, int] = Field(
        default_factory=dict,
        description="toy train problems per level used as seeds, a new slice each round",
    )
    seed_files: tuple[str, ...] = Field(
        (), description="problem files or dataset ids whose questions are seeds (every round)"
    )
    hard_seeds: int = Field(
        0,
        ge=0,
        description="up to this many of the previous round's problems left unsolved are "
        "seeds too, so what the policy finds hard spawns new problems",
    )
    filter: SynthesisConfig = Field(
        default_factory=SynthesisConfig,
        description="prompts, solutions per problem, min_agree (rstar.problems.synthesis)",
    )
    shard_size: int = Field(100, gt=0, description="seeds per synthesis shard (one task each)")

    @model_validator(mode="after")
    def _http_teacher(self) -> SynthesisStageConfig:
        if self.teacher.backend != "openai" or not self.teacher.base_url:
            raise ValueError(
                "synthesis.teacher must be served over HTTP: backend openai with a base_url "
                "(`rstar serve` for a local model, `vllm serve` on GPUs, or an API)"
            )
        if any(r not in (1, 2, 3, 4) for r in self.rounds):
            raise ValueError(f"synthesis.rounds must be among 1-4, got {list(self.rounds)}")
        return self

    def on(self, round: int) -> bool:
        return round in self.rounds


class EvolveConfig(Settings):
    """The ``evolve:`` section: the problems, the four rounds, sharding.

    Defaults are the paper's: round 1 searches with the bootstrap policy and round 2 with
    SLM-r1, both terminal-guided; rounds 3-4 are PPM-augmented with the previous round's
    PPM; every round searches the problems left unsolved again ("an additional MCTS with
    16 rollouts"), and round 4 escalates that extra search.
    """

    problems: ProblemsConfig = Field(
        default_factory=ProblemsConfig, description="the problems every round searches"
    )
    synthesis: SynthesisStageConfig | None = Field(
        None, description="new problems from a teacher before a round searches; None: off"
    )
    rounds: dict[int, RoundConfig] = Field(
        default_factory=_paper_rounds, description="rounds 1-4: values, search, extra search"
    )
    shard_size: int = Field(64, gt=0, description="problems per MCTS shard (one task each)")
    concurrency: int = Field(2, gt=0, description="shards run at once (Prefect task runner)")
    promote_on: str | None = Field(
        None,
        description="the benchmark (one of eval.benchmarks; a validation set, toy-val for the "
        "toy world) whose greedy accuracy gates the registry alias `champion`: it moves to "
        "round N's models only when they score at least the champion's; default: the first "
        "of eval.benchmarks",
    )
    heldout_pairs: int = Field(
        0,
        ge=0,
        description="toy validation problems per level that the base policy searches once "
        "for a fixed set of PPM pairs (wrong-answer negatives) every round's PPM is measured "
        "on (ppm/heldout_pair_accuracy); 0: none",
    )
    search_with: Literal["round", "champion"] = Field(
        "round",
        description="which models round N+1 searches with: round N's (`round`, the paper's) "
        "or the `champion` alias's",
    )

    @model_validator(mode="after")
    def _four_rounds(self) -> EvolveConfig:
        if sorted(self.rounds) != [1, 2, 3, 4]:
            raise ValueError(f"rounds must configure rounds 1-4, got {sorted(self.rounds)}")
        if self.rounds[1].values == "ppm":
            raise ValueError("round 1 has no PPM to search with: its values must be terminal")
        return self

    def round(self, number: int) -> RoundConfig:
        """The settings of round ``number`` (1-4)."""
        if number not in self.rounds:
            raise ValueError(f"round must be 1-4, got {number}")
        return self.rounds[number]


class Profile(Settings):
    """Everything a run needs to know: models, search, sandbox, training, evaluation, rounds."""

    name: str = Field(description="the profile's name (its file's stem)")
    description: str = Field("", description="one line on what the profile is for")
    run_dir: Path = Field(
        Path("runs"), description="where the run keeps everything (RSTAR_RUN_DIR overrides)"
    )
    threads: int | None = Field(
        None,
        gt=0,
        description="torch CPU threads wherever a model runs (search shards, training, "
        "evaluation, the toy bootstrap); default: all cores",
    )
    policy: ModelConfig = Field(description="the policy model and its backend")
    ppm: ModelConfig | None = Field(
        None, description="how PPM checkpoints are served; default: transformers, policy's device"
    )
    teacher: ModelConfig | None = Field(
        None, description="round-1 bootstrap policy; the policy itself when unset"
    )
    search: SearchConfig = Field(
        default_factory=SearchConfig, description="search sizing (rounds override parts)"
    )
    sandbox: SandboxConfig = Field(
        default_factory=SandboxConfig, description="limits of model-written code"
    )
    toy: ToyConfig | None = Field(
        None, description="the toy world and its base policy (the tiny profile)"
    )
    curate: CurationConfig = Field(
        default_factory=CurationConfig, description="SFT rows and PPM pairs from the trees"
    )
    train: TrainConfig = Field(default_factory=TrainConfig, description="policy SFT and PPM")
    eval: EvalConfig = Field(
        default_factory=EvalConfig, description="evaluation: `rstar eval` and every round"
    )
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="MLflow locations and experiment"
    )
    runner: RunnerConfig = Field(
        default_factory=RunnerConfig,
        description="where a round's shards run: thread (here) or ray (a cluster)",
    )
    evolve: EvolveConfig = Field(
        default_factory=EvolveConfig, description="the self-evolution rounds"
    )

    @model_validator(mode="after")
    def _promotion_benchmark_evaluated(self) -> Profile:
        name = self.evolve.promote_on
        if name is not None and name not in self.eval.benchmarks:
            raise ValueError(
                f"evolve.promote_on is {name!r}, which eval.benchmarks "
                f"{list(self.eval.benchmarks)} does not evaluate: add it there"
            )
        return self

    def promotion_benchmark(self) -> str:
        """The benchmark whose greedy accuracy gates the ``champion`` alias."""
        return self.evolve.promote_on or str(self.eval.benchmarks[0])

    @model_validator(mode="after")
    def _round_searches_valid(self) -> Profile:
        for number, settings in self.evolve.rounds.items():
            for extra in range(settings.extra_passes + 1):
                try:
                    self.round_search(number, extra=extra)
                except ValidationError as exc:
                    place = ("search", "extra")[extra] if extra < 2 else f"escalate.{extra - 2}"
                    raise ValueError(f"evolve.rounds.{number}.{place}: {_errors(exc)}") from None
        return self

    def ppm_at(self, path: str | Path) -> ModelConfig:
        """A PPM checkpoint at ``path``, served as the profile's ``ppm`` is (without one: by
        transformers on the policy's device)."""
        template = self.ppm or ModelConfig(path=str(path), device=self.policy.device)
        return template.at(path)

    def round_search(self, round: int, *, extra: int = 0) -> SearchConfig:
        """The search of ``round``: the profile's, the round's overrides laid over it, and
        for its searches of unsolved problems (``extra`` 1: the extra search, 2, 3...: the
        stages of ``escalate``) their overrides over those."""
        settings = self.evolve.round(round)
        if extra > settings.extra_passes:
            raise ValueError(
                f"round {round} has {settings.extra_passes} extra searches, not {extra}"
            )
        passes = [{}, settings.extra or {}, *settings.escalate]
        overrides = {**settings.search, **passes[extra]}
        return SearchConfig.model_validate({**self.search.model_dump(), **overrides})

    def decontamination_benchmarks(self) -> tuple[str, ...]:
        """The benchmarks whose questions must not be searched or trained on."""
        chosen = self.evolve.problems.decontaminate
        return self.eval.benchmarks if chosen is None else chosen

    def resolved_tracking(self) -> Tracking:
        """The MLflow locations of this profile, defaults filled in under its run directory."""
        return Tracking.for_run(self.run_dir, self.tracking)


def _errors(exc: ValidationError) -> str:
    """A validation error on one line: ``where: what`` for each problem."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def profile_names() -> list[str]:
    """Names of the profiles shipped with rstar (``rstar/profiles/``)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


# Keys of earlier profile layouts and where their setting lives now (``N``: any round).
MOVED: dict[str, str] = {
    "evolve.rounds.N.rollouts": "evolve.rounds.N.search.rollouts",
    "evolve.rounds.N.error_threshold": "evolve.rounds.N.search.error_threshold",
    "evolve.rounds.N.extra_rollouts": "evolve.rounds.N.extra.rollouts (null: extra: null)",
    "evolve.search_threads": "threads",
    "evolve.experiment": "tracking.experiment",
    "evolve.evaluation": "eval",
    "evolve.evaluation.greedy_per_level": "eval.toy_per_level",
    "evolve.evaluation.search_per_level": "eval.toy_search_per_level",
    "evolve.evaluation.search_methods": "eval.methods (with greedy)",
    "eval.num_threads": "threads",
    "train.policy.num_threads": "threads",
    "train.ppm.num_threads": "threads",
    "toy.bootstrap.num_threads": "threads",
}
_ROUND_KEY = re.compile(r"^evolve\.rounds\.\d+\.")
_ANY_ROUND = "evolve.rounds.N."


def _keys(mapping: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        found.append(path)
        if isinstance(value, dict):
            found += _keys(value, f"{path}.")
    return found


def moved_keys(raw: dict[str, Any]) -> list[str]:
    """``old -> new`` for every key of ``raw`` (and of its ``quick:`` mapping) that moved."""
    found = []
    for key in _keys(raw):
        bare = key.removeprefix("quick.")
        round_prefix = _ROUND_KEY.match(bare)
        general = _ROUND_KEY.sub(_ANY_ROUND, bare)
        if general in MOVED:
            new = MOVED[general]
            if round_prefix:
                new = new.replace(_ANY_ROUND, round_prefix.group())
            found.append(f"`{key}` is now `{key[: len(key) - len(bare)]}{new}`")
    return found


def _expand(value: Any, run_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace("{run_dir}", run_dir)
    if isinstance(value, dict):
        return {k: _expand(v, run_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, run_dir) for v in value]
    return value


def _profile_file(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if not candidate.is_file():
            raise ProfileError(f"profile file {candidate} does not exist")
        return candidate
    shipped = PROFILES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise ProfileError(
        f"unknown profile {name_or_path!r}; known profiles: {', '.join(profile_names())} "
        "(or pass the path of a .yaml file)"
    )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, mappings merged key by key, except counts
    (numbers by number, e.g. problems per level), which a new one replaces whole: a quick
    size's ``{1: 6, 2: 6}`` means those levels only."""
    merged = dict(base)
    for key, value in override.items():
        is_counts = isinstance(value, dict) and all(
            isinstance(k, int) and isinstance(v, int | float) for k, v in value.items()
        )
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not is_counts:
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_profile(
    name_or_path: str | Path = "tiny", run_dir: str | Path | None = None, *, quick: bool = False
) -> Profile:
    """Load and validate a profile by name (``rstar/profiles/<name>.yaml``) or file path.

    ``run_dir`` (or the ``RSTAR_RUN_DIR`` environment variable) overrides the profile's own.
    ``quick`` lays the profile's ``quick:`` mapping over it (a smaller run of the same
    method, e.g. for CI); a profile without one cannot be loaded quick.
    """
    path = _profile_file(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: expected a mapping at the top level")
    moved = moved_keys(raw)
    if moved:
        raise ProfileError(f"{path}: written for an earlier rstar; move: {'; '.join(moved)}")
    quick_overrides = raw.pop("quick", None)
    if quick:
        if not isinstance(quick_overrides, dict):
            raise ProfileError(f"{path}: has no `quick:` mapping, so it has no quick size")
        raw = _merge(raw, quick_overrides)
    chosen = run_dir or os.environ.get("RSTAR_RUN_DIR") or raw.get("run_dir") or "runs"
    raw["run_dir"] = str(chosen)
    raw.setdefault("name", path.stem)
    try:
        return Profile.model_validate(_expand(raw, str(chosen)))
    except ValidationError as exc:
        raise ProfileError(f"{path}: {_errors(exc)}") from exc
