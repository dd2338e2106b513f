"""Per-letter signal gate of the first-letter absorption score (pure: numbers in, verdicts out).

SAEBench's absorption averages a score over every letter whose LLM probe reaches F1 0.6, whatever the SAE's
main latent for that letter looks like. The score only means "absorption" where (a) the letter has a usable
probe and enough probe-positive test words to average over, (b) the SAE has a latent for the letter (the
k = 1 sparse-probe latent: precise, and with a decoder pointing along the probe), and (c) the observed score
differs from what an unrelated latent would give. This module labels each letter pass/fail with its reasons
and averages the score over passing letters only.

Which score. A letter's record may also carry the scores with only the k = 1 main latent (SAEBench's functions,
the feature-split latents left out). On SAEs whose true absorption is known (`docs/absorption_control/`), the
k = 1 full-absorption rate is the measured score that rank-tracks the truth best; SAEBench's absorption fraction
does not track it. The summary averages both over passing letters; the gate's verdicts do not read them.

Cosine thresholds. SAEBench hard-codes 0.1 (absorbing latents) and 0.025 (the top latent of a full
absorption) for d_model 2304. A random direction's cosine with a fixed one has SD 1/sqrt(d), so a threshold
carried to another width keeps its meaning when scaled by sqrt(2304 / d): at d 576 that doubles it. Both
variants are offered (`cosine_gates`); `headline_variant` says which one a model's headline uses (the scaled
one below d_model 2304).

Typical use (the numbers come from SAEBench's k-sparse probing and absorption tables, or from synthetic
data with known features):

    config = AbsorptionGateConfig(d_model=576)
    summary = summarize(records, config)  # records: one LetterRecord per letter
    summary.headline_k1_full_absorption_rate  # None: "absorption not measurable here" (or not computed)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sae_mask_plugin.evals.means import mean_if_complete

# SAEBench 0.6.0 (`evals/absorption/feature_absorption.py`), tuned on Gemma-2-2B (d_model 2304)
SAEBENCH_REFERENCE_D_MODEL = 2304
SAEBENCH_ABSORBER_COS_THRESHOLD = 0.1
SAEBENCH_FULL_ABSORPTION_COS_THRESHOLD = 0.025

NOT_MEASURABLE = "absorption not measurable here"
MIN_PASSING_LETTERS = 20
"""Letters an SAE's absorption headline needs (SAEBench's `min_feats_for_eval` default, which the eval config
inherits); below it the headline is "absorption not measurable here"."""

# reasons a letter fails the gate
REASON_PROBE_F1 = "probe_f1_below_min"
REASON_FEW_WORDS = "too_few_probe_positive_words"
REASON_PRECISION = "main_latent_precision_below_min"
REASON_COSINE = "main_latent_cosine_below_min"
REASON_OTHER_LETTER_NULL = "not_below_other_letter_null"
REASON_RANDOM_SAE_NULL = "main_latent_f1_not_above_random_sae"
REASON_NOT_SCORED = "absorption_not_scored"


def scale_cos_threshold(threshold: float, d_model: int) -> float:
    """`threshold`, set for SAEBench's d_model 2304, carried to `d_model`: `threshold * sqrt(2304 / d_model)`."""
    if d_model < 1:
        raise ValueError(f"d_model must be >= 1, got {d_model}")
    return threshold * math.sqrt(SAEBENCH_REFERENCE_D_MODEL / d_model)


@dataclass(frozen=True)
class CosineGates:
    """The two cosine thresholds of SAEBench's absorption calculator."""

    absorber: float  # each absorbing latent's decoder cosine with the probe (absorption fraction)
    full_absorption: float  # the top-projecting latent's decoder cosine with the probe (full absorption)

    def __post_init__(self) -> None:
        for name in ("absorber", "full_absorption"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"CosineGates.{name} must be in [0, 1), got {value}")


