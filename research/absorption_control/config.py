"""Configs of the absorption control: the synthetic world, the SAE grid and the mechanism test.

Every config checks itself in `__post_init__`, so bad input fails before any SAE is built or trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sae_mask_plugin.errors import SaeMaskUserError

NUM_LETTERS = 26
"""SAEBench's first-letter code loops over `LETTERS` (26): the control's intrinsic hierarchy has 26 letter parents."""

SUPPORTED_ARCHITECTURES = ("topk", "batchtopk", "matryoshka_batchtopk")
MATCHED_COUNT_REPLACEMENT = "replacement_matched_count"
"""Replacement trained 1/(1-p) times longer, so that it sees as many real (unreplaced) samples as the unmodified
SAE: what is left of replacement's effect once the lost samples are given back."""
MODIFIER_KINDS = ("replacement", "context_dropout", "cooccurrence_breaking", MATCHED_COUNT_REPLACEMENT)
ModifierKind = Literal["replacement", "context_dropout", "cooccurrence_breaking", "replacement_matched_count"]
LETTERS_MECHANISM_KINDS = ("replacement", "context_dropout", "cooccurrence_breaking")
"""The mechanism test's modifiers in the letters world (as published)."""


class ControlConfigError(SaeMaskUserError, ValueError):
    """A control config or hierarchy that cannot be run (raised before anything is built)."""


def check_probability(name: str, value: float, *, upper_open: bool = False) -> None:
    upper_ok = value < 1 if upper_open else value <= 1
    if not (value >= 0 and upper_ok):
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise ControlConfigError(f"{name} must lie in {interval}, got {value}")


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ControlConfigError(f"{name} must be a positive integer, got {value}")


@dataclass(frozen=True)
class FeatureHierarchy:
    """A forest of true features: `children[parent]` lists the features that may fire only with `parent`.

    `kind` says what the features stand for: `intrinsic` (properties of the token itself, e.g. token => first
    letter) or `contextual` (read from the neighbours). Siblings are mutually exclusive.
    """

    children: Mapping[int, Sequence[int]]
    kind: Literal["intrinsic", "contextual"]

    def __post_init__(self) -> None:
        if self.kind not in ("intrinsic", "contextual"):
            raise ControlConfigError(f"hierarchy kind must be 'intrinsic' or 'contextual', got {self.kind!r}")
        parent_of: dict[int, int] = {}
        for parent, kids in self.children.items():
            if parent < 0 or any(child < 0 for child in kids):
                raise ControlConfigError(f"feature indices must be non-negative: {parent} -> {list(kids)}")
            if not kids:
                raise ControlConfigError(f"parent {parent} lists no children")
            for child in kids:
                if child in parent_of:
                    raise ControlConfigError(
                        f"the hierarchy is not a tree: feature {child} has two parents ({parent_of[child]} and {parent})"
                    )
                parent_of[child] = parent
        for start in parent_of:
            seen = {start}
            node = start
            while node in parent_of:
                node = parent_of[node]
                if node in seen:
                    raise ControlConfigError(
                        f"the hierarchy is not a tree: feature {node} is its own ancestor"
                    )
                seen.add(node)

    @property
    def parent_of(self) -> dict[int, int]:
        return {child: parent for parent, kids in self.children.items() for child in kids}

    @property
    def roots(self) -> list[int]:
        parent_of = self.parent_of
        return [parent for parent in self.children if parent not in parent_of]


