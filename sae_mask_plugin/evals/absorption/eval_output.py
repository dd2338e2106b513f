"""Output of the absorption eval: SAEBench's absorption output, plus an explicit first-letter-feature check.

When fewer than `min_feats_for_eval` letters have a ground-truth probe with F1 above `min_GT_probe_f1`, SAEBench
prints a message and returns nothing; here the result is still written, with `first_letter_features` saying
so and the absorption scores left null.
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