def cosine_gates(d_model: int) -> dict[str, CosineGates]:
    """`{"saebench": SAEBench's hard-coded gates, "scaled": the same carried to d_model}`."""
    return {
        "saebench": CosineGates(SAEBENCH_ABSORBER_COS_THRESHOLD, SAEBENCH_FULL_ABSORPTION_COS_THRESHOLD),
        "scaled": CosineGates(
            scale_cos_threshold(SAEBENCH_ABSORBER_COS_THRESHOLD, d_model),
            scale_cos_threshold(SAEBENCH_FULL_ABSORPTION_COS_THRESHOLD, d_model),
        ),
    }


def headline_variant(d_model: int) -> str:
    """The cosine-gate variant behind a model's headline: "scaled" below d_model 2304, else "saebench"."""
    return "scaled" if d_model < SAEBENCH_REFERENCE_D_MODEL else "saebench"


@dataclass(frozen=True)
class AbsorptionGateConfig:
    """Thresholds of the per-letter gate; `d_model` sets the main latent's cosine threshold."""

    d_model: int
    min_probe_positive_words: int = 50  # probe-positive test words the letter's score averages over
    min_probe_f1: float = 0.6  # the LLM probe's test F1 (SAEBench's `min_GT_probe_f1`)
    min_main_latent_precision: float = 0.5  # the k = 1 latent's precision for the letter (chance ~ 1/26)
    main_latent_cos_at_reference: float = (
        SAEBENCH_ABSORBER_COS_THRESHOLD  # at d_model 2304; scaled to d_model
    )
    min_passing_letters: int = MIN_PASSING_LETTERS  # below this the SAE's headline is None
    use_other_letter_null: bool = (
        True  # the score must be below the letter's score with another letter's latent
    )
    use_random_sae_null: bool = (
        True  # the main latent's F1 must beat a random SAE's main latent for the letter
    )

    def __post_init__(self) -> None:
        if self.d_model < 1:
            raise ValueError(f"d_model must be >= 1, got {self.d_model}")
        if self.min_probe_positive_words < 1:
            raise ValueError(f"min_probe_positive_words must be >= 1, got {self.min_probe_positive_words}")
        for name in ("min_probe_f1", "min_main_latent_precision"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 <= self.main_latent_cos_at_reference < 1.0:
            raise ValueError(
                f"main_latent_cos_at_reference must be in [0, 1), got {self.main_latent_cos_at_reference}"
            )
        if self.min_main_latent_cos >= 1.0:
            raise ValueError(
                f"main_latent_cos_at_reference {self.main_latent_cos_at_reference} scaled to d_model "
                f"{self.d_model} is {self.min_main_latent_cos:.3f}: no latent can reach it"
            )
        if self.min_passing_letters < 1:
            raise ValueError(f"min_passing_letters must be >= 1, got {self.min_passing_letters}")

    @property
    def min_main_latent_cos(self) -> float:
        """The main latent's decoder-probe cosine threshold at this d_model."""
        return scale_cos_threshold(self.main_latent_cos_at_reference, self.d_model)


@dataclass(frozen=True)
class LetterRecord:
    """What the gate reads for one letter (one SAE, one cosine-gate variant).

    The main latent is the k = 1 sparse-probe latent; the main latents are SAEBench's split features (the
    k-sparse probe before F1 stops jumping). Precision, recall and F1 are on the probe's test words.
    """

    letter: str
    probe_f1: float  # the LLM probe's test F1
    num_probe_positive_words: (
        int  # test words of the letter the probe calls positive (SAEBench's true positives)
    )
    main_latent_precision: float
    main_latent_recall: float
    main_latent_f1: float
    main_latent_cos: float  # the main latent's decoder cosine with the probe
    main_latents_recall_on_probe_positive: float  # share of probe-positive words where the main latents fire
    absorption_fraction: float | None = None  # SAEBench's mean absorption fraction; None: not scored
    full_absorption_rate: float | None = None
    k1_absorption_fraction: float | None = None  # the same with only the k = 1 main latent; None: not scored
    k1_full_absorption_rate: float | None = None
    k1_dropped_rate: float | None = None  # probe-positive words where no latent aligned with the probe fires
    null_other_letter_absorption_fraction: float | None = None  # scored with another letter's main latents
    random_sae_main_latent_f1: float | None = None  # a random SAE of the same shape's k = 1 latent F1

    def __post_init__(self) -> None:
        if len(self.letter) != 1 or not self.letter.isalpha():
            raise ValueError(f"letter must be one alphabetic character, got {self.letter!r}")
        if self.num_probe_positive_words < 0:
            raise ValueError(f"num_probe_positive_words must be >= 0, got {self.num_probe_positive_words}")
        for name in (
            "probe_f1",
            "main_latent_precision",
            "main_latent_recall",
            "main_latent_f1",
            "main_latents_recall_on_probe_positive",
            "absorption_fraction",
            "full_absorption_rate",
            "k1_absorption_fraction",
            "k1_full_absorption_rate",
            "k1_dropped_rate",
            "null_other_letter_absorption_fraction",
            "random_sae_main_latent_f1",
        ):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.letter}: {name} must be in [0, 1], got {value}")
        for prefix in ("", "k1_"):
            if (getattr(self, f"{prefix}absorption_fraction") is None) != (
                getattr(self, f"{prefix}full_absorption_rate") is None
            ):
                raise ValueError(
                    f"{self.letter}: {prefix}absorption_fraction and {prefix}full_absorption_rate are scored "
                    "together"
                )
        if not -1.0 <= self.main_latent_cos <= 1.0:
            raise ValueError(f"{self.letter}: main_latent_cos must be in [-1, 1], got {self.main_latent_cos}")


