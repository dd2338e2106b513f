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


HEADLINE = "Mean over the headline tasks (valid, with oracle OOD signal; None if none) and split seeds"
ALL_TASKS = "Mean over every task in the config (with or without signal, valid or not) and split seeds"

# (name, title, description) of the per-task metrics averaged into the oracle and SAE categories.
ORACLE_METRICS = (
    ("oracle_id_accuracy", "Oracle ID Accuracy", "dense probe on raw activations, held-out ID accuracy"),
    ("oracle_ood_accuracy", "Oracle OOD Accuracy", "dense probe on raw activations, OOD accuracy"),
    ("oracle_ood_gap", "Oracle OOD Gap", "ID minus OOD accuracy of the dense probe"),
)
SAE_METRICS = (
    ("sae_id_accuracy", "SAE ID Accuracy", "k-sparse probe on SAE latents, held-out ID accuracy"),
    ("sae_ood_accuracy", "SAE OOD Accuracy", "k-sparse probe on SAE latents, OOD accuracy"),
    ("sae_ood_gap", "SAE OOD Gap", "ID minus OOD accuracy of the k-sparse probe"),
    (
        "oracle_minus_sae_id_accuracy",
        "Oracle - SAE ID Accuracy",
        "the dense oracle's ID accuracy minus the k-sparse probe's",
    ),
    (
        "oracle_minus_sae_ood_accuracy",
        "Oracle - SAE OOD Accuracy",
        "the dense oracle's OOD accuracy minus the k-sparse probe's (the SAE-vs-oracle gap out of distribution)",
    ),
)
ALL_TASKS_SUFFIX = "_all_tasks"


def _metric(title: str, description: str, over: str, default_display: bool = True):
    extra = DEFAULT_DISPLAY if default_display else None
    return Field(title=title, description=f"{over}: {description}", json_schema_extra=extra)


@dataclass
class OodOracleMetrics(BaseMetrics):
    oracle_id_accuracy: float | None = _metric(*ORACLE_METRICS[0][1:], HEADLINE)
    oracle_ood_accuracy: float | None = _metric(*ORACLE_METRICS[1][1:], HEADLINE)
    oracle_ood_gap: float | None = _metric(*ORACLE_METRICS[2][1:], HEADLINE)


@dataclass
class OodSaeMetrics(BaseMetrics):
    k: int = Field(title="K", description="Number of SAE latents of the probes summarised here (headline_k)")
    sae_id_accuracy: float | None = _metric(*SAE_METRICS[0][1:], HEADLINE)
    sae_ood_accuracy: float | None = _metric(*SAE_METRICS[1][1:], HEADLINE)
    sae_ood_gap: float | None = _metric(*SAE_METRICS[2][1:], HEADLINE)
    oracle_minus_sae_id_accuracy: float | None = _metric(*SAE_METRICS[3][1:], HEADLINE, default_display=False)
    oracle_minus_sae_ood_accuracy: float | None = _metric(*SAE_METRICS[4][1:], HEADLINE)


@dataclass
class OodAllTasksMetrics(BaseMetrics):
    oracle_id_accuracy_all_tasks: float = _metric(*ORACLE_METRICS[0][1:], ALL_TASKS, False)
    oracle_ood_accuracy_all_tasks: float = _metric(*ORACLE_METRICS[1][1:], ALL_TASKS, False)
    oracle_ood_gap_all_tasks: float = _metric(*ORACLE_METRICS[2][1:], ALL_TASKS, False)
    sae_id_accuracy_all_tasks: float = _metric(*SAE_METRICS[0][1:], ALL_TASKS, False)
    sae_ood_accuracy_all_tasks: float = _metric(*SAE_METRICS[1][1:], ALL_TASKS, False)
    sae_ood_gap_all_tasks: float = _metric(*SAE_METRICS[2][1:], ALL_TASKS, False)
    oracle_minus_sae_id_accuracy_all_tasks: float = _metric(*SAE_METRICS[3][1:], ALL_TASKS, False)
    oracle_minus_sae_ood_accuracy_all_tasks: float = _metric(*SAE_METRICS[4][1:], ALL_TASKS, False)