@dataclass(frozen=True)
class WorldConfig:
    """The synthetic activations: 26 intrinsic letter parents, each with `words_per_letter` word children (a
    token is at most one word); `context_parents` contextual parents with `context_children` children each;
    `background_features` independent contextual features; one `mask` feature that fires only under replacement.
    Firing probabilities are per sample (children: given their parent), magnitudes have mean 1. With
    `word_zipf_exponent` s > 0 the words of a letter are Zipf-weighted as a vocabulary's are: the word of rank r
    fires with probability `word_probability` * r ** -s (the top word with `word_probability`), so a few words make
    most of a letter's occurrences and many are rare."""

    words_per_letter: int = 4
    word_zipf_exponent: float = 0.0
    context_parents: int = 6
    context_children: int = 3
    background_features: int = 24
    letter_probability: float = 0.06
    word_probability: float = 0.15
    context_parent_probability: float = 0.08
    context_child_probability: float = 0.6
    background_probability: float = 0.04
    magnitude_std: float = 0.1

    def __post_init__(self) -> None:
        for name in ("words_per_letter", "context_parents", "context_children"):
            _check_positive(name, getattr(self, name))
        if self.background_features < 0:
            raise ControlConfigError(f"background_features must be >= 0, got {self.background_features}")
        for name in (
            "letter_probability",
            "word_probability",
            "context_parent_probability",
            "context_child_probability",
            "background_probability",
        ):
            check_probability(name, getattr(self, name))
        if self.magnitude_std < 0:
            raise ControlConfigError(f"magnitude_std must be >= 0, got {self.magnitude_std}")
        if self.word_zipf_exponent < 0:
            raise ControlConfigError(f"word_zipf_exponent must be >= 0, got {self.word_zipf_exponent}")

    def word_probabilities(self) -> list[float]:
        """Each word's firing probability given its letter, by rank within the letter ([words_per_letter]):
        `word_probability` * rank ** -s (equal without a Zipf exponent)."""
        return [
            self.word_probability * (rank + 1) ** -self.word_zipf_exponent
            for rank in range(self.words_per_letter)
        ]

    @property
    def num_words(self) -> int:
        return NUM_LETTERS * self.words_per_letter

    @property
    def num_context_features(self) -> int:
        return self.context_parents * (1 + self.context_children) + self.background_features

    @property
    def num_features(self) -> int:
        return NUM_LETTERS + self.num_words + self.num_context_features + 1

    @property
    def mask_feature(self) -> int:
        return self.num_features - 1

    def letters(self) -> list[int]:
        return list(range(NUM_LETTERS))

    def intrinsic_hierarchy(self) -> FeatureHierarchy:
        """Letter i -> its words (features 26 + i * words_per_letter ...)."""
        n = self.words_per_letter
        return FeatureHierarchy(
            {letter: tuple(NUM_LETTERS + letter * n + j for j in range(n)) for letter in self.letters()},
            kind="intrinsic",
        )

    def contextual_hierarchy(self) -> FeatureHierarchy:
        first = NUM_LETTERS + self.num_words
        step = 1 + self.context_children
        return FeatureHierarchy(
            {
                first + i * step: tuple(first + i * step + 1 + j for j in range(self.context_children))
                for i in range(self.context_parents)
            },
            kind="contextual",
        )

    def contextual_features(self) -> list[int]:
        """The hierarchical contextual features and the background ones (all but letters, words and mask)."""
        first = NUM_LETTERS + self.num_words
        return list(range(first, first + self.num_context_features))


@dataclass(frozen=True)
class ModifierConfig:
    """A training-time modifier mimicking masking (see `synthetic.training_modifier`); p in [0, 1)."""

    kind: ModifierKind
    p: float

    def __post_init__(self) -> None:
        if self.kind not in MODIFIER_KINDS:
            raise ControlConfigError(f"modifier kind must be one of {MODIFIER_KINDS}, got {self.kind!r}")
        check_probability(f"{self.kind} p", self.p, upper_open=True)

    @property
    def sample_multiplier(self) -> float:
        """How many times the unmodified SAE's training samples this modifier trains on: 1/(1-p) for
        `MATCHED_COUNT_REPLACEMENT` (as many real samples as the unmodified SAE), else 1."""
        return 1 / (1 - self.p) if self.kind == MATCHED_COUNT_REPLACEMENT else 1.0


@dataclass(frozen=True)
class SAESpec:
    """One SAE to train on the world: architecture, hidden size d, width and L0 target k."""

    architecture: str
    hidden_dim: int
    width: int
    k: int
    seed: int
    modifier: ModifierConfig | None = None

    def __post_init__(self) -> None:
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise ControlConfigError(
                f"architecture must be one of {SUPPORTED_ARCHITECTURES}, got {self.architecture!r}"
            )
        for name in ("hidden_dim", "width", "k"):
            _check_positive(name, getattr(self, name))
        if self.k >= self.width:
            raise ControlConfigError(f"k ({self.k}) must be below the width ({self.width})")

    @property
    def name(self) -> str:
        base = f"{self.architecture}-d{self.hidden_dim}-w{self.width}-k{self.k}-s{self.seed}"
        if self.modifier is None:
            return base
        return f"{base}-{self.modifier.kind}-p{self.modifier.p:g}"


