"""Output of the OOD-probing eval (new; neither SAEBench nor sae-probes has one), in SAEBench's format."""

from __future__ import annotations

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.base_eval_output import (
    DEFAULT_DISPLAY,
    BaseEvalOutput,
    BaseMetricCategories,
    BaseMetrics,
    BaseResultDetail,
)

from sae_mask_plugin.evals.ood_probing.eval_config import OodProbingEvalConfig

EVAL_TYPE_ID_OOD_PROBING = "ood_probing"


@dataclass
class OodOracleMetrics(BaseMetrics):
    oracle_id_accuracy: float = Field(
        title="Oracle ID Accuracy",
        description="Mean over tasks: dense probe on raw activations, held-out in-distribution accuracy",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    oracle_ood_accuracy: float = Field(
        title="Oracle OOD Accuracy",
        description="Mean over tasks: dense probe on raw activations, OOD accuracy",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    oracle_ood_gap: float = Field(
        title="Oracle OOD Gap",
        description="Mean over tasks of ID accuracy minus OOD accuracy of the dense probe",
        json_schema_extra=DEFAULT_DISPLAY,
    )


@dataclass
class OodSaeMetrics(BaseMetrics):
    k: int = Field(title="K", description="Number of SAE latents of the probes summarised here (headline_k)")
    sae_id_accuracy: float = Field(
        title="SAE ID Accuracy",
        description="Mean over tasks: k-sparse probe on SAE latents, held-out in-distribution accuracy",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    sae_ood_accuracy: float = Field(
        title="SAE OOD Accuracy",
        description="Mean over tasks: k-sparse probe on SAE latents, OOD accuracy",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    sae_ood_gap: float = Field(
        title="SAE OOD Gap",
        description="Mean over tasks of ID accuracy minus OOD accuracy of the k-sparse probe",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    oracle_minus_sae_id_accuracy: float = Field(
        title="Oracle - SAE ID Accuracy",
        description="Mean over tasks of the dense oracle's ID accuracy minus the k-sparse probe's",
    )
    oracle_minus_sae_ood_accuracy: float = Field(
        title="Oracle - SAE OOD Accuracy",
        description="Mean over tasks of the dense oracle's OOD accuracy minus the k-sparse probe's "
        "(the SAE-vs-oracle gap out of distribution)",
        json_schema_extra=DEFAULT_DISPLAY,
    )


@dataclass
class OodMetricCategories(BaseMetricCategories):
    oracle: OodOracleMetrics = Field(
        title="Oracle",
        description="Dense logistic-regression probe on raw activations",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    sae: OodSaeMetrics = Field(
        title="SAE",
        description="k-sparse probe on SAE latents, at headline_k",
        json_schema_extra=DEFAULT_DISPLAY,
    )


@dataclass
class OodTaskDetail(BaseResultDetail):
    task_name: str = Field(title="Task", description="sae-probes OOD task")
    num_train: int = Field(title="Training Examples", description="In-distribution training examples")
    num_id_test: int = Field(title="ID Test Examples", description="Held-out in-distribution test examples")
    num_ood_test: int = Field(title="OOD Test Examples", description="OOD test examples")
    oracle_C: float = Field(
        title="Oracle C", description="Inverse regularisation strength chosen for the oracle"
    )
    oracle_id_accuracy: float = Field(title="Oracle ID Accuracy", description="Dense probe, ID accuracy")
    oracle_ood_accuracy: float = Field(title="Oracle OOD Accuracy", description="Dense probe, OOD accuracy")
    oracle_ood_gap: float = Field(title="Oracle OOD Gap", description="Dense probe, ID minus OOD accuracy")
    sae_metrics_by_k: dict[int, dict[str, float]] = Field(
        title="SAE Metrics by K",
        description="k -> {sae_id_accuracy, sae_ood_accuracy, sae_ood_gap, oracle_minus_sae_id_accuracy, "
        "oracle_minus_sae_ood_accuracy, C}",
    )


@dataclass(config=ConfigDict(title="OOD Probing"))
class OodProbingEvalOutput(BaseEvalOutput[OodProbingEvalConfig, OodMetricCategories, OodTaskDetail]):
    """
    Probes trained in distribution and tested on held-out in-distribution and out-of-distribution data: a dense
    logistic-regression oracle on raw activations vs. k-sparse probes on SAE latents.
    """

    eval_config: OodProbingEvalConfig
    eval_id: str
    datetime_epoch_millis: int
    eval_result_metrics: OodMetricCategories
    eval_result_details: list[OodTaskDetail] = Field(
        default_factory=list,
        title="Per-Task OOD Probing Results",
        description="One object per OOD task.",
    )
    sae_metrics_by_k: dict[int, dict[str, float]] | None = Field(
        default=None,
        title="SAE Metrics by K",
        description="Mean over tasks for every k (the per-task sae_metrics_by_k keys except C)",
    )
    eval_type_id: str = Field(
        default=EVAL_TYPE_ID_OOD_PROBING,
        title="Eval Type ID",
        description="The type of the evaluation",
    )