@dataclass
class OodMetricCategories(BaseMetricCategories):
    oracle: OodOracleMetrics = Field(
        title="Oracle",
        description="Dense logistic-regression probe on raw activations, over the headline tasks",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    sae: OodSaeMetrics = Field(
        title="SAE",
        description="k-sparse probe on SAE latents, at headline_k, over the headline tasks",
        json_schema_extra=DEFAULT_DISPLAY,
    )
    all_tasks: OodAllTasksMetrics = Field(
        title="All Tasks",
        description="The oracle and SAE metrics over every task, headline or not (keys end in _all_tasks)",
    )


@dataclass
class OodTaskDetail(BaseResultDetail):
    task_name: str = Field(title="Task", description="OOD task (embedded.probing_data.OOD_SHIFTS)")
    ood_shift: str = Field(title="OOD Shift", description="What the OOD set changes")
    num_split_seeds: int = Field(title="Split Seeds", description="Splits the metrics are averaged over")
    num_train: int = Field(title="Training Examples", description="In-distribution training examples")
    num_id_test: int = Field(title="ID Test Examples", description="Held-out in-distribution test examples")
    num_ood_test: int = Field(title="OOD Test Examples", description="OOD test examples (distinct texts)")
    ood_majority_rate: float = Field(
        title="OOD Majority Rate",
        description="Share of the OOD set's more frequent class (accuracy by guessing)",
    )
    oracle_id_accuracy: float = Field(title="Oracle ID Accuracy", description="Dense probe, ID accuracy")
    oracle_ood_accuracy: float = Field(title="Oracle OOD Accuracy", description="Dense probe, OOD accuracy")
    oracle_ood_gap: float = Field(title="Oracle OOD Gap", description="Dense probe, ID minus OOD accuracy")
    oracle_ood_accuracy_by_seed: list[float] = Field(
        title="Oracle OOD Accuracy by Seed", description="Dense probe's OOD accuracy for each split seed"
    )
    oracle_ood_auc: float = Field(title="Oracle OOD AUC", description="Dense probe, OOD ROC AUC")
    oracle_ood_p_value: float = Field(
        title="Oracle OOD p-Value",
        description="One-sided exact binomial test: OOD accuracy above the majority rate (eval config)",
    )
    oracle_ood_accuracy_ci_low: float = Field(
        title="Oracle OOD Accuracy CI Low",
        description="Clopper-Pearson 95% interval of the OOD accuracy, low end",
    )
    oracle_ood_accuracy_ci_high: float = Field(
        title="Oracle OOD Accuracy CI High",
        description="Clopper-Pearson 95% interval of the OOD accuracy, high end",
    )
    has_ood_signal: bool = Field(
        title="Has OOD Signal", description="oracle_ood_p_value < signal_alpha (see the eval config)"
    )
    invalid_reason: str | None = Field(
        title="Invalid Reason", description="Why the task cannot measure OOD generalisation; None if it can"
    )
    in_headline: bool = Field(
        title="In Headline", description="Valid and with OOD signal: averaged into the headline metrics"
    )
    oracle_C_by_seed: list[float] = Field(
        title="Oracle C by Seed",
        description="Inverse regularisation strength chosen for the oracle, per seed",
    )
    sae_metrics_by_k: dict[int, dict[str, float]] = Field(
        title="SAE Metrics by K",
        description="k -> {sae_id_accuracy, sae_ood_accuracy, sae_ood_gap, oracle_minus_sae_id_accuracy, "
        "oracle_minus_sae_ood_accuracy, sae_ood_auc}, means over split seeds",
    )
    sae_C_by_k: dict[int, list[float]] = Field(
        title="SAE C by K", description="k -> inverse regularisation strength chosen per split seed"
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
        description="One object per OOD task, headline or not.",
    )
    headline_tasks: list[str] = Field(
        default_factory=list,
        title="Headline Tasks",
        description="The tasks the oracle and sae metrics average: valid, with oracle OOD signal",
    )
    excluded_tasks: dict[str, str] = Field(
        default_factory=dict,
        title="Excluded Tasks",
        description="Task -> why it is not in the headline (invalid, or no OOD signal)",
    )
    sae_metrics_by_k: dict[int, dict[str, float | None]] | None = Field(
        default=None,
        title="SAE Metrics by K",
        description="Mean over the headline tasks for every k (None if there are none)",
    )
    sae_metrics_by_k_all_tasks: dict[int, dict[str, float]] | None = Field(
        default=None,
        title="SAE Metrics by K, All Tasks",
        description="Mean over every task for every k",
    )
    eval_type_id: str = Field(
        default=EVAL_TYPE_ID_OOD_PROBING,
        title="Eval Type ID",
        description="The type of the evaluation",
    )
