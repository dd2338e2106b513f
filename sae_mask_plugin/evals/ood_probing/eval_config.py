"""Configuration of the OOD-probing eval: probes trained in distribution, tested in and out of distribution."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from sae_mask_plugin.embedded.probing_data import OOD_TASKS
from sae_mask_plugin.evals.probing_config import ActivationProbingEvalConfig


@dataclass
class OodProbingEvalConfig(ActivationProbingEvalConfig):
    random_seed: int = Field(
        default=42,
        title="Random Seed",
        description="Seed of the in-distribution split, the OOD sample and the probes.",
    )
    task_names: list[str] = Field(
        default_factory=lambda: list(OOD_TASKS),
        title="OOD Tasks",
        description="sae-probes tasks with an OOD test set (labels mapped explicitly to {0, 1} per task).",
    )
    num_train: int = Field(
        default=1024,
        title="Training Examples",
        description="In-distribution training examples per task (class-balanced).",
    )
    num_id_test: int = Field(
        default=500,
        title="ID Test Examples",
        description="Held-out in-distribution test examples per task (class-balanced, disjoint from training).",
    )
    num_ood_test: int | None = Field(
        default=None,
        title="OOD Test Examples",
        description="OOD test examples per task; None: the whole OOD set (300 texts in sae-probes 0.4.2).",
    )
    ks: list[int] = Field(
        default_factory=lambda: [1, 2, 5, 16],
        title="K Values",
        description="Numbers of SAE latents the k-sparse probes may use; latents ranked on the training split "
        "only (sae-probes' normalised class-mean difference).",
    )
    headline_k: int = Field(
        default=16,
        title="Headline K",
        description="The k whose SAE metrics fill the flat `sae` metrics (every k is in `sae_metrics_by_k`).",
    )
    reg_type: str = Field(
        default="l1",
        title="Regularization Type",
        description="Penalty of the k-sparse probes ('l1' or 'l2'); the dense oracle uses 'l2'. Strengths are "
        "chosen on a validation split of the in-distribution training data (sae-probes' find_best_reg).",
    )


def cpu_preset(model_name: str) -> OodProbingEvalConfig:
    """The CPU preset: every OOD task, 256 training, 128 ID-test and 200 OOD-test texts each, 128 tokens."""
    return OodProbingEvalConfig(
        model_name=model_name, num_train=256, num_id_test=128, num_ood_test=200, max_seq_len=128
    )