@dataclass(frozen=True)
class LetterVerdict:
    """A letter's gate result: passed when `reasons` is empty."""

    letter: str
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons


def judge_letter(record: LetterRecord, config: AbsorptionGateConfig) -> LetterVerdict:
    """Label one letter pass/fail, with every reason it fails (the `REASON_*` constants).

    Raises ValueError when a null the config uses is missing from the record (never a silent pass).
    """
    if (
        config.use_other_letter_null
        and record.absorption_fraction is not None
        and record.null_other_letter_absorption_fraction is None
    ):
        raise ValueError(f"{record.letter}: the other-letter null is on but the record has none")
    if config.use_random_sae_null and record.random_sae_main_latent_f1 is None:
        raise ValueError(f"{record.letter}: the random-SAE null is on but the record has none")
    reasons = []
    if record.probe_f1 < config.min_probe_f1:
        reasons.append(REASON_PROBE_F1)
    if record.num_probe_positive_words < config.min_probe_positive_words:
        reasons.append(REASON_FEW_WORDS)
    if record.main_latent_precision < config.min_main_latent_precision:
        reasons.append(REASON_PRECISION)
    if record.main_latent_cos < config.min_main_latent_cos:
        reasons.append(REASON_COSINE)
    if config.use_random_sae_null and record.main_latent_f1 <= record.random_sae_main_latent_f1:  # type: ignore[operator]
        reasons.append(REASON_RANDOM_SAE_NULL)
    if record.absorption_fraction is None:
        reasons.append(REASON_NOT_SCORED)
    elif config.use_other_letter_null and (
        record.absorption_fraction >= record.null_other_letter_absorption_fraction  # type: ignore[operator]
    ):
        reasons.append(REASON_OTHER_LETTER_NULL)
    return LetterVerdict(record.letter, tuple(reasons))