@dataclass(frozen=True)
class MeasureConfig:
    """Sizes of the probing data and SAEBench's absorption settings (its defaults unless noted)."""

    train_words_per_letter: int = 150
    test_words_per_letter: int = 100
    probe_batch_size: int = 512
    sparse_probe_batch_size: int = 1024
    """SAEBench's probes use 4,096 rows a batch over an LLM vocabulary of ~10k+ words; with a few thousand
    synthetic words that leaves ~50 optimizer steps and a letter probe biased to fire, so the batches are
    smaller."""
    max_k_value: int = 5
    f1_jump_threshold: float = 0.03
    min_probe_f1: float = 0.6
    true_cos_threshold: float = 0.3
    """The child's matched latent "carries the parent direction" when its decoder cosine with the parent is at
    least this (an absorbing child latent sits near 0.5-0.7, a clean one near 0)."""

    def __post_init__(self) -> None:
        for name in (
            "train_words_per_letter",
            "test_words_per_letter",
            "probe_batch_size",
            "sparse_probe_batch_size",
            "max_k_value",
        ):
            _check_positive(name, getattr(self, name))
        check_probability("min_probe_f1", self.min_probe_f1)
        check_probability("true_cos_threshold", self.true_cos_threshold)


@dataclass(frozen=True)
class ControlConfig:
    """The whole control: the grid (architectures x d x width x k x seeds), the random-SAE null, and the
    mechanism test (modifiers x p x seeds at one SAE shape)."""

    world: WorldConfig = field(default_factory=WorldConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    architectures: tuple[str, ...] = ("topk", "batchtopk")
    hidden_dims: tuple[int, ...] = (64, 576)
    widths: tuple[int, ...] = (128, 320)
    ks: tuple[int, ...] = (2, 6)
    seeds: tuple[int, ...] = (0, 1, 2)
    training_samples: int = 150_000
    batch_size: int = 1024
    lr: float = 3e-3
    mechanism_architecture: str = "topk"
    mechanism_hidden_dim: int = 64
    mechanism_width: int = 320
    mechanism_k: int = 2
    mechanism_ps: tuple[float, ...] = (0.0, 0.3, 0.7)
    mechanism_kinds: tuple[str, ...] = LETTERS_MECHANISM_KINDS
    mechanism_seeds: tuple[int, ...] | None = None
    """Seeds of the mechanism test (and so of the paired-comparison check); None: `seeds`."""

    def __post_init__(self) -> None:
        for name in (
            "architectures",
            "hidden_dims",
            "widths",
            "ks",
            "seeds",
            "mechanism_ps",
            "mechanism_kinds",
        ):
            if not getattr(self, name):
                raise ControlConfigError(f"{name} must not be empty")
        if self.mechanism_seeds is not None and not self.mechanism_seeds:
            raise ControlConfigError("mechanism_seeds must not be empty (None: the grid's seeds)")
        _check_positive("training_samples", self.training_samples)
        _check_positive("batch_size", self.batch_size)
        if self.lr <= 0:
            raise ControlConfigError(f"lr must be positive, got {self.lr}")
        # building the specs checks every architecture, size and p
        self.grid_specs()
        self.mechanism_specs()
        self.random_specs()

    def training_samples_of(self, spec: SAESpec) -> int:
        """The samples `spec` trains on: `training_samples` times its modifier's `sample_multiplier`."""
        multiplier = 1.0 if spec.modifier is None else spec.modifier.sample_multiplier
        return round(self.training_samples * multiplier)

    def grid_specs(self) -> list[SAESpec]:
        return [
            SAESpec(arch, d, width, k, seed)
            for arch in self.architectures
            for d in self.hidden_dims
            for width in self.widths
            for k in self.ks
            for seed in self.seeds
        ]

    def random_specs(self) -> list[SAESpec]:
        """Untrained SAEs of every grid shape (seed 0, the smallest k): the null the measured score must beat."""
        return [
            SAESpec(arch, d, width, min(self.ks), self.seeds[0])
            for arch in self.architectures
            for d in self.hidden_dims
            for width in self.widths
        ]

    def mechanism_specs(self) -> list[SAESpec]:
        """Every modifier at every p > 0; p = 0 is the unmodified SAE of the same shape (shared, and a grid cell
        when the shape is in the grid)."""
        shape = (
            self.mechanism_architecture,
            self.mechanism_hidden_dim,
            self.mechanism_width,
            self.mechanism_k,
        )
        specs = []
        for seed in self.mechanism_seeds or self.seeds:
            for p in self.mechanism_ps:
                if p == 0:
                    specs.append(SAESpec(*shape, seed))
                    continue
                specs.extend(
                    SAESpec(*shape, seed, ModifierConfig(kind, p))  # type: ignore[arg-type]
                    for kind in self.mechanism_kinds
                )
        return specs


def tiny_config() -> ControlConfig:
    """A grid that runs in a minute or two (a smoke test, not a result): 89 features in d = 96."""
    return ControlConfig(
        world=WorldConfig(words_per_letter=2, context_parents=2, context_children=2, background_features=4),
        measure=MeasureConfig(train_words_per_letter=40, test_words_per_letter=30, probe_batch_size=128),
        architectures=("topk",),
        hidden_dims=(96,),
        widths=(128,),
        ks=(2, 6),
        seeds=(0,),
        training_samples=20_000,
        mechanism_hidden_dim=96,
        mechanism_width=128,
        mechanism_k=2,
        mechanism_ps=(0.0, 0.5),
        mechanism_kinds=MODIFIER_KINDS,
    )


VOCABULARY_WORLD = WorldConfig(words_per_letter=50, word_zipf_exponent=1.0)
"""26 letters x 50 Zipf-weighted words (exponent 1): 1,300 word features, where the letters world made each of its 4
words a large share of its letter."""


def vocabulary_config() -> ControlConfig:
    """The vocabulary-like world with SAEs narrower than its 1,300 word features, where they absorb: a grid of
    widths 256 / 512 / 1,024 x k 4 / 8 x 3 seeds (the spread of truth the Spearman lines need), and the mechanism
    test at one shape over 6 seeds: unmodified against co-occurrence breaking, replacement and replacement at a
    matched count of real samples, at p 0.3 (what the paired-comparison check reads).

    The mechanism shape was chosen from a pilot (seed 0, 600,000 samples; widths 256 / 512 / 1,024 at k 4 and
    width 512 at k 8; unmodified and co-occurrence breaking at p 0.3 only) by a rule fixed before it ran: the
    widest shape (ties: the larger k) whose unmodified SAE's true intrinsic absorption is at least 0.1 and whose
    co-occurrence-breaking SAE's is at most half of it. Replacement did not run in the pilot, so it could not
    steer the choice; the pilot's cells are not kept (the grid's seed 0 reruns its unmodified shapes)."""
    return _vocabulary_world_config(
        width=512,
        k=4,
        grid={"widths": (256, 512, 1024), "ks": (4, 8), "seeds": (0, 1, 2)},
        mechanism_kinds=("cooccurrence_breaking", "replacement", MATCHED_COUNT_REPLACEMENT),
    )


def vocabulary_wide_config() -> ControlConfig:
    """The vocabulary-like world with one SAE shape wider than its 1,300 word features (width 2,048, k 8): its
    SAEs show no intrinsic absorption, so co-occurrence breaking has none to remove (the reason
    `vocabulary_config` goes narrower). The mechanism test over 6 seeds, unmodified against co-occurrence breaking
    and replacement at p 0.3."""
    return _vocabulary_world_config(
        width=2048,
        k=8,
        grid={"widths": (2048,), "ks": (8,), "seeds": (0,)},
        mechanism_kinds=("cooccurrence_breaking", "replacement"),
    )


def _vocabulary_world_config(
    width: int, k: int, grid: dict[str, tuple[int, ...]], mechanism_kinds: tuple[str, ...]
) -> ControlConfig:
    """A vocabulary-world control of TopK SAEs in d 256 (600,000 samples each): `grid` (its widths, ks and seeds)
    and the mechanism test at (`width`, `k`) over 6 seeds, unmodified against `mechanism_kinds` at p 0.3."""
    return ControlConfig(
        world=VOCABULARY_WORLD,
        architectures=("topk",),
        hidden_dims=(256,),
        **grid,  # type: ignore[arg-type]
        training_samples=600_000,
        mechanism_architecture="topk",
        mechanism_hidden_dim=256,
        mechanism_width=width,
        mechanism_k=k,
        mechanism_ps=(0.0, 0.3),
        mechanism_kinds=mechanism_kinds,
        mechanism_seeds=tuple(range(6)),
    )
