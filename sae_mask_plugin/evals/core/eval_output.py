"""Output of the core eval: SAEBench's core output (metric categories and per-feature details) with this
eval's config (held-out text instead of a hub dataset)."""

from __future__ import annotations

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.base_eval_output import BaseEvalOutput
from sae_bench.evals.core.eval_output import EVAL_TYPE_ID_CORE, CoreFeatureMetric, CoreMetricCategories

from sae_mask_plugin.evals.core.eval_config import CoreEvalConfig


@dataclass(config=ConfigDict(title="Core"))
class CoreEvalOutput(BaseEvalOutput[CoreEvalConfig, CoreMetricCategories, CoreFeatureMetric]):
    """
    Core SAE evaluations measuring reconstruction quality, sparsity, and model preservation (SAEBench's), on
    held-out text.
    """

    eval_config: CoreEvalConfig
    eval_id: str
    datetime_epoch_millis: int
    eval_result_metrics: CoreMetricCategories
    eval_result_details: list[CoreFeatureMetric] = Field(
        default_factory=list,
        title="Feature-wise Metrics",
        description="Detailed metrics for each feature in the SAE",
    )
    eval_type_id: str = Field(
        default=EVAL_TYPE_ID_CORE,
        title="Eval Type ID",
        description="The type of the evaluation",
    )