@dataclass(frozen=True)
class AbsorptionGateSummary:
    """An SAE's gated absorption: each headline averages passing letters only, None below `min_passing_letters`
    (the k = 1 ones also None when a passing letter has no k = 1 score: not computed)."""

    verdicts: tuple[LetterVerdict, ...]
    min_passing_letters: int
    headline_absorption_fraction: float | None  # SAEBench's absorption fraction
    headline_full_absorption_rate: float | None  # SAEBench's full-absorption rate
    headline_k1_full_absorption_rate: float | None  # the score the ground-truth control validated
    headline_k1_absorption_fraction: float | None
    headline_k1_dropped_rate: float | None  # where nothing aligned with the letter fires: not absorption
    mean_main_latent_precision: float | None  # over all letters given
    mean_main_latent_recall: float | None
    letters_failing_by_reason: dict[str, int] = field(default_factory=dict)
    letters_eligible: int = (
        0  # letters with a usable probe and enough probe-positive words (the SAE decides the rest)
    )

    @property
    def passing_letters(self) -> tuple[str, ...]:
        return tuple(v.letter for v in self.verdicts if v.passed)

    @property
    def letters_passing(self) -> int:
        return len(self.passing_letters)

    @property
    def measurable(self) -> bool:
        return self.headline_absorption_fraction is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts, the headline and each letter's verdict (`{letter: [reasons]}`)."""
        return {
            "letters_passing": self.letters_passing,
            "min_passing_letters": self.min_passing_letters,
            "letters_eligible": self.letters_eligible,
            "passing_letters": list(self.passing_letters),
            "headline_absorption_fraction": self.headline_absorption_fraction,
            "headline_full_absorption_rate": self.headline_full_absorption_rate,
            "headline_k1_full_absorption_rate": self.headline_k1_full_absorption_rate,
            "headline_k1_dropped_rate": self.headline_k1_dropped_rate,
            "headline_k1_absorption_fraction": self.headline_k1_absorption_fraction,
            "mean_main_latent_precision": self.mean_main_latent_precision,
            "mean_main_latent_recall": self.mean_main_latent_recall,
            "letters_failing_by_reason": self.letters_failing_by_reason,
            "reasons_by_letter": {v.letter: list(v.reasons) for v in self.verdicts},
            "headline": self.describe(),
        }

    def describe(self) -> str:
        """The headline as a report prints it: the gated k = 1 full-absorption rate (when computed) and SAEBench's
        absorption fraction, or `NOT_MEASURABLE`."""
        if not self.measurable:
            return (
                f"{NOT_MEASURABLE} ({self.letters_passing} letters pass, {self.min_passing_letters} needed of "
                f"{self.letters_eligible} eligible)"
            )
        k1 = self.headline_k1_full_absorption_rate
        k1_text = "" if k1 is None else f"k = 1 full-absorption rate {k1:.3f}, "
        return (
            f"{k1_text}absorption fraction {self.headline_absorption_fraction:.3f} over {self.letters_passing} "
            "letters"
        )


def summarize(records: Sequence[LetterRecord], config: AbsorptionGateConfig) -> AbsorptionGateSummary:
    """Judge every letter and average the absorption scores over passing letters (None when too few pass)."""
    letters = [r.letter for r in records]
    if len(set(letters)) != len(letters):
        raise ValueError(f"each letter must appear once, got {letters}")
    verdicts = tuple(judge_letter(r, config) for r in records)
    passing = [r for r, v in zip(records, verdicts, strict=True) if v.passed]
    measurable = len(passing) >= config.min_passing_letters
    failing: dict[str, int] = {}
    for verdict in verdicts:
        for reason in verdict.reasons:
            failing[reason] = failing.get(reason, 0) + 1

    def gated(name: str) -> float | None:
        return mean_if_complete(getattr(r, name) for r in passing) if measurable else None

    return AbsorptionGateSummary(
        verdicts=verdicts,
        min_passing_letters=config.min_passing_letters,
        headline_absorption_fraction=gated("absorption_fraction"),
        headline_full_absorption_rate=gated("full_absorption_rate"),
        headline_k1_full_absorption_rate=gated("k1_full_absorption_rate"),
        headline_k1_dropped_rate=gated("k1_dropped_rate"),
        headline_k1_absorption_fraction=gated("k1_absorption_fraction"),
        mean_main_latent_precision=mean_if_complete(r.main_latent_precision for r in records),
        mean_main_latent_recall=mean_if_complete(r.main_latent_recall for r in records),
        letters_failing_by_reason=failing,
        letters_eligible=sum(
            r.probe_f1 >= config.min_probe_f1
            and r.num_probe_positive_words >= config.min_probe_positive_words
            for r in records
        ),
    )
