"""Output of the sparse-probing eval, in the format of SAEBench's `sparse_probing_sae_probes` eval.

The metric and detail classes are SAEBench's; top-k metrics for k outside SAEBench's fixed fields
(1, 2, 5, 10, 20, 50, 100) are in `sae_metrics_by_k`, as SAEBench does.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.base_eval_output import BaseEvalOutput
from sae_bench.evals.sparse_probing_sae_probes.eval_output import (
    EVAL_TYPE_ID_SPARSE_PROBING_SAE_PROBES,
    SaeProbesMetricCategories,
    SaeProbesResultDetail,
)

from sae_mask_plugin.evals.sparse_probing.eval_config import SparseProbingEvalConfig


@dataclass(config=ConfigDict(title="Sparse Probing (sae-probes, offline)"))
class SparseProbingEvalOutput(
    BaseEvalOutput[SparseProbingEvalConfig, SaeProbesMetricCategories, SaeProbesResultDetail]
):
    """
    k-sparse probes on SAE latents vs. a dense probe on the raw activations, on sae-probes' datasets.
    """

    eval_config: SparseProbingEvalConfig
    eval_id: str
    datetime_epoch_millis: int
    eval_result_metrics: SaeProbesMetricCategories
    eval_result_details: list[SaeProbesResultDetail] = Field(
        default_factory=list,
        title="Per-Dataset Sparse Probing Results",
        description="Per-dataset accuracy, AUC and F1 of the dense probe (llm_*) and the k-sparse SAE probes.",
    )
    sae_metrics_by_k: dict[int, dict[str, float]] | None = Field(
        default=None,
        title="SAE Metrics by K",
        description="Mean over datasets for every k: k -> {test_accuracy, test_auc, test_f1}",
    )
    eval_type_id: str = Field(
        default=EVAL_TYPE_ID_SPARSE_PROBING_SAE_PROBES,
        title="Eval Type ID",
        description="The type of the evaluation",
    )
