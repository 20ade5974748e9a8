"""Typed settings of the toy world and of the tiny base policy (the ``toy:`` part of a profile)."""

from __future__ import annotations

from pydantic import Field, model_validator

from rstar.settings import Settings


class ToyWorldConfig(Settings):
    """How problems are drawn. Defaults give 6 levels with distractors from level 3.

    A problem of level L needs exactly L arithmetic steps. Whether a problem belongs to the
    held-out test set, the validation set or the train pool is decided by the hash of its
    text (``test_share``, then ``val_share`` of all texts), so a test or validation problem
    can never appear in any train pool, whatever the seed. Design choices are made on
    validation; the test set only gives the reported numbers.
    """

    seed: int = Field(0, description="seed of the train pool and test set")
    max_level: int = Field(6, ge=1, description="hardest level (= number of steps)")
    train_per_level: int = Field(2000, ge=0, description="train-pool problems per level")
    test_per_level: int = Field(100, ge=0, description="held-out test problems per level")
    test_share: float = Field(
        0.1, gt=0.0, lt=1.0, description="share of all question texts that are test-only"
    )
    val_share: float = Field(
        0.1, ge=0.0, lt=1.0, description="share of all question texts held out for validation"
    )
    distractor_from_level: int = Field(
        3, ge=1, description="first level whose problems contain irrelevant facts"
    )
    max_distractors: int = Field(3, ge=0, description="most irrelevant facts in one problem")
    start_range: tuple[int, int] = Field((5, 60), description="first number of a one-fact start")
    pair_range: tuple[int, int] = Field((2, 15), description="numbers of a two-fact start (a x b)")
    add_range: tuple[int, int] = Field((2, 40), description="numbers added or subtracted")
    mul_range: tuple[int, int] = Field((2, 5), description="multipliers")
    div_range: tuple[int, int] = Field((2, 6), description="divisors")
    max_value: int = Field(5000, gt=0, description="no multiplication beyond this value")

    @model_validator(mode="after")
    def _ranges_ordered(self) -> ToyWorldConfig:
        if self.test_share + self.val_share >= 1.0:
            raise ValueError(
                f"test_share + val_share must leave a train pool (< 1), got "
                f"{self.test_share} + {self.val_share}"
            )
        for name in ("start_range", "pair_range", "add_range", "mul_range", "div_range"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(
                    f"{name} must be (low, high) with 1 <= low <= high, got {low, high}"
                )
        if self.mul_range[0] < 2 or self.div_range[0] < 2:
            raise ValueError("mul_range and div_range must start at 2 or more")
        return self


class BootstrapConfig(Settings):
    """The tiny base policy: tokenizer, model shape and the SFT run on the easiest levels.

    Defaults build a 0.64 M parameter Llama (width 96, 3 layers) in about 4 minutes on 2 idle
    CPU cores. Trained on levels 1-2 and a few level-3 problems, it writes the step format, solves
    most level 1-2 problems greedily, some level-3 ones and essentially no harder ones: the
    room self-evolution has to grow into. Batches are drawn at random; grouping them by
    length (less padding) made every batch one kind of problem and ruined training.
    """

    seed: int = Field(0, description="seed of the tokenizer data, weights and data order")
    problems_per_level: dict[int, int] = Field(
        {1: 3000, 2: 3000, 3: 400},
        description="train-pool problems per level whose gold solutions are trained on "
        "(a few level-3 ones, so that sampling sometimes writes a third step)",
    )
    vocab_size: int = Field(1024, ge=300, description="BPE vocabulary incl. special tokens")
    hidden_size: int = Field(96, description="model width; the MLP is 4x wider")
    num_layers: int = Field(3, gt=0, description="transformer layers")
    num_heads: int = Field(4, gt=0, description="attention heads")
    max_length: int = Field(1024, gt=0, description="context length (positions)")
    learning_rate: float = Field(3e-3, gt=0.0, description="peak learning rate")
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="share of steps warming up")
    batch_size: int = Field(16, gt=0, description="sequences per optimizer step")
    max_steps: int = Field(1000, gt=0, description="optimizer steps")

    @model_validator(mode="after")
    def _levels_positive(self) -> BootstrapConfig:
        if not self.problems_per_level:
            raise ValueError("problems_per_level must name at least one level")
        for level, count in self.problems_per_level.items():
            if level < 1 or count < 1:
                raise ValueError(f"problems_per_level: level {level} -> {count}: both must be >= 1")
        return self


class TeacherConfig(Settings):
    """The toy teacher (``rstar toy teacher``): a model of the base policy's shape trained
    from scratch with the bootstrap's recipe on gold solutions of levels 1-4 and on writing
    a new problem like a seed. It stands in for GPT-4 behind an OpenAI-compatible server
    (``rstar serve --execute``): much stronger than the base, still fallible, so that
    synthesis's agreement filter has real work to do."""

    seed: int = Field(0, description="seed of the tokenizer data, weights and data order")
    write_per_level: dict[int, int] = Field(
        {1: 500, 2: 1000, 3: 1000, 4: 1000},
        description="(seed, new problem) pairs per level: two train-pool problems of a level",
    )
    solve_per_level: dict[int, int] = Field(
        {1: 2500, 2: 2500, 3: 2500, 4: 2500},
        description="train-pool problems per level whose gold solutions it learns",
    )
    max_steps: int = Field(2500, gt=0, description="optimizer steps")
    learning_rate: float = Field(3e-3, gt=0.0, description="peak learning rate")


class ToyConfig(Settings):
    """The ``toy:`` section of a profile: the world, the base policy and the teacher."""

    world: ToyWorldConfig = Field(
        default_factory=ToyWorldConfig, description="how toy problems are drawn"
    )
    bootstrap: BootstrapConfig = Field(
        default_factory=BootstrapConfig, description="the tiny base policy and its training"
    )
    teacher: TeacherConfig = Field(
        default_factory=TeacherConfig, description="the toy teacher that synthesis asks"
    )
