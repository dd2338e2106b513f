"""Output of the absorption eval: SAEBench's absorption output, plus an explicit first-letter-feature check
and the per-letter signal gate (`gate.py`).

When fewer than `min_feats_for_eval` letters have a ground-truth probe with F1 above `min_GT_probe_f1`, SAEBench
prints a message and returns nothing; here the result is still written, with `first_letter_features` saying
so and the absorption scores left null. `mean` is SAEBench's score (SAEBench's cosine gates, every letter
with a probe); `gate` averages only letters passing the signal gate, with the d_model-scaled cosine gates below
d_model 2304: its headline is the k = 1 full-absorption rate (the score that rank-tracks true absorption in
`docs/absorption_control/`), beside SAEBench's absorption fraction and full-absorption rate. The per-letter quantities and both variants are in
`eval_result_unstructured["absorption_gate"]`.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.absorption.eval_output import EVAL_TYPE_ID_ABSORPTION, AbsorptionResultDetail
from sae_bench.evals.base_eval_output import (
    DEFAULT_DISPLAY,
    BaseEvalOutput,
    BaseMetricCategories,
    BaseMetrics,
)

from sae_mask_plugin.evals.absorption.eval_config import AbsorptionEvalConfig


@dataclass
class AbsorptionMeanMetrics(BaseMetrics):
    mean_absorption_fraction_score: float | None = Field(
        default=None,
        title="Mean Absorption Fraction Score",
        description="Average of the absorption fraction scores across all letters (null if not evaluated)",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    mean_full_absorption_score: float | None = Field(
        default=None,
        title="Mean Full Absorption Score",
        description="Average of the full absorption scores across all letters (null if not evaluated)",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    mean_num_split_features: float | None = Field(
        default=None,
        title="Mean Number of Split Features",
        description="Average number of split features across all letters (null if not evaluated)",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    std_dev_absorption_fraction_score: float | None = Field(
        default=None,
        title="Standard Deviation of Absorption Fraction Score",
        description="Standard deviation of the absorption fraction scores across letters (null below 2)",
    )
    std_dev_full_absorption_score: float | None = Field(
        default=None,
        title="Standard Deviation of Full Absorption Score",
        description="Standard deviation of the full absorption scores across letters (null below 2)",
    )
    std_dev_num_split_features: float | None = Field(
        default=None,
        title="Standard Deviation of Number of Split Features",
        description="Standard deviation of the number of split features across letters (null below 2)",
    )


@dataclass
class FirstLetterFeatureMetrics(BaseMetrics):
    num_letters_with_probe_feature: int = Field(
        title="Letters With a First-Letter Feature",
        description="Letters whose ground-truth first-letter probe reaches test F1 > min_GT_probe_f1",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    min_feats_for_eval: int = Field(
        title="Letters Needed",
        description="The number of such letters needed to evaluate absorption (min_feats_for_eval)",
    )
    absorption_evaluated: bool = Field(
        title="Absorption Evaluated",
        description="False when too few first-letter features were found; the absorption scores are then null",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    status: str = Field(
        title="Status",
        description="'evaluated', or why absorption could not be evaluated",
    )


@dataclass
class AbsorptionGateMetrics(BaseMetrics):
    absorption_letters_passing: int = Field(
        title="Letters Passing the Signal Gate",
        description="Letters with a usable probe, enough probe-positive test words, a precise main latent aligned "
        "with the probe, and a score that beats both nulls",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    absorption_letters_needed: int = Field(
        title="Letters Needed",
        description="Passing letters needed for a headline (min_feats_for_eval)",
    )
    absorption_letters_eligible: int | None = Field(
        default=None,
        title="Letters Eligible",
        description="Letters that can pass at all on this model, hook and word list: a probe with F1 at the gate's "
        "minimum and enough probe-positive test words (the SAE decides the rest); the minimum is read against it",
    )
    gated_k1_full_absorption_score: float | None = Field(
        title="Gated k = 1 Full Absorption Rate",
        description="Mean full-absorption rate with only each letter's k = 1 main latent (no feature-split "
        "latents), over passing letters only: the score that rank-tracks true absorption in the ground-truth "
        "control (docs/absorption_control/); null: absorption not measurable here",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    gated_k1_dropped_score: float | None = Field(
        default=None,
        title="Dropped-Word Rate, k = 1 Main Latent (Gated)",
        description="Share of probe-positive words, averaged over passing letters, where the k = 1 main latent is "
        "silent and no latent aligned with the probe (decoder cosine at the absorber gate, positive projection) fires "
        "among the top projecting ones: the letter is dropped, not absorbed (None: not measurable or not computed)",
    )
    gated_absorption_fraction_score: float | None = Field(
        title="Gated Mean Absorption Fraction",
        description="Mean absorption fraction over passing letters only; null: absorption not measurable here",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    gated_full_absorption_score: float | None = Field(
        title="Gated Full Absorption Rate",
        description="Mean full-absorption rate over passing letters only; null: absorption not measurable here",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    random_sae_k1_full_absorption_score: float | None = Field(
        title="Random SAE k = 1 Full Absorption Rate",
        description="A randomly initialised SAE of the same shape: mean k = 1 full-absorption rate over the "
        "letters whose probe passes the gate (probe F1 and probe-positive words)",
    )
    random_sae_absorption_fraction_score: float | None = Field(
        title="Random SAE Absorption Fraction",
        description="A randomly initialised SAE of the same shape: mean absorption fraction over the letters "
        "whose probe passes the gate (probe F1 and probe-positive words)",
    )
    mean_main_latent_precision: float | None = Field(
        title="Mean Main-Latent Precision",
        description="The k = 1 sparse-probe latent's precision, averaged over all letters",
    )
    mean_main_latent_recall: float | None = Field(
        title="Mean Main-Latent Recall",
        description="The k = 1 sparse-probe latent's recall, averaged over all letters",
    )
    cosine_gate_variant: str = Field(
        title="Cosine Gates",
        description="'scaled' (SAEBench's 0.1 / 0.025 times sqrt(2304 / d_model), used below d_model 2304) or "
        "'saebench' (the hard-coded values)",
    )
    status: str = Field(
        title="Status",
        description="The gated headline, or 'absorption not measurable here' with the letters passing",
    )


@dataclass
class AbsorptionMetricCategories(BaseMetricCategories):
    mean: AbsorptionMeanMetrics = Field(
        title="Mean",
        description="Mean metrics",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    first_letter_features: FirstLetterFeatureMetrics = Field(
        title="First-Letter Features",
        description="Whether the model has enough first-letter features for the absorption scores to mean much",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    gate: AbsorptionGateMetrics = Field(
        title="Signal Gate",
        description="The absorption headline over letters where the score carries signal",
        json_schema_extra=DEFAULT_DISPLAY,
    )


@dataclass(config=ConfigDict(title="Absorption"))
class AbsorptionEvalOutput(
    BaseEvalOutput[AbsorptionEvalConfig, AbsorptionMetricCategories, AbsorptionResultDetail]
):
    """
    The feature absorption evaluation looking at the first letter (SAEBench's), run offline.
    """

    eval_config: AbsorptionEvalConfig
    eval_id: str
    datetime_epoch_millis: int
    eval_result_metrics: AbsorptionMetricCategories
    eval_result_details: list[AbsorptionResultDetail] = Field(
        default_factory=list,
        title="Per-Letter Absorption Results",
        description="Each object is a stat on the first letter of the absorption.",
    )
    eval_type_id: str = Field(
        default=EVAL_TYPE_ID_ABSORPTION,
        title="Eval Type ID",
        description="The type of the evaluation",
    )
